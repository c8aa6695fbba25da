"""A fitted estimator from its constructor parameters and arrays (the one door every loader goes through).

:func:`build_fitted` is what :func:`skdict.io.load`, the SAELens and Gemma Scope importers and
the command line use to turn weights into an estimator: the shapes are checked against each
other from the names the class declares, and the scalars a fitted SAE derives from its
parameters (``n_features_in_``, ``is_transcoder_``, ``n_targets_``, ``k_``, ...) are filled in
by the estimator itself (``BaseSparseAutoencoder._complete_fitted``), so a built model computes
exactly what a trained model with the same weights computes.
"""

from __future__ import annotations

import numpy as np

from skdict._array import to_device
from skdict.sae._base import BaseSparseAutoencoder
from skdict.sae._parameter_values import check_parameter_values

#: The devices a model can be built on (``None``: the CPU).
BUILD_DEVICES = (None, "cpu", "cuda")


def common_dtype(arrays):
    """The one floating dtype of a model's arrays: float32 or float64 as given, float64 for anything else.

    Mixed float32/float64 arrays give float64 (NumPy's promotion); integer, half or
    other dtypes give float64 (scikit-learn's rule).
    """
    floating = [np.asarray(value).dtype for value in arrays.values() if value is not None]
    dtype = np.result_type(*floating) if floating else np.dtype(np.float64)
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _as_attribute(value, dtype, device):
    """A 0-d array becomes a Python scalar; any other array is cast to ``dtype`` and moved to ``device``."""
    if value is None:
        return None
    array = np.asarray(value)
    if array.ndim == 0:
        return array.item()
    return to_device(np.ascontiguousarray(array, dtype=dtype), device)


def _check_device(device):
    if device not in BUILD_DEVICES:
        raise ValueError(f"device must be None, 'cpu' or 'cuda', got {device!r}.")
    return "cpu" if device is None else device


def _with_width(cls, params, arrays):
    """``n_components=None`` becomes the width of ``components_`` for an SAE (its default, 8 x n_features, may differ).

    Raises
    ------
    ValueError
        ``n_components`` is given and differs from ``components_``'s rows.
    """
    components = arrays.get("components_")
    if not issubclass(cls, BaseSparseAutoencoder) or getattr(components, "ndim", 0) != 2:
        return params
    width = int(components.shape[0])
    if params.get("n_components") is None:
        return {**params, "n_components": width}
    if params["n_components"] != width:
        raise ValueError(
            f"n_components={params['n_components']} but components_ has shape {tuple(components.shape)} "
            f"({width} latents): pass n_components={width} (or None)."
        )
    return params


def build_fitted(cls, params, arrays, fitted=None, *, device=None):
    """A fitted ``cls`` with the given constructor parameters, array attributes and fitted scalars.

    Parameters
    ----------
    cls : type
        An skdict estimator class (e.g. :class:`~skdict.TopKSAE`).
    params : dict
        Constructor parameters (``get_params(deep=False)`` of the model). For an SAE,
        ``n_components=None`` (or absent) becomes the number of rows of ``components_``.
    arrays : dict of str to ndarray
        Array attributes, e.g. ``{"encoder_": (m, d), "encoder_bias_": (m,), "components_":
        (m, d_out), "decoder_bias_": (d_out,)}``, plus ``input_center_`` (d,) for a transcoder
        and the class's activation parameters (JumpReLU's ``threshold_``, (m,)). All are cast
        to one dtype (:func:`common_dtype`); a 0-d array becomes a Python scalar (e.g.
        BatchTopK's inference ``threshold_``).
    fitted : dict or None
        Scalar fitted attributes (``{"k_": 16, "n_features_in_": 768, "is_transcoder_": False}``).
        Those an SAE derives from its parameters are filled in when absent; given ones win.
    device : {None, "cpu", "cuda"}
        Where the arrays live (``None``: the CPU).

    Returns
    -------
    estimator : cls
        Fitted: ``transform``, ``inverse_transform``, ``predict`` and ``score`` work. An SAE
        has no optimizer state: a later ``partial_fit`` or ``fit`` with ``warm_start=True``
        starts a fresh Adam, dead-latent clock and data scales from the data it is given.

    Raises
    ------
    ValueError
        A parameter array is missing or ill-shaped (the message names it and both shapes) or
        holds NaN/inf (:func:`check_parameter_values`), ``n_components`` disagrees with
        ``components_``, a hyper-parameter does not fit the arrays (e.g. ``k > n_components``),
        or ``device`` is unknown.
    RuntimeError
        ``device="cuda"`` and CuPy cannot reach a GPU.
    """
    device = _check_device(device)
    fitted = dict(fitted or {})
    model = cls(**_with_width(cls, params, arrays))
    dtype = common_dtype(arrays)
    for name, value in arrays.items():
        setattr(model, name, _as_attribute(value, dtype, device))
    for name, value in fitted.items():
        setattr(model, name, value)
    if isinstance(model, BaseSparseAutoencoder):
        model._complete_fitted()
        for name, value in fitted.items():  # given values win over derived ones (e.g. a k_ resolved at fit)
            setattr(model, name, value)
        check_parameter_values(model, f"{cls.__name__} weights")
    elif "n_features_in_" not in fitted and getattr(getattr(model, "components_", None), "ndim", 0) == 2:
        model.n_features_in_ = int(model.components_.shape[1])
    return model
