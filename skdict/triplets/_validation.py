"""Validation of triplet arrays ``T`` and their labels ``y`` (NumPy and CuPy alike).

scikit-learn's ``validate_data`` wants 2-D input, so triplets get their own
checks here, with messages that say what shape is expected and how to get it.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_array

from skdict._array import get_namespace, is_cupy_array
from skdict._validation import FLOAT_DTYPES

_SHAPE_HINT = (
    "T must be a 3-D array of shape (n_triplets, 3, n_features) holding the rows (x, y, z) of each "
    "triplet (x is compared with y and with z)"
)


def _check_shape(T, estimator):
    if T.ndim != 3:
        flat = (
            " If your triplets are stored flat as (n_triplets, 3 * n_features), use T.reshape(-1, 3, n_features)."
            if T.ndim == 2
            else ""
        )
        raise ValueError(f"{_SHAPE_HINT}; got a {T.ndim}-D array of shape {T.shape}.{flat}")
    if T.shape[1] != 3:
        raise ValueError(f"{_SHAPE_HINT}; got shape {T.shape}, whose middle dimension is {T.shape[1]}, not 3.")
    if T.shape[0] < 1:
        raise ValueError(f"T holds 0 triplets (shape {T.shape}); {type(estimator).__name__} needs at least 1.")
    if T.shape[2] < 1:
        raise ValueError(f"T has 0 features per vector (shape {T.shape}); at least 1 is required.")


def check_triplets(estimator, T, *, reset):
    """Validate triplets ``T`` for ``estimator`` (``reset`` in fit: set ``n_features_in_``).

    Returns a C-contiguous float32/float64 array of the input's backend (other
    dtypes become float64), of shape (n_triplets, 3, n_features).
    """
    if is_cupy_array(T):
        xp = get_namespace(T)
        _check_shape(T, estimator)
        if T.dtype not in (xp.float32, xp.float64):
            T = T.astype(xp.float64)
        if not bool(xp.isfinite(T).all()):
            raise ValueError("Input T contains NaN or infinity; remove those triplets first.")
        T = xp.ascontiguousarray(T)
    else:
        # scikit-learn's own messages for sparse, complex, object, NaN and empty input; then the shape.
        T = check_array(
            T, dtype=FLOAT_DTYPES, order="C", allow_nd=True, ensure_2d=False, ensure_min_samples=0, input_name="T"
        )
        _check_shape(T, estimator)
    n_features = T.shape[2]
    if reset:
        estimator.n_features_in_ = n_features
    elif n_features != estimator.n_features_in_:
        raise ValueError(
            f"T has {n_features} features per vector, but {type(estimator).__name__} is expecting "
            f"{estimator.n_features_in_} features as input."
        )
    return T


def check_triplet_labels(y, n_triplets, *, xp, dtype):
    """Validate labels ``y`` in {-1, 0, +1}, one per triplet; ``None`` means all equalities (0).

    Labels are small, so they are checked on the host whatever their backend.
    Returns an array of namespace ``xp`` and ``dtype``, of shape (n_triplets,).
    """
    if y is None:
        return xp.zeros(n_triplets, dtype=dtype)
    y_host = y.get() if is_cupy_array(y) else np.asarray(y)
    if y_host.ndim != 1 or y_host.shape[0] != n_triplets:
        raise ValueError(
            f"y must be a 1-D array with one label per triplet, shape ({n_triplets},); got shape {y_host.shape}. "
            "Use y=None when every triplet is an equality."
        )
    if y_host.dtype.kind not in "biuf":
        raise ValueError(f"y must hold the numbers -1, 0 or +1; got dtype {y_host.dtype}.")
    valid = np.isin(y_host, (-1, 0, 1))
    if not valid.all():
        bad = np.unique(y_host[~valid])[:5]
        raise ValueError(
            "y must hold only -1 (x closer to z), 0 (equally close) or +1 (x closer to y); "
            f"found {bad.tolist()}."
        )
    return xp.asarray(y_host, dtype=dtype)
