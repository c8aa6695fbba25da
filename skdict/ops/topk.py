"""Exact top-k selection, per row and over a whole batch."""

from __future__ import annotations

from skdict._array import get_namespace


def row_topk(A, k):
    """Indices and values of the ``k`` largest entries of each row of ``A``.

    Parameters
    ----------
    A : array of shape (n_rows, n_cols)
        Pre-activations :math:`a_n`.
    k : int
        How many entries to keep per row, ``1 <= k <= n_cols``.

    Returns
    -------
    indices : int array of shape (n_rows, k)
        Column indices of the selected entries, in no particular order.
    values : array of shape (n_rows, k)
        ``A[n, indices[n]]``.

    Notes
    -----
    Exact: ties at the k-th value are broken arbitrarily but exactly ``k``
    entries are returned per row.
    """
    xp = get_namespace(A)
    n_cols = A.shape[1]
    if not 1 <= k <= n_cols:
        raise ValueError(f"k must be in [1, {n_cols}] (the number of columns), got {k}.")
    if k == n_cols:
        indices = xp.broadcast_to(xp.arange(n_cols), A.shape).copy()
    else:
        indices = xp.argpartition(A, n_cols - k, axis=1)[:, n_cols - k :]
    values = xp.take_along_axis(A, indices, axis=1)
    return indices, values


def batch_topk(A, n_keep):
    """Row and column indices of the ``n_keep`` largest entries of the whole matrix ``A``.

    This is the BatchTopK selection (Bussmann et al., 2024): the batch shares one
    budget of ``n_keep = batch_size * k`` active latents.

    Returns
    -------
    rows, cols : int arrays of shape (n_keep,)
        Sorted by row (row-major order), as :func:`skdict.ops.codes.CodeMatrix` wants.
    """
    xp = get_namespace(A)
    size = A.size
    if not 1 <= n_keep <= size:
        raise ValueError(f"n_keep must be in [1, {size}], got {n_keep}.")
    flat = A.reshape(-1)
    if n_keep == size:
        chosen = xp.arange(size)
    else:
        chosen = xp.argpartition(flat, size - n_keep)[size - n_keep :]
    chosen = xp.sort(chosen)
    return chosen // A.shape[1], chosen % A.shape[1]
