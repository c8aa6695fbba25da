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

import zipfile
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
    tensors = _read_npz(path)
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


def _read_npz(path):
    """The arrays of an ``.npz`` archive by name, read without pickle.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not an ``.npz`` archive (a damaged file, a single ``.npy`` array), or an array of
        Python objects (which only pickle could read).
    """
    try:
        npz = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist: give the path of a Gemma Scope params.npz.") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path} is not a readable .npz archive ({type(exc).__name__}: {exc}).") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(
            f"{path} holds a single array, not an .npz archive of named arrays (a Gemma Scope params.npz holds "
            "W_enc, W_dec, b_enc, b_dec and threshold)."
        )
    with npz:
        arrays = {}
        for name in npz.files:
            try:
                arrays[name] = npz[name]
            except ValueError as exc:  # numpy refuses object arrays without allow_pickle
                raise ValueError(
                    f"{path}: array {name!r} holds Python objects, which only pickle can read, and skdict never "
                    f"runs pickle on a file ({exc}): a Gemma Scope params.npz holds numeric arrays only."
                ) from exc
    return arrays
