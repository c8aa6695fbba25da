"""Gemma Scope ``params.npz`` files (Lieberum et al., 2024) as skdict JumpReLU SAEs.

A Gemma Scope SAE computes, with ``W_enc`` of shape (d_in, d_sae) and ``W_dec`` (d_sae, d_in),

.. math::

    a = x W_{enc} + b_{enc}, \\qquad z = \\mathrm{ReLU}(a)\\,\\mathbb{1}[a > \\theta], \\qquad
    \\hat x = z W_{dec} + b_{dec},

i.e. SAELens's JumpReLU with ``apply_b_dec_to_input=False``: the input is not centred, so
:math:`b_{dec} W_{enc}` is folded into skdict's :math:`b_{enc}` (skdict computes
:math:`(x - b_{dec}) W_{enc}^\\top + b_{enc}`), decoder row norms into the encoder and negative
thresholds clipped at 0, by the same conversion as :func:`skdict.io.load_saelens`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from skdict.io._saelens import SAELENS_FORMAT_VERSION, from_saelens


def load_gemma_scope(path, *, device=None):
    """A fitted :class:`~skdict.JumpReLUSAE` from a Gemma Scope ``params.npz``.

    Parameters
    ----------
    path : str or path-like
        The ``.npz`` file with ``W_enc`` (d_in, d_sae), ``W_dec`` (d_sae, d_in), ``b_enc`` (d_sae,),
        ``b_dec`` (d_in,) and ``threshold`` (d_sae,). Read without pickle.
    device : {None, "cpu", "cuda"}, default=None
        Where the model's arrays live (``None``: the CPU).

    Returns
    -------
    estimator : JumpReLUSAE
        Its codes and reconstructions are those of the formula above (to rounding); training
        parameters are skdict's defaults.

    Raises
    ------
    ValueError
        An array is missing or ill-shaped (named, with its shape and the expected one), or the
        file holds arrays a Gemma Scope SAE does not have.
    """
    path = Path(path)
    with np.load(path, allow_pickle=False) as npz:
        tensors = {name: npz[name] for name in npz.files}
    source = f"Gemma Scope {path.name}"
    encoder = tensors.get("W_enc")
    if encoder is None or encoder.ndim != 2:
        found = "missing" if encoder is None else f"of shape {encoder.shape}"
        raise ValueError(f"{source}: W_enc is {found}, expected a 2-D array of shape (d_in, d_sae).")
    cfg = {
        "architecture": "jumprelu",
        "d_in": encoder.shape[0],
        "d_sae": encoder.shape[1],
        "apply_b_dec_to_input": False,
        "normalize_activations": "none",
        "metadata": {"sae_lens_version": SAELENS_FORMAT_VERSION, "source": "gemma_scope"},
    }
    return from_saelens(cfg, tensors, device=device, source=source)
