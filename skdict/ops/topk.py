"""Exact top-k selection, per row and over a whole batch."""

from __future__ import annotations

import numpy as np

from skdict._array import get_namespace
from skdict.ops._threads import n_threads, run_blocks, split


#: Rows of ``A`` worked on at once by :func:`row_topk` (about 4 MiB of float32), so a
#: block is still in cache when its candidates are gathered.
_BLOCK_ELEMENTS = 1 << 20
#: Group size of the block-maximum prefilter (a row's candidates are ``k`` groups).
_GROUP_SIZE = 16
#: The prefilter is used only when a row has at least this many groups per kept entry.
_MIN_GROUPS_PER_K = 8


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
    entries are returned per row, and their values are the ``k`` largest.
    Wide rows go through :func:`group_max_candidates` first (a prefilter that
    provably keeps every top-k entry); on NumPy, blocks of rows run on threads.
    """
    xp = get_namespace(A)
    n_rows, n_cols = A.shape
    if not 1 <= k <= n_cols:
        raise ValueError(f"k must be in [1, {n_cols}] (the number of columns), got {k}.")
    if k == n_cols:
        indices = xp.broadcast_to(xp.arange(n_cols), A.shape).copy()
        return indices, xp.take_along_axis(A, indices, axis=1)
    if xp is not np:  # the GPU works on the whole matrix at once
        return _block_topk(A, k)
    indices = xp.empty((n_rows, k), dtype=xp.int64)
    values = xp.empty((n_rows, k), dtype=A.dtype)

    def work(start, stop):
        indices[start:stop], values[start:stop] = _block_topk(A[start:stop], k)

    run_blocks(work, _cache_blocks(n_rows, n_cols), xp)
    return indices, values


def _cache_blocks(n_rows, n_cols):
    """Row blocks of about ``_BLOCK_ELEMENTS`` elements (at least one per thread) for the NumPy top-k paths."""
    return split(n_rows, n_cols, max_blocks=max(n_threads(), -(-n_rows * n_cols // _BLOCK_ELEMENTS)))


def keep_row_topk(A, k, *, shift=None, positive=False):
    """Overwrite ``A`` in place with each row's ``k`` largest entries of ``A + shift``, zero elsewhere.

    The dense TopK code :math:`z = \\mathrm{TopK}_k(a + b)` (with ``positive``,
    :math:`\\mathrm{ReLU}(\\mathrm{TopK}_k(a + b))`) written over the pre-activations
    themselves, so inference needs no second (n_rows x n_cols) array. On NumPy,
    each cache-sized block of rows gets its shift, its selection, its zeroing and
    its kept values while it is still in cache, blocks on threads; the matrix is
    read from memory once.

    Parameters
    ----------
    A : array of shape (n_rows, n_cols)
        Pre-activations :math:`a`, C-contiguous rows; overwritten.
    k : int
        Entries kept per row, ``1 <= k <= n_cols``.
    shift : array of shape (n_cols,) or None
        :math:`b`, added to every row before the selection (e.g. the encoder bias).
    positive : bool, default=False
        Also zero the kept entries that are negative.

    Returns
    -------
    A : the same array.

    Notes
    -----
    The selection is :func:`row_topk`'s: exactly ``k`` entries per row, ties at
    the k-th value broken arbitrarily.
    """
    xp = get_namespace(A)
    n_rows, n_cols = A.shape
    if not 1 <= k <= n_cols:
        raise ValueError(f"k must be in [1, {n_cols}] (the number of columns), got {k}.")

    def work(start, stop):
        block = A[start:stop]
        if shift is not None:
            block += shift
        indices, values = _block_topk(block, k)
        if positive:
            values = xp.maximum(values, 0)
        block[...] = 0
        block[xp.arange(stop - start)[:, None], indices] = values

    if xp is not np:  # the GPU works on the whole matrix at once
        work(0, n_rows)
        return A
    run_blocks(work, _cache_blocks(n_rows, n_cols), xp)
    return A


def _block_topk(A, k):
    """:func:`row_topk` of one block of rows, without argument checks."""
    xp = get_namespace(A)
    n_cols = A.shape[1]
    if not uses_prefilter(n_cols, k):
        chosen = xp.argpartition(A, n_cols - k, axis=1)[:, n_cols - k :]
        return chosen, xp.take_along_axis(A, chosen, axis=1)
    candidates, kept = group_max_candidates(A, k, _GROUP_SIZE)
    n_candidates = candidates.shape[1]
    chosen = xp.argpartition(candidates, n_candidates - k, axis=1)[:, n_candidates - k :]
    values = xp.take_along_axis(candidates, chosen, axis=1)
    return candidate_columns(chosen, kept, n_cols, _GROUP_SIZE), values


def uses_prefilter(n_cols, k):
    """Whether :func:`row_topk` goes through :func:`group_max_candidates` for rows of ``n_cols``.

    Measured on NumPy: the prefilter pays when a row has at least
    ``_MIN_GROUPS_PER_K`` groups of ``_GROUP_SIZE`` columns per kept entry
    (1.3-3.7x faster than ``argpartition`` from n_cols = 128 k up; slower below 64 k).
    """
    return n_cols >= _GROUP_SIZE * _MIN_GROUPS_PER_K * k


def group_max_candidates(A, k, group_size):
    """A few columns per row that contain the row's ``k`` largest entries (block-maximum prefilter).

    The first ``g * n_groups`` columns (``g = group_size``, ``n_groups =
    n_cols // g``) are split into ``n_groups`` strided groups
    :math:`J_t = \\{t, t + n_{groups}, \\dots\\}`; the candidates of a row are the
    ``k`` groups with the largest maxima :math:`M_t = \\max_{j \\in J_t} a_j`,
    plus the ``n_cols mod g`` leftover columns.

    Why no top-k entry is lost: let :math:`a_j` be among the ``k`` largest and
    :math:`J_t \\ni j` a group that was not kept. Each of the ``k`` kept groups
    holds an entry :math:`\\ge M_t \\ge a_j` outside :math:`J_t`, so at least
    ``k`` other entries are :math:`\\ge a_j`; hence :math:`a_j` equals the k-th
    largest value and the candidates still hold ``k`` entries with the top-k values.

    Parameters
    ----------
    A : array of shape (n_rows, n_cols)
    k : int
    group_size : int
        ``g``; at least ``k`` groups are needed (``k * g <= n_cols``).

    Returns
    -------
    candidates : array of shape (n_rows, k * g + n_cols mod g)
        Position ``p < k * g`` holds entry ``s = p // k`` of kept group ``kept[:, p % k]``;
        the last ``n_cols mod g`` positions are the leftover columns
        (:func:`candidate_columns` maps positions back to columns).
    kept : int array of shape (n_rows, k)
        The groups kept, :math:`t`, per row.
    """
    xp = get_namespace(A)
    n_rows, n_cols = A.shape
    n_groups = n_cols // group_size
    if n_groups < k:
        raise ValueError(f"group_size={group_size} leaves {n_groups} groups, fewer than k={k}; lower group_size.")
    body = group_size * n_groups
    grouped = A[:, :body].reshape(n_rows, group_size, n_groups)  # grouped[n, s, t] = A[n, s * n_groups + t]
    maxima = xp.max(grouped, axis=1)
    kept = xp.argpartition(maxima, n_groups - k, axis=1)[:, n_groups - k :]
    candidates = xp.take_along_axis(grouped, kept[:, None, :], axis=2).reshape(n_rows, group_size * k)
    if body < n_cols:
        candidates = xp.concatenate([candidates, A[:, body:]], axis=1)
    return candidates, kept


def candidate_columns(positions, kept, n_cols, group_size):
    """Columns of ``A`` at ``positions`` of the candidates of :func:`group_max_candidates`."""
    xp = get_namespace(positions)
    k = kept.shape[1]
    n_groups = n_cols // group_size
    in_groups = positions < group_size * k
    inside = positions % k  # valid for every position; only used where in_groups
    columns = xp.take_along_axis(kept, inside, axis=1) + (positions // k) * n_groups
    leftover = positions - group_size * k + group_size * n_groups
    return xp.where(in_groups, columns, leftover)


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
