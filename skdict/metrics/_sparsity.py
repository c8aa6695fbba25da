"""Sparsity of codes: mean active latents per sample (L0) and the fraction of dead latents."""

from __future__ import annotations

from skdict._array import get_namespace
from skdict.metrics._validation import _check_matrix, _is_sparse


def _sparse_pattern(codes, fmt):
    """A copy of sparse ``codes`` in format ``fmt`` with duplicates summed and explicit zeros dropped."""
    pattern = codes.tocsc(copy=True) if fmt == "csc" else codes.tocsr(copy=True)
    pattern.sum_duplicates()
    pattern.eliminate_zeros()
    return pattern


def l0(codes):
    r"""Mean number of nonzero entries per row, :math:`\frac{1}{n}\sum_i \lVert c_i \rVert_0`.

    Parameters
    ----------
    codes : array or sparse matrix of shape (n_samples, n_components)
        Dense NumPy/CuPy arrays and SciPy/CuPy sparse matrices are accepted;
        explicitly stored zeros of a sparse matrix do not count.

    Returns
    -------
    l0 : float
    """
    codes = _check_matrix(codes, "codes", allow_sparse=True, floating=False)
    n_samples = codes.shape[0]
    if _is_sparse(codes):
        return _sparse_pattern(codes, "csr").nnz / n_samples
    xp = get_namespace(codes)
    return int(xp.count_nonzero(codes)) / n_samples


def dead_fraction(codes):
    r"""Fraction of latents (columns) that are zero on every row given.

    A latent :math:`j` is dead on these samples when :math:`c_{ij} = 0` for all :math:`i`.

    Parameters
    ----------
    codes : array or sparse matrix of shape (n_samples, n_components)
        Dense NumPy/CuPy arrays and SciPy/CuPy sparse matrices are accepted.

    Returns
    -------
    dead_fraction : float
        In :math:`[0, 1]`.
    """
    codes = _check_matrix(codes, "codes", allow_sparse=True, floating=False)
    n_components = codes.shape[1]
    if _is_sparse(codes):
        indptr = _sparse_pattern(codes, "csc").indptr
        xp = get_namespace(indptr)
        alive = xp.count_nonzero(indptr[1:] != indptr[:-1])
    else:
        xp = get_namespace(codes)
        alive = xp.count_nonzero(xp.any(codes != 0, axis=0))
    return 1.0 - int(alive) / n_components
