"""Input validation shared by every estimator, for NumPy and CuPy arrays alike.

NumPy (and anything array-like: lists, DataFrames, memmaps) goes through
scikit-learn's :func:`~sklearn.utils.validation.validate_data`, so messages and
``feature_names_in_`` behave exactly as scikit-learn users expect. CuPy arrays
cannot go through it (it would copy them to the host), so they get the same
checks here, written against ``xp``.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_array, check_consistent_length, validate_data

from skdict._array import device_of, get_namespace, is_cupy_array, to_device
from skdict.ops.atoms import normalize_rows

FLOAT_DTYPES = (np.float64, np.float32)


def _check_device_array(X, *, name, estimator, min_samples=1):
    """The checks of :func:`check_array` for a CuPy array: 2-D, float, finite, non-empty."""
    xp = get_namespace(X)
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2D array for {name}, got {X.ndim}D with shape {X.shape}. "
            "Reshape your data with .reshape(-1, 1) for a single feature or .reshape(1, -1) for a single sample."
        )
    if X.dtype not in (xp.float32, xp.float64):
        X = X.astype(xp.float64)
    if X.shape[0] < min_samples:
        raise ValueError(
            f"Found array with {X.shape[0]} sample(s) (shape={X.shape}) while a minimum of "
            f"{min_samples} is required"
            + (f" by {type(estimator).__name__}." if estimator is not None else f" for {name}.")
        )
    if X.shape[1] < 1:
        raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 is required.")
    if not bool(xp.isfinite(X).all()):
        raise ValueError(f"Input {name} contains NaN or infinity; remove or impute those values first.")
    return X


def _check_n_features(estimator, X, reset):
    if reset:
        estimator.n_features_in_ = X.shape[1]
    elif X.shape[1] != estimator.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(estimator).__name__} is expecting "
            f"{estimator.n_features_in_} features as input."
        )


def check_input(estimator, X, *, reset):
    """Validate ``X`` for ``estimator`` (fit when ``reset`` is true, else a fitted method).

    Returns a C-contiguous float32/float64 array of the input's backend; other
    dtypes become float64.
    """
    if is_cupy_array(X):
        X = _check_device_array(X, name="X", estimator=estimator)
        _check_n_features(estimator, X, reset)
        return get_namespace(X).ascontiguousarray(X)
    return validate_data(estimator, X, reset=reset, dtype=FLOAT_DTYPES, order="C")


def check_target(Y, X, *, name="Y"):
    """Validate a transcoder target ``Y``: 2-D, as many rows as ``X``, ``X``'s dtype."""
    if is_cupy_array(Y) != is_cupy_array(X):
        raise TypeError(f"{name} and X must both be NumPy or both be CuPy arrays.")
    dtype = getattr(Y, "dtype", None)
    if dtype is not None and getattr(dtype, "kind", "f") in "biu":
        raise ValueError(
            f"{name} is a 2-D {dtype} array: that looks like labels (e.g. one-hot or multi-output), not "
            "activations. A 2-D target makes the fit a transcoder that reconstructs it; pass labels as a "
            f"1-D vector (ignored, as in a Pipeline) or give {name} as floats to train a transcoder."
        )
    if is_cupy_array(Y):
        Y = _check_device_array(Y, name=name, estimator=None)
        Y = get_namespace(Y).ascontiguousarray(Y.astype(X.dtype, copy=False))
    else:
        Y = check_array(Y, dtype=X.dtype, order="C", input_name=name)
    if Y.shape[0] != X.shape[0]:
        check_consistent_length(X, Y)
    return Y


def is_matrix_target(y):
    """Whether ``y`` is a 2-D matrix (a transcoder target) rather than a label vector or ``None``.

    scikit-learn's Pipeline passes the labels ``y`` to every step; a 1-D ``y`` is
    therefore ignored by the SAEs (as by every unsupervised transformer), and only
    a 2-D ``Y`` of shape (n_samples, n_targets) makes the fit a transcoder.
    """
    if y is None:
        return False
    ndim = getattr(y, "ndim", None)
    return (np.asarray(y).ndim if ndim is None else ndim) == 2


def check_atoms(atoms, n_atoms, n_features, *, like, name, row_name="n_components"):
    """Validate user-given directions (atoms as rows) and return them with unit rows.

    Used for a dictionary to start from (e.g. an SAE's ``components_``) and for
    anchors: 2-D of shape ``(n_atoms, n_features)``, finite, no zero row.

    Parameters
    ----------
    atoms : array-like of shape (n_atoms, n_features), NumPy or CuPy
    n_atoms : int or None
        Expected number of rows; ``None`` accepts any.
    n_features : int
    like : array
        The result has its backend and dtype.
    name : str
        Parameter name used in error messages.
    row_name : str
        What the rows count, in the shape shown by error messages.
    """
    xp = get_namespace(like)
    if is_cupy_array(atoms) != is_cupy_array(like):
        atoms = to_device(atoms, device_of(like))
    atoms = atoms if is_cupy_array(atoms) else np.asarray(atoms)
    if n_atoms is None:
        expected = f"({row_name}, {n_features})"
    else:
        expected = f"({row_name}, n_features) = ({n_atoms}, {n_features})"
    if atoms.ndim != 2 or atoms.shape[1] != n_features or (n_atoms is not None and atoms.shape[0] != n_atoms):
        raise ValueError(
            f"{name} must have shape {expected} with atoms as rows, got shape {tuple(atoms.shape)}"
            + (". An SAE's components_ has this shape when its n_components matches" if row_name == "n_components" else "")
            + f"; transpose a (n_features, {row_name}) matrix."
        )
    atoms = xp.asarray(atoms, dtype=like.dtype)
    if not bool(xp.isfinite(atoms).all()):
        raise ValueError(f"{name} contains NaN or infinity.")
    if bool(xp.any(xp.max(xp.abs(atoms), axis=1) == 0)):
        raise ValueError(f"{name} has all-zero atoms (a zero row); every atom needs a direction.")
    return normalize_rows(atoms, eps=0.0)
