"""SAELens folders in and out: the same codes and reconstructions as sae-lens computes.

Oracles: the fixture folders written by the real sae-lens 6.54 with the codes and reconstructions
it computed (tools/make_saelens_fixtures.py), the SAELens inference formulas written out in NumPy
(:func:`saelens_forward`, read from sae-lens's source: process_sae_in, encode, decode), and, where
``sae_lens`` is importable, ``SAE.load_from_disk`` itself.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from skdict import AnchoredSAE, BatchTopKSAE, GatedSAE, JumpReLUSAE, MatryoshkaSAE, MPSAE, ReLUSAE, TopKSAE
from skdict.io._saelens import export_saelens, from_saelens, load_saelens, read_saelens

FIXTURES = Path(__file__).parent / "fixtures" / "saelens"
FIXTURE_NAMES = json.loads((FIXTURES / "info.json").read_text())["fixtures"]
#: float32 agreement with sae-lens, both ways (the issue's bound).
TOL = 1e-5

RNG = np.random.default_rng(0)
X = (RNG.normal(size=(300, 8)) @ RNG.normal(size=(8, 8))).astype(np.float32)
Y = (X @ RNG.normal(size=(8, 5))).astype(np.float32)


def _relu(a):
    return np.maximum(a, 0.0)


def saelens_forward(cfg, tensors, X):
    """SAELens 6 inference in NumPy (float64): ``(codes, reconstructions)`` of ``X``.

    process_sae_in subtracts b_dec when apply_b_dec_to_input (never for a transcoder); a = x W_enc + b_enc;
    standard/transcoder ReLU(a); jumprelu ReLU(a) 1[a > threshold]; topk ReLU(TopK(a)), on a * ||W_dec rows||
    and decoding with unit rows when rescale_acts_by_decoder_norm; x_hat = z W_dec + b_dec.
    """
    t = {name: np.asarray(value, dtype=np.float64) for name, value in tensors.items()}
    architecture = cfg["architecture"]
    x = np.asarray(X, dtype=np.float64)
    if cfg.get("apply_b_dec_to_input", True) and "transcoder" not in architecture:
        x = x - t["b_dec"]
    if architecture == "gated":  # gated_sae.py: 1[x W_enc + b_gate > 0] ReLU(x (W_enc e^r_mag) + b_mag)
        z = (x @ t["W_enc"] + t["b_gate"] > 0) * _relu(x @ (t["W_enc"] * np.exp(t["r_mag"])) + t["b_mag"])
        return z, z @ t["W_dec"] + t["b_dec"]
    a = x @ t["W_enc"] + t["b_enc"]
    decoder = t["W_dec"]
    if architecture == "topk":
        if cfg.get("rescale_acts_by_decoder_norm"):
            norms = np.linalg.norm(decoder, axis=1)
            a, decoder = a * norms, decoder / norms[:, None]
        top = np.argsort(-a, axis=1)[:, : cfg["k"]]
        rows = np.arange(a.shape[0])[:, None]
        z = np.zeros_like(a)
        z[rows, top] = _relu(a[rows, top])
    elif "jumprelu" in architecture:
        z = _relu(a) * (a > t["threshold"])
    else:
        z = _relu(a)
    return z, z @ decoder + t["b_dec"]


def _fixture(name):
    folder = FIXTURES / name
    return folder, *(np.load(folder / f"{what}.npy") for what in ("inputs", "expected_codes", "expected_recon"))


def _load(folder, **kwargs):
    """load_saelens; the TopK fixture with non-unit rows and no rescaling warns that its rows are kept."""
    if folder.name == "topk_nonunit":
        with pytest.warns(UserWarning, match="not unit-norm and rescale_acts_by_decoder_norm is False"):
            return load_saelens(folder, **kwargs)
    return load_saelens(folder, **kwargs)


# ------------------------------------------------------------------------- import: sae-lens's own files
@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_codes_and_reconstructions_match_saelens(name):
    folder, inputs, codes, recon = _fixture(name)
    model = _load(folder)
    ours = model.transform(inputs)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, codes, rtol=TOL, atol=TOL)
    np.testing.assert_array_equal(ours > 0, codes > 0)  # the same latents fire
    np.testing.assert_allclose(model.inverse_transform(ours), recon, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(model.predict(inputs), recon, rtol=TOL, atol=TOL)


@pytest.mark.parametrize(
    "name, cls",
    [
        ("standard", ReLUSAE),
        ("topk", TopKSAE),
        ("jumprelu", JumpReLUSAE),
        ("transcoder", ReLUSAE),
        ("jumprelu_transcoder", JumpReLUSAE),
        ("batchtopk", BatchTopKSAE),  # SAELens writes it as jumprelu; its metadata says batchtopk, k=4
        ("matryoshka_batchtopk", MatryoshkaSAE),  # jumprelu too; metadata matryoshka_batchtopk, widths 4, 12, 32
    ],
)
def test_fixture_maps_to_the_skdict_class(name, cls):
    model = _load(FIXTURES / name)
    assert type(model) is cls
    cfg, _ = read_saelens(FIXTURES / name)
    assert model.is_transcoder_ == ("transcoder" in name)
    assert model.n_features_in_ == cfg["d_in"] and model.components_.shape[0] == cfg["d_sae"]
    if name in ("batchtopk", "matryoshka_batchtopk"):
        assert model.k == 4 and model.threshold_ == pytest.approx(0.25)
    if name == "matryoshka_batchtopk":
        assert model.matryoshka_widths_ == (4, 12, 32) and model.activation == "batchtopk"


@pytest.mark.parametrize("name", ["standard_no_b_dec", "topk_rescale", "jumprelu", "jumprelu_transcoder"])
def test_folded_models_have_unit_atoms_and_clipped_thresholds(name):
    """Non-unit decoder rows are folded into the encoder (skdict's atoms are unit); thresholds end >= 0."""
    model = _load(FIXTURES / name)
    np.testing.assert_allclose(np.linalg.norm(model.components_, axis=1), 1.0, rtol=1e-6)
    if isinstance(model, JumpReLUSAE):
        assert model.threshold_.min() >= 0.0
        _, tensors = read_saelens(FIXTURES / name)
        assert tensors["threshold"].min() < 0  # the fixture has negative thresholds (ReLU first in SAELens)


def test_imported_model_scores_and_trains_on():
    folder, inputs, _, recon = _fixture("topk")
    model = load_saelens(folder)
    expected = 1 - ((inputs - recon) ** 2).sum() / ((inputs - inputs.mean(0)) ** 2).sum()
    assert model.score(inputs) == pytest.approx(expected, rel=1e-4)
    if hasattr(model, "encode"):  # the SAELens / SAEBench names
        np.testing.assert_array_equal(model.encode(inputs), model.transform(inputs))
        np.testing.assert_array_equal(model.decode(model.encode(inputs)), model.inverse_transform(model.transform(inputs)))
    before = model.components_.copy()
    model.partial_fit(inputs)  # a fresh optimizer: the weights move, the atoms stay unit
    assert model.n_steps_ >= 1 and not np.array_equal(model.components_, before)
    np.testing.assert_allclose(np.linalg.norm(model.components_, axis=1), 1.0, rtol=1e-5)


@given(
    seed=st.integers(0, 2**16),
    architecture=st.sampled_from(["standard", "topk", "jumprelu", "transcoder", "jumprelu_transcoder"]),
    apply_b_dec=st.booleans(),
    rescale=st.booleans(),
)
@settings(max_examples=40, deadline=None)
def test_any_saelens_weights_give_saelens_codes_up_to_the_fold(seed, architecture, apply_b_dec, rescale):
    """For any weights (decoder norms in [0.2, 5], negative thresholds, b_dec on or off the input):
    reconstructions equal SAELens's, and codes are SAELens's times the folded decoder norm
    (exactly SAELens's for TopK, whose rows are folded only with rescale_acts_by_decoder_norm)."""
    rng = np.random.default_rng(seed)
    d_in, d_sae = 6, 20
    transcoder = "transcoder" in architecture
    d_out = 9 if transcoder else d_in
    norms = rng.uniform(0.2, 5.0, size=d_sae)
    atoms = rng.normal(size=(d_sae, d_out))
    tensors = {
        "W_enc": rng.normal(size=(d_in, d_sae)),
        "b_enc": rng.normal(size=d_sae),
        "W_dec": atoms / np.linalg.norm(atoms, axis=1, keepdims=True) * norms[:, None],
        "b_dec": rng.normal(size=d_out),
    }
    if "jumprelu" in architecture:
        tensors["threshold"] = rng.uniform(-0.5, 1.0, size=d_sae)
    cfg = {
        "architecture": architecture,
        "d_in": d_in,
        "d_sae": d_sae,
        "apply_b_dec_to_input": apply_b_dec and not transcoder,
        "metadata": {"sae_lens_version": "6.54.12"},
    }
    if transcoder:
        cfg["d_out"] = d_out
    if architecture == "topk":
        cfg.update(k=4, rescale_acts_by_decoder_norm=rescale)
    inputs = rng.normal(size=(50, d_in))
    codes, recon = saelens_forward(cfg, tensors, inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # TopK without rescaling keeps its non-unit rows
        model = from_saelens(cfg, tensors)
    ours = model.transform(inputs)
    folded = architecture != "topk" or rescale
    expected = codes * norms if folded and architecture != "topk" else codes
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(model.predict(inputs), recon, rtol=1e-9, atol=1e-9)
    if folded:
        np.testing.assert_allclose(np.linalg.norm(model.components_, axis=1), 1.0)


# ---------------------------------------------------------------------------- export, then re-import
def _fitted(estimator, target=None, dtype=np.float32):
    """A fitted copy of ``estimator`` (15 steps: a model with every fitted attribute, not a good one)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator = clone(estimator).set_params(max_steps=15, batch_size=64, random_state=0)
        return estimator.fit(X.astype(dtype), None if target is None else target.astype(dtype))


#: Every skdict model SAELens can hold: (id, estimator, target, SAELens architecture).
EXPORTABLE = [
    ("relu", ReLUSAE(24, alpha=0.01), None, "standard"),
    ("topk", TopKSAE(24, k=3), None, "topk"),
    ("jumprelu", JumpReLUSAE(24, alpha=0.01, threshold_init=0.05), None, "jumprelu"),
    ("batchtopk", BatchTopKSAE(24, k=3), None, "jumprelu"),
    ("gated", GatedSAE(24, alpha=0.01), None, "gated"),
    ("relu-transcoder", ReLUSAE(24, alpha=0.01), Y, "transcoder"),
    ("jumprelu-transcoder", JumpReLUSAE(24, alpha=0.01, threshold_init=0.05), Y, "jumprelu_transcoder"),
    ("batchtopk-transcoder", BatchTopKSAE(24, k=3), Y, "jumprelu_transcoder"),
    ("matryoshka", MatryoshkaSAE(24, k=3, matryoshka_widths=(4, 12, 24)), None, "jumprelu"),
    ("matryoshka-transcoder", MatryoshkaSAE(24, k=3), Y, "jumprelu_transcoder"),
]


@pytest.fixture(scope="module", params=EXPORTABLE, ids=[case[0] for case in EXPORTABLE])
def exported(request, tmp_path_factory):
    _, estimator, target, architecture = request.param
    model = _fitted(estimator, target)
    folder = export_saelens(model, tmp_path_factory.mktemp("saelens"), model_name="tiny", hook_name="blocks.0.hook_resid_pre")
    return model, folder, architecture


def test_export_writes_the_saelens_architecture_and_fields(exported):
    model, folder, architecture = exported
    cfg, tensors = read_saelens(folder)
    assert cfg["architecture"] == architecture
    assert (cfg["d_in"], cfg["d_sae"], cfg["dtype"], cfg["device"]) == (8, 24, "float32", "cpu")
    assert cfg["metadata"]["model_name"] == "tiny" and cfg["metadata"]["hook_name"] == "blocks.0.hook_resid_pre"
    assert cfg["apply_b_dec_to_input"] is (not model.is_transcoder_)
    assert {t.dtype for t in tensors.values()} == {np.dtype(np.float32)}
    if model.is_transcoder_:
        assert cfg["d_out"] == 5
    if architecture == "topk":
        assert cfg["k"] == 3 and cfg["rescale_acts_by_decoder_norm"] is False


def test_export_computes_what_the_model_computes(exported):
    """The SAELens formulas on the written tensors give skdict's codes and reconstructions (float32 bound)."""
    model, folder, _ = exported
    cfg, tensors = read_saelens(folder)
    codes, recon = saelens_forward(cfg, tensors, X)
    np.testing.assert_allclose(model.transform(X), codes, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(model.predict(X), recon, rtol=TOL, atol=TOL)


def test_export_then_import_gives_the_same_model(exported):
    model, folder, _ = exported
    back = load_saelens(folder)
    assert type(back) is type(model)
    codes = model.transform(X)
    if model.is_transcoder_:  # input_center_ went into b_enc: equal to rounding
        np.testing.assert_allclose(back.transform(X), codes, rtol=TOL, atol=TOL)
        np.testing.assert_array_equal(back.transform(X) > 0, codes > 0)
    else:
        np.testing.assert_array_equal(back.transform(X), codes)
    np.testing.assert_array_equal(back.inverse_transform(codes), model.inverse_transform(codes))
    if isinstance(model, (TopKSAE, BatchTopKSAE)):
        assert back.k == model.k_
    if isinstance(model, MatryoshkaSAE):  # the nesting travels in SAELens's metadata field
        assert back.matryoshka_widths_ == model.matryoshka_widths_
        assert read_saelens(folder)[0]["metadata"]["training_architecture"] == "matryoshka_batchtopk"


def test_transcoder_input_center_is_folded_into_the_encoder_bias(tmp_path):
    """skdict centres a transcoder's input at input_center_; SAELens does not: b_enc carries it."""
    model = _fitted(ReLUSAE(24, alpha=0.01), Y, dtype=np.float64)
    assert np.abs(model.input_center_).max() > 0.1
    cfg, tensors = read_saelens(export_saelens(model, tmp_path))
    assert cfg["dtype"] == "float64"
    expected = model.encoder_bias_ - model.input_center_ @ model.encoder_.T
    np.testing.assert_allclose(tensors["b_enc"], expected, rtol=1e-12)
    X64 = X.astype(np.float64)
    codes, recon = saelens_forward(cfg, tensors, X64)
    np.testing.assert_allclose(model.transform(X64), codes, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(model.predict(X64), recon, rtol=1e-10, atol=1e-10)


def test_float64_model_round_trips_bit_for_bit(tmp_path):
    model = _fitted(TopKSAE(24, k=3), dtype=np.float64)
    back = load_saelens(export_saelens(model, tmp_path))
    assert back.components_.dtype == np.float64
    np.testing.assert_array_equal(back.transform(X.astype(np.float64)), model.transform(X.astype(np.float64)))


def test_export_dtype_override_casts_the_weights(tmp_path):
    model = _fitted(TopKSAE(24, k=3), dtype=np.float64)
    cfg, tensors = read_saelens(export_saelens(model, tmp_path, dtype="float32"))
    assert cfg["dtype"] == "float32" and tensors["W_enc"].dtype == np.float32


# ------------------------------------------------------------------------------------- refusals
def _write(folder, cfg, tensors):
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cfg.json").write_text(json.dumps(cfg))
    save_file(tensors, str(folder / "sae_weights.safetensors"))
    return folder


@pytest.mark.parametrize(
    "field, value",
    [
        ("architecture", "skip_transcoder"),
        ("architecture", "batchtopk"),
        ("normalize_activations", "expected_average_only_in"),
        ("normalize_activations", "layer_norm"),
        ("reshape_activations", "hook_z"),
    ],
)
def test_unmappable_fields_are_refused_by_name(tmp_path, field, value):
    cfg, tensors = read_saelens(FIXTURES / "standard")
    cfg[field] = value
    folder = _write(tmp_path / "m", cfg, tensors)
    with pytest.raises(ValueError, match=f"{field}={value!r}"):
        load_saelens(folder)


@pytest.mark.parametrize("widths", [[12, 4, 32], [4, 4.5, 32], "4,12,32", [0, 12, 32]])
def test_bad_matryoshka_widths_in_the_metadata_are_refused_by_name(tmp_path, widths):
    cfg, tensors = read_saelens(FIXTURES / "matryoshka_batchtopk")
    cfg["metadata"]["training_architecture_details"]["matryoshka_widths"] = widths
    with pytest.raises(ValueError, match="training_architecture_details.*matryoshka_widths"):
        load_saelens(_write(tmp_path / "m", cfg, tensors))


def test_matryoshka_widths_short_of_d_sae_get_d_sae_added_as_saelens_does(tmp_path):
    cfg, tensors = read_saelens(FIXTURES / "matryoshka_batchtopk")
    cfg["metadata"]["training_architecture_details"]["matryoshka_widths"] = [4, 12]
    model = load_saelens(_write(tmp_path / "m", cfg, tensors))
    assert type(model) is MatryoshkaSAE and model.matryoshka_widths_ == (4, 12, 32)


def test_pre_6_hook_z_file_is_refused(tmp_path):
    cfg, tensors = read_saelens(FIXTURES / "standard")
    for name in ("metadata", "reshape_activations", "architecture"):
        cfg.pop(name)
    cfg["hook_point"] = "blocks.3.attn.hook_z"
    with pytest.raises(ValueError, match="reshape_activations='hook_z'"):
        load_saelens(_write(tmp_path / "m", cfg, tensors))


def test_pre_6_topk_file_reads_k_from_activation_fn_kwargs(tmp_path):
    cfg, tensors = read_saelens(FIXTURES / "topk")
    for name in ("metadata", "architecture", "k"):
        cfg.pop(name)
    cfg.update(activation_fn="topk", activation_fn_kwargs={"k": 4}, hook_point="blocks.0.hook_resid_pre")
    model = load_saelens(_write(tmp_path / "m", cfg, tensors))
    _, inputs, codes, _ = _fixture("topk")
    assert type(model) is TopKSAE and model.k == 4
    np.testing.assert_allclose(model.transform(inputs), codes, rtol=TOL, atol=TOL)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t.pop("b_enc"), r"SAELens tensor b_enc is missing: architecture 'standard' needs shape \(32,\)"),
        (lambda t: t.update(W_dec=np.zeros((32, 7), np.float32)), r"W_dec has shape \(32, 7\), expected \(32, 8\)"),
        (lambda t: t.update(W_enc=np.zeros((32, 8), np.float32)), r"W_enc has shape \(32, 8\), expected \(8, 32\)"),
        (lambda t: t.update(W_skip=np.zeros((8, 8), np.float32)), r"tensor\(s\) \['W_skip'\]"),
    ],
)
def test_bad_tensors_are_named_with_both_shapes(tmp_path, change, message):
    cfg, tensors = read_saelens(FIXTURES / "standard")
    change(tensors)
    with pytest.raises(ValueError, match=message):
        load_saelens(_write(tmp_path / "m", cfg, tensors))


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="cfg.json"):
        load_saelens(tmp_path)


def test_mpsae_and_topk_transcoder_cannot_be_exported(tmp_path):
    with pytest.raises(TypeError, match="MPSAE has no encoder"):
        export_saelens(_fitted(MPSAE(24, k=3)), tmp_path)
    with pytest.raises(TypeError, match="no TopK transcoder"):
        export_saelens(_fitted(TopKSAE(24, k=3), Y), tmp_path)
    assert not any(tmp_path.iterdir())


def test_unfitted_model_and_computed_fields_are_refused(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        export_saelens(TopKSAE(), tmp_path)
    with pytest.raises(ValueError, match="cfg field 'k' is computed from the model"):
        export_saelens(_fitted(TopKSAE(24, k=3)), tmp_path, k=5)
    with pytest.raises(ValueError, match="dtype='bfloat16'"):
        export_saelens(_fitted(TopKSAE(24, k=3)), tmp_path, dtype="bfloat16")


def test_nothing_is_overwritten_without_overwrite(tmp_path):
    model = _fitted(TopKSAE(24, k=3))
    export_saelens(model, tmp_path)
    before = (tmp_path / "sae_weights.safetensors").read_bytes()
    other = _fitted(TopKSAE(24, k=5))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_saelens(other, tmp_path)
    assert (tmp_path / "sae_weights.safetensors").read_bytes() == before
    export_saelens(other, tmp_path, overwrite=True)
    assert load_saelens(tmp_path).k == 5


def test_anchored_sae_is_written_as_its_fitted_estimator(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        inner = TopKSAE(24, k=3, max_steps=15, batch_size=64, random_state=0)
        model = AnchoredSAE(inner, anchors=np.eye(8)[:2], anchor_weight=1.0).fit(X)
    back = load_saelens(export_saelens(model, tmp_path))
    assert type(back) is TopKSAE
    np.testing.assert_array_equal(back.transform(X), model.transform(X))


def test_batchtopk_without_threshold_is_refused(tmp_path):
    model = _fitted(BatchTopKSAE(24, k=3))
    model.threshold_ = None
    with pytest.raises(ValueError, match="no inference threshold_"):
        export_saelens(model, tmp_path)


@pytest.mark.gpu
def test_loads_to_the_gpu():
    import cupy

    folder, inputs, codes, _ = _fixture("jumprelu")
    model = load_saelens(folder, device="cuda")
    assert isinstance(model.components_, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(model.transform(cupy.asarray(inputs))), codes, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(model.transform(inputs), codes, rtol=TOL, atol=TOL)


@pytest.mark.gpu
def test_gpu_model_exports_and_round_trips(tmp_path):
    import cupy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = JumpReLUSAE(24, alpha=0.01, threshold_init=0.05, max_steps=15, random_state=0).fit(cupy.asarray(X))
    back = load_saelens(export_saelens(model, tmp_path), device="cuda")
    assert isinstance(back.components_, cupy.ndarray)
    np.testing.assert_array_equal(cupy.asnumpy(back.transform(cupy.asarray(X))), cupy.asnumpy(model.transform(cupy.asarray(X))))


# ------------------------------------------------------------- the real sae-lens (peer environment)
@pytest.mark.parametrize("case", EXPORTABLE + [("topk-float64", TopKSAE(24, k=3), None, "topk")], ids=lambda c: c[0])
def test_saelens_load_from_disk_gives_the_same_codes(case, tmp_path):
    sae_lens = pytest.importorskip("sae_lens")
    import torch

    name, estimator, target, _ = case
    dtype = np.float64 if name.endswith("float64") else np.float32
    model = _fitted(estimator, target, dtype=dtype)
    sae = sae_lens.SAE.load_from_disk(export_saelens(model, tmp_path), device="cpu")
    inputs = X.astype(dtype)
    with torch.no_grad():
        codes = sae.encode(torch.from_numpy(inputs))
        recon = sae.decode(codes)
    np.testing.assert_allclose(codes.numpy(), model.transform(inputs), rtol=TOL, atol=TOL)
    np.testing.assert_allclose(recon.numpy(), model.predict(inputs), rtol=TOL, atol=TOL)
