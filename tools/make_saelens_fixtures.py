"""Write the SAELens fixture folders of ``tests/io/fixtures/saelens`` with the real sae-lens.

Run in a separate environment that has sae-lens and a CPU torch (skdict itself does not need
either)::

    python3.11 -m venv /tmp/peer
    /tmp/peer/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
    /tmp/peer/bin/pip install sae-lens
    /tmp/peer/bin/python tools/make_saelens_fixtures.py

Each fixture is a tiny SAE (8 to 12 inputs, 32 latents, seeded random weights) saved by
sae-lens's own ``save_model`` (or ``save_inference_model`` for BatchTopK and Matryoshka
BatchTopK, which SAELens stores as JumpReLU), plus ``inputs.npy`` (64 rows) and what sae-lens
computes on them after
``SAE.load_from_disk`` of the saved folder: ``expected_codes.npy`` and ``expected_recon.npy``.
Where skdict folds non-unit decoder rows into the encoder (``standard`` / ``jumprelu`` /
transcoders), the expected codes are those of ``load_from_disk(..., fold_W_dec_norm=True)``;
the reconstructions are the same either way. ``info.json`` says which sae-lens wrote them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import sae_lens
import torch
from sae_lens import SAE
from sae_lens.saes import (
    BatchTopKTrainingSAE,
    BatchTopKTrainingSAEConfig,
    JumpReLUSAE,
    JumpReLUSAEConfig,
    JumpReLUTranscoder,
    JumpReLUTranscoderConfig,
    MatryoshkaBatchTopKTrainingSAE,
    MatryoshkaBatchTopKTrainingSAEConfig,
    StandardSAE,
    StandardSAEConfig,
    TopKSAE,
    TopKSAEConfig,
    Transcoder,
    TranscoderConfig,
)

ROOT = Path(__file__).resolve().parents[1] / "tests" / "io" / "fixtures" / "saelens"
D_IN, D_SAE, D_OUT, N_ROWS = 8, 32, 12, 64
METADATA = {"model_name": "tiny-fixture", "hook_name": "blocks.0.hook_resid_pre"}


def _unit_rows(w):
    return w / w.norm(dim=-1, keepdim=True)


def _random_weights(sae, gen, *, d_out, unit_decoder, threshold=None):
    """Seeded weights of the right shapes; biases large enough to matter, decoder rows unit or norms in [0.3, 3]."""
    with torch.no_grad():
        w_dec = torch.randn(D_SAE, d_out, generator=gen)
        w_dec = _unit_rows(w_dec)
        if not unit_decoder:
            w_dec = w_dec * (0.3 + 2.7 * torch.rand(D_SAE, 1, generator=gen))
        sae.W_dec.copy_(w_dec)
        sae.W_enc.copy_(torch.randn(D_IN, D_SAE, generator=gen) / D_IN**0.5)
        sae.b_enc.copy_(0.3 * torch.randn(D_SAE, generator=gen))
        sae.b_dec.copy_(0.5 * torch.randn(d_out, generator=gen))
        if threshold is not None:
            sae.threshold.copy_(threshold)


def _thresholds(gen):
    """Positive thresholds with a few negative ones (SAELens applies ReLU first: they act as 0)."""
    theta = 0.4 * torch.rand(D_SAE, generator=gen)
    theta[:4] = -0.2
    return theta


def _write(name, sae, *, fold, inputs, save=None):
    """Save ``sae`` with sae-lens, reload it from disk and record its codes and reconstructions of ``inputs``."""
    folder = ROOT / name
    shutil.rmtree(folder, ignore_errors=True)
    (save or sae.save_model)(folder)
    loaded = SAE.load_from_disk(folder, device="cpu", fold_W_dec_norm=fold)
    with torch.no_grad():
        x = torch.from_numpy(inputs)
        codes = loaded.encode(x)
        recon = loaded.decode(codes)
    np.save(folder / "inputs.npy", inputs)
    np.save(folder / "expected_codes.npy", codes.numpy())
    np.save(folder / "expected_recon.npy", recon.numpy())
    return folder


def _sae(cls, cfg_cls, gen, *, unit_decoder, threshold=None, **cfg):
    sae = cls(cfg_cls(d_in=D_IN, d_sae=D_SAE, metadata=sae_lens.saes.sae.SAEMetadata(**METADATA), **cfg))
    _random_weights(sae, gen, d_out=cfg.get("d_out", D_IN), unit_decoder=unit_decoder, threshold=threshold)
    return sae


def main():
    gen = torch.Generator().manual_seed(0)
    inputs = np.random.default_rng(0).normal(size=(N_ROWS, D_IN)).astype(np.float32)
    written = [
        _write("standard", _sae(StandardSAE, StandardSAEConfig, gen, unit_decoder=True), fold=False, inputs=inputs),
        _write(
            "standard_no_b_dec",
            _sae(StandardSAE, StandardSAEConfig, gen, unit_decoder=False, apply_b_dec_to_input=False),
            fold=True,
            inputs=inputs,
        ),
        _write("topk", _sae(TopKSAE, TopKSAEConfig, gen, unit_decoder=True, k=4), fold=False, inputs=inputs),
        _write(
            "topk_rescale",
            _sae(TopKSAE, TopKSAEConfig, gen, unit_decoder=False, k=4, rescale_acts_by_decoder_norm=True),
            fold=False,
            inputs=inputs,
        ),
        _write(
            "topk_nonunit",
            _sae(TopKSAE, TopKSAEConfig, gen, unit_decoder=False, k=4),
            fold=False,
            inputs=inputs,
        ),
        _write(
            "jumprelu",
            _sae(JumpReLUSAE, JumpReLUSAEConfig, gen, unit_decoder=False, threshold=_thresholds(gen)),
            fold=True,
            inputs=inputs,
        ),
        _write(
            "transcoder",
            _sae(Transcoder, TranscoderConfig, gen, unit_decoder=True, d_out=D_OUT, apply_b_dec_to_input=False),
            fold=False,
            inputs=inputs,
        ),
        _write(
            "jumprelu_transcoder",
            _sae(
                JumpReLUTranscoder,
                JumpReLUTranscoderConfig,
                gen,
                unit_decoder=False,
                threshold=_thresholds(gen),
                d_out=D_OUT,
                apply_b_dec_to_input=False,
            ),
            fold=True,
            inputs=inputs,
        ),
    ]
    batchtopk = BatchTopKTrainingSAE(
        BatchTopKTrainingSAEConfig(
            d_in=D_IN, d_sae=D_SAE, k=4.0, rescale_acts_by_decoder_norm=True, metadata=sae_lens.saes.sae.SAEMetadata(**METADATA)
        )
    )
    _random_weights(batchtopk, gen, d_out=D_IN, unit_decoder=False)
    batchtopk.topk_threshold = torch.tensor(0.25, dtype=torch.double)
    written.append(_write("batchtopk", batchtopk, fold=False, inputs=inputs, save=batchtopk.save_inference_model))
    matryoshka = MatryoshkaBatchTopKTrainingSAE(
        MatryoshkaBatchTopKTrainingSAEConfig(
            d_in=D_IN, d_sae=D_SAE, k=4.0, matryoshka_widths=[4, 12, D_SAE], rescale_acts_by_decoder_norm=True,
            metadata=sae_lens.saes.sae.SAEMetadata(**METADATA),
        )
    )
    _random_weights(matryoshka, gen, d_out=D_IN, unit_decoder=False)
    matryoshka.topk_threshold = torch.tensor(0.25, dtype=torch.double)
    written.append(_write("matryoshka_batchtopk", matryoshka, fold=False, inputs=inputs, save=matryoshka.save_inference_model))
    info = {"sae_lens": sae_lens.__version__, "torch": torch.__version__, "fixtures": [f.name for f in written]}
    (ROOT / "info.json").write_text(json.dumps(info, indent=1) + "\n")
    print(json.dumps(info))


if __name__ == "__main__":
    main()
