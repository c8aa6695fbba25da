"""A fitted estimator from its constructor parameters and arrays (the one door every loader goes through).

:func:`build_fitted` is what :func:`skdict.io.load`, the SAELens and Gemma Scope importers and
the command line use to turn weights into an estimator: the shapes are checked against each
other from the names the class declares, and the scalars a fitted SAE derives from its
parameters (``n_features_in_``, ``is_transcoder_``, ``n_targets_``, ``k_``, ...) are filled in
by the estimator itself (``BaseSparseAutoencoder._complete_fitted``), so a built model computes
exactly what a trained model with the same weights computes.
"""

from __future__ import annotations

import math

import numpy as np

from skdict._array import get_namespace, to_device, to_numpy
from skdict.sae._base import BaseSparseAutoencoder

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


#: Parameters that may hold +inf: a JumpReLU latent whose threshold is +inf never fires.
MAY_BE_INFINITE = ("threshold_",)


def non_finite(value, allowed=()):
    """A description of the NaN/inf entries of ``value`` (those equal to one of ``allowed`` excepted), or ``None``."""
    xp = get_namespace(value)
    good = xp.isfinite(value)
    for infinity in allowed:
        good = good | (value == infinity)
    bad = np.argwhere(~to_numpy(good))
    if not len(bad):
        return None
    return f"{len(bad)} NaN or infinite value(s), the first at index {tuple(int(i) for i in bad[0])}"


def check_parameter_values(model, where):
    """Refuse an SAE whose parameters are not one float dtype or are not finite.

    A model read from a file computes garbage from such weights without a word (a NaN in
    ``encoder_`` makes every code NaN; an integer ``encoder_`` breaks the first Adam step), so
    every loader checks what it built. Other estimators are left as they are.

    Parameters
    ----------
    model : estimator
        Checked when it is an skdict SAE: every array of ``model._params()`` (``encoder_``,
        ``encoder_bias_``, ``components_``, ``decoder_bias_``, JumpReLU's ``threshold_`` ...),
        and BatchTopK's scalar inference ``threshold_``.
    where : str
        The file or source named in the message.

    Raises
    ------
    ValueError
        A parameter whose dtype is not float32/float64 or differs from ``components_``'s, or
        that holds NaN or infinity (+inf is allowed in ``threshold_``): the message names it,
        the count and the first bad index.
    """
    if not isinstance(model, BaseSparseAutoencoder):
        return
    params = model._params()
    dtype = np.dtype(params["components_"].dtype)
    for name, value in params.items():
        if np.dtype(value.dtype) not in (np.float32, np.float64) or np.dtype(value.dtype) != dtype:
            raise ValueError(
                f"{where}: {name} has dtype {value.dtype}, but an SAE's parameters share one dtype, float32 or "
                f"float64 (components_ is {dtype}): convert {name} to {dtype if dtype.kind == 'f' else 'float32'}."
            )
        bad = non_finite(value, (math.inf,) if name in MAY_BE_INFINITE else ())
        if bad is not None:
            raise ValueError(f"{where}: {name} holds {bad}: the model would compute NaN; the weights are damaged.")
    threshold = getattr(model, "threshold_", None)
    if isinstance(threshold, float) and math.isnan(threshold):
        raise ValueError(f"{where}: threshold_ is NaN: the model would compute no codes; the weights are damaged.")


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
