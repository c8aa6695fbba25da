"""The samples on which each latent fires hardest: what an interpretability user reads first about a feature.

:func:`top_activating` reads ``X`` once, block by block, through the data-source layer
(:func:`skdict.sources.as_source`), so an activation file far larger than memory is
handled like an array; :func:`code_blocks` is that pass (codes of one block at a
time, for any estimator with ``transform``) and can serve other streamed statistics.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import Bunch
from sklearn.utils.validation import check_is_fitted

from skdict._array import get_namespace, is_cupy_array, to_numpy
from skdict.sources import as_source, prefetched

#: Code entries (rows x latents) of one block: the default block is about this many.
BLOCK_ENTRIES = 1 << 22


def _n_latents(estimator):
    """The estimator's number of latents when it can be read before any transform (``components_``), else ``None``."""
    components = getattr(estimator, "components_", None)
    return None if components is None else int(components.shape[0])


def _check_fitted(estimator):
    """scikit-learn's fitted check for its estimators; any other object with ``transform`` is taken as fitted."""
    if isinstance(estimator, BaseEstimator):
        check_is_fitted(estimator)


def code_blocks(estimator, X, *, batch_size=None):
    """Yield ``(first_row, codes)`` over ``X`` in order, one block of rows at a time.

    Parameters
    ----------
    estimator : fitted transformer
        Anything with ``transform`` (an SAE or transcoder, :class:`~skdict.SparseCoder`,
        a dictionary learner).
    X : array of shape (n_samples, n_features), or out-of-core data
        Whatever :func:`skdict.sources.as_source` reads: a NumPy/CuPy array or memmap, a ``.npy``
        path, folder or glob of shards, an HDF5/Zarr dataset, a Dask array, an iterable of 2-D chunks.
    batch_size : int, optional
        Rows per block. Default: about :data:`BLOCK_ENTRIES` code entries per block.
        A stream's chunks longer than that are cut to it.

    Yields
    ------
    first_row : int
        Index in ``X`` of the block's first row.
    codes : array of shape (n_rows_in_block, n_latents)
        Dense codes of the block (NumPy, or CuPy where the estimator returns CuPy).
    """
    _check_fitted(estimator)
    source = as_source(X)
    if batch_size is None:
        batch_size = max(1, BLOCK_ENTRIES // max(_n_latents(estimator) or 1, source.n_features))
    with prefetched(source.chunks(batch_size), depth=2) as chunks:
        for first_row, chunk in chunks:
            for start in range(0, chunk.shape[0], batch_size):
                codes = estimator.transform(chunk[start : start + batch_size])
                if hasattr(codes, "toarray"):  # a SciPy or CuPy sparse matrix: dense for this block only
                    codes = codes.toarray()
                yield first_row + start, codes


def _check_n(n):
    if isinstance(n, bool) or not isinstance(n, Integral) or n < 1:
        raise ValueError(f"n must be a positive integer (samples listed per latent), got {n!r}.")
    return int(n)


def _check_batch_size(batch_size):
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, Integral) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer (rows per block) or None, got {batch_size!r}.")


def _check_latents(latents, n_latents):
    """``latents`` as a 1-D int64 NumPy array of indices in ``[0, n_latents)`` (all of them when ``None``)."""
    if latents is None:
        return np.arange(n_latents, dtype=np.int64)
    values = np.asarray(to_numpy(latents))
    if values.ndim != 1 or values.size == 0 or values.dtype.kind not in "iu":
        raise ValueError(
            f"latents must be a non-empty 1-D sequence of integer latent indices, got {latents!r}; "
            "pass None for every latent."
        )
    bad = values[(values < 0) | (values >= n_latents)]
    if bad.size:
        raise ValueError(
            f"latents must lie in [0, {n_latents}) (the estimator has {n_latents} latents), got {bad.tolist()[:5]}."
        )
    return values.astype(np.int64)


class TopActivating(Bunch):
    """The result of :func:`top_activating`: a Bunch whose ``values`` attribute is the table of activations.

    (A plain Bunch is a dict, whose ``values`` attribute is the method ``dict.values``; here
    ``result.values`` and ``result["values"]`` are both the array. Iterate with ``items()``.)
    """

    @property
    def values(self):
        return self["values"]


def _merge_top(xp, best, block, n):
    """The ``n`` first entries per latent of ``best`` and ``block`` together, by value descending, row ascending.

    Each is a triple ``(positions, values, rows)`` of 1-D arrays: one entry per
    (latent position, sample) pair where the latent fired. ``best`` is ordered by
    (position, value descending, row ascending) and its rows all precede ``block``'s,
    whose entries come row by row; so, after concatenation, entries equal in position
    and value already stand in row order, and two stable sorts (by value, then by
    position) give the full order.
    """
    positions, values, rows = (xp.concatenate([a, b]) for a, b in zip(best, block))
    order = xp.argsort(-values, kind="stable")
    order = order[xp.argsort(positions[order], kind="stable")]
    positions, values, rows = positions[order], values[order], rows[order]
    rank = _rank_within_group(xp, positions)
    keep = rank < n
    return positions[keep], values[keep], rows[keep]


def _rank_within_group(xp, sorted_keys):
    """For a sorted 1-D key array: each entry's position among the entries of its key (0 for the first)."""
    index = xp.arange(sorted_keys.shape[0], dtype=np.int64)
    starts = xp.searchsorted(sorted_keys, sorted_keys, side="left")
    return index - starts


def top_activating(estimator, X, n=10, *, latents=None, batch_size=None):
    """For each latent, the ``n`` samples of ``X`` with the highest activation, in one pass over ``X``.

    The activation of latent :math:`j` on sample :math:`i` is the code :math:`z_{ij}`
    (``estimator.transform(X)[i, j]``). Only samples where the latent fires
    (:math:`z_{ij} \\ne 0`) are listed; they are ranked by :math:`z_{ij}`, largest first
    (so for signed codes, negative activations come after every positive one), and equal
    values by row index, lowest first.

    Parameters
    ----------
    estimator : fitted transformer
        An SAE or transcoder (codes of ``X``), :class:`~skdict.SparseCoder`, a dictionary
        learner: anything with ``transform`` giving (n_samples, n_latents) codes.
    X : array of shape (n_samples, n_features), or out-of-core data
        Read once, block by block, through :func:`skdict.sources.as_source`: a NumPy or
        CuPy array or memmap, a ``.npy`` path, folder or glob of shards, an HDF5/Zarr
        dataset, a Dask array, or an iterable (a generator) of 2-D chunks.
    n : int, default=10
        Samples listed per latent.
    latents : sequence of int, optional
        Indices of the latents to report (default: every latent), in the order wanted.
    batch_size : int, optional
        Rows encoded at once (default: about 4M code entries per block). Memory is
        O(n_latents * n + batch_size * n_latents) whatever the size of ``X``.

    Returns
    -------
    TopActivating (a :class:`~sklearn.utils.Bunch`) with
        ``indices`` : int64 array of shape (len(latents), n)
            Row indices into ``X`` (for a stream: positions in the order its rows came),
            row ``p`` for latent ``latents[p]``; **-1** where the latent fired on fewer than ``n`` samples.
        ``values`` : float array of shape (len(latents), n)
            The activations :math:`z_{ij}` of those rows, descending; **NaN** where ``indices`` is -1.
        ``latents`` : int64 array of shape (len(latents),)
            The latents the rows stand for.
        ``n_firing`` : int64 array of shape (len(latents),)
            On how many samples each latent fired (its firing frequency times ``n_samples``).
        ``n_samples`` : int
            Rows read.

    Arrays are CuPy when ``X`` is a CuPy array, NumPy otherwise.

    Raises
    ------
    ValueError
        ``n`` or ``batch_size`` not a positive integer; ``latents`` not 1-D integers in
        ``[0, n_latents)``; and whatever the data source raises for bad data (non-finite
        rows, named with their index).
    """
    n = _check_n(n)
    _check_batch_size(batch_size)
    _check_fitted(estimator)
    known = _n_latents(estimator)
    wanted = None if known is None else _check_latents(latents, known)
    best = xp = n_firing = None
    n_samples = 0
    for first_row, codes in code_blocks(estimator, X, batch_size=batch_size):
        if xp is None:  # the first block sets the namespace and, without components_, the latents
            xp = get_namespace(codes)
            wanted = xp.asarray(wanted if wanted is not None else _check_latents(latents, codes.shape[1]))
            n_firing = xp.zeros(wanted.shape[0], dtype=np.int64)
            empty = xp.zeros(0, dtype=np.int64)
            best = (empty, xp.zeros(0, dtype=codes.dtype), empty)
        selected = codes[:, wanted]
        fired = selected != 0
        n_firing += fired.sum(axis=0)
        block_rows, positions = xp.nonzero(fired)
        block = (positions.astype(np.int64), selected[block_rows, positions], block_rows.astype(np.int64) + first_row)
        best = _merge_top(xp, best, block, n)
        n_samples += codes.shape[0]
    return _as_table(xp, best, wanted, n, n_firing, n_samples, like_cupy=is_cupy_array(X))


def _as_table(xp, best, wanted, n, n_firing, n_samples, *, like_cupy):
    """The kept entries written into (len(latents), n) tables padded with -1 / NaN."""
    positions, values, rows = best
    rank = _rank_within_group(xp, positions)
    indices = xp.full((wanted.shape[0], n), -1, dtype=np.int64)
    table = xp.full((wanted.shape[0], n), np.nan, dtype=values.dtype)
    indices[positions, rank] = rows
    table[positions, rank] = values
    out = (indices, table, wanted, n_firing)
    if not like_cupy:
        out = tuple(to_numpy(a) for a in out)
    return TopActivating(indices=out[0], values=out[1], latents=out[2], n_firing=out[3], n_samples=n_samples)
