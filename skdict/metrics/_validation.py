"""Argument checks shared by the metric functions (NumPy and CuPy arrays alike)."""

from __future__ import annotations

import scipy.sparse

from skdict._array import get_namespace


def _is_sparse(x):
    """Whether ``x`` is a SciPy or CuPy sparse matrix/array (without importing CuPy)."""
    return scipy.sparse.issparse(x) or type(x).__module__.startswith("cupyx.scipy.sparse")


def _check_matrix(x, name, *, min_rows=1, allow_sparse=False, floating=True):
    """Return ``x`` as a finite 2-D array of its own backend, or raise a ValueError naming ``name``.

    Parameters
    ----------
    x : array-like, NumPy/CuPy array, or sparse matrix when ``allow_sparse``
    name : str
        The argument's name, used in every message.
    min_rows : int
        Fewest rows accepted.
    allow_sparse : bool
        Accept SciPy/CuPy sparse input (returned in CSR format, unchanged otherwise).
    floating : bool
        Cast non-floating dense input to float64.
    """
    if _is_sparse(x):
        if not allow_sparse:
            raise TypeError(f"{name} must be a dense array, got a sparse {type(x).__name__}; call .toarray() first.")
        if x.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got shape {x.shape}.")
        x = x.tocsr()
        data = x.data
    else:
        xp = get_namespace(x)
        x = xp.asarray(x)
        if x.ndim != 2:
            raise ValueError(
                f"{name} must be a 2-D array of shape (n_rows, n_columns), got {x.ndim}-D with shape {x.shape}."
            )
        if floating and x.dtype.kind != "f":
            x = x.astype(xp.float64)
        data = x
    if x.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} row(s), got shape {x.shape}.")
    if x.shape[1] < 1:
        raise ValueError(f"{name} needs at least 1 column, got shape {x.shape}.")
    xp = get_namespace(data)
    if data.dtype.kind in "fc" and not bool(xp.all(xp.isfinite(data))):
        raise ValueError(f"{name} contains NaN or infinity; remove or impute those values first.")
    return x


def _check_same_n_dims(a, b, name_a, name_b):
    """Raise a ValueError naming both shapes unless ``a`` and ``b`` have as many columns."""
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same number of columns (n_dims); "
            f"got {name_a}.shape={a.shape} and {name_b}.shape={b.shape}."
        )
