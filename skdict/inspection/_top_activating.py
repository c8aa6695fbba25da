"""The samples on which each latent fires hardest: what an interpretability user reads first about a feature.

:func:`top_activating` reads ``X`` once, block by block, through the data-source layer
(:func:`skdict.sources.as_source`), so an activation file far larger than memory is
handled like an array; the pass is ``skdict.metrics._code_blocks.code_blocks`` (codes of one
block at a time, for any estimator with ``transform``), which the firing frequency uses too.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch

from skdict._array import get_namespace, is_cupy_array, to_numpy
from skdict.metrics._code_blocks import check_count, check_fitted, code_blocks, n_latents


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


def _rank_within_group(xp, sorted_keys):
    """For a sorted 1-D key array: each entry's position among the entries of its key (0 for the first)."""
    index = xp.arange(sorted_keys.shape[0], dtype=np.int64)
    return index - xp.searchsorted(sorted_keys, sorted_keys, side="left")


class _RunningTop:
    """The ``n`` best (latent position, row) entries per latent seen so far, updated block by block.

    Entries are dicts of 1-D arrays ``positions``, ``values``, ``rows`` (and ``samples``,
    the rows of ``X``, when asked). The kept ones are ordered by (position, value
    descending, row ascending), at most ``n`` per latent. A block's entries enter only
    above their latent's ``floor`` (its n-th kept value, once it has ``n``: a later row
    with an equal value ranks after it) and wait in ``pending`` until there are as many
    as kept entries; one merge then sorts them all. Memory is O(n_latents * n + block)
    and each entry is sorted O(1) times on average, whatever the number of rows read.
    """

    def __init__(self, xp, wanted, n, dtype, n_features=None):
        self.xp, self.wanted, self.n = xp, wanted, n
        empty = xp.zeros(0, dtype=np.int64)
        self.kept = {"positions": empty, "values": xp.zeros(0, dtype=dtype), "rows": empty}
        if n_features is not None:
            self.kept["samples"] = xp.zeros((0, n_features), dtype=dtype)
        self.pending, self.n_pending = [], 0
        self.floor = xp.full(wanted.shape[0], -np.inf, dtype=np.float64)
        self.n_firing = xp.zeros(wanted.shape[0], dtype=np.int64)
        self.n_samples = 0

    def update(self, first_row, block, codes):
        """Add the entries of one block of rows (``block``, first row ``first_row``) and their ``codes``."""
        xp = self.xp
        every = self.wanted.shape[0] == codes.shape[1] and bool((self.wanted == xp.arange(codes.shape[1])).all())
        selected = codes if every else codes[:, self.wanted]
        self.n_firing += xp.count_nonzero(selected, axis=0)
        self.n_samples += codes.shape[0]
        rows, positions = xp.nonzero((selected != 0) & (selected > self.floor))
        entries = {"positions": positions.astype(np.int64), "values": selected[rows, positions],
                   "rows": rows.astype(np.int64) + first_row}
        if "samples" in self.kept:
            entries["samples"] = xp.asarray(block)[rows]
        self.pending.append(entries)
        self.n_pending += rows.shape[0]
        if self.n_pending >= max(1, self.kept["rows"].shape[0]):
            self._merge()

    def _merge(self):
        """Sort the kept and pending entries together and keep the first ``n`` per latent.

        Kept rows precede pending ones, which come block by block and row by row; so, once
        concatenated, entries equal in position and value already stand in row order, and
        two stable sorts (by value, then by position) give the full order.
        """
        xp = self.xp
        joined = {key: xp.concatenate([kept] + [entries[key] for entries in self.pending]) for key, kept in self.kept.items()}
        order = xp.argsort(-joined["values"], kind="stable")
        order = order[xp.argsort(joined["positions"][order], kind="stable")]
        rank = _rank_within_group(xp, joined["positions"][order])
        order, rank = order[rank < self.n], rank[rank < self.n]
        self.kept = {key: array[order] for key, array in joined.items()}
        self.pending, self.n_pending = [], 0
        last = rank == self.n - 1
        self.floor[self.kept["positions"][last]] = self.kept["values"][last]

    def table(self, *, like_cupy):
        """The :class:`TopActivating` tables, padded with -1 / NaN."""
        self._merge()
        xp, shape, kept = self.xp, (self.wanted.shape[0], self.n), self.kept
        where = (kept["positions"], _rank_within_group(xp, kept["positions"]))
        out = {
            "indices": xp.full(shape, -1, dtype=np.int64),
            "values": xp.full(shape, np.nan, dtype=kept["values"].dtype),
        }
        out["indices"][where] = kept["rows"]
        out["values"][where] = kept["values"]
        if "samples" in kept:
            out["samples"] = xp.full(shape + kept["samples"].shape[1:], np.nan, dtype=kept["samples"].dtype)
            out["samples"][where] = kept["samples"]
        out.update(latents=self.wanted, n_firing=self.n_firing)
        if not like_cupy:
            out = {key: to_numpy(value) for key, value in out.items()}
        return TopActivating(**out, n_samples=self.n_samples)


def top_activating(estimator, X, n=10, *, latents=None, batch_size=None, return_samples=False):
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
    return_samples : bool, default=False
        Also keep the listed rows of ``X`` themselves, taken during the same pass (so a
        one-pass stream can be shown too): memory O(n_latents * n * n_features).

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
        ``samples`` : array of shape (len(latents), n, n_features), only with ``return_samples``
            The rows of ``X`` that ``indices`` names (as read: float32 or float64); NaN rows as padding.

    Arrays are CuPy when ``X`` is a CuPy array, NumPy otherwise.

    Raises
    ------
    ValueError
        ``n`` or ``batch_size`` not a positive integer; ``latents`` not 1-D integers in
        ``[0, n_latents)``; and whatever the data source raises for bad data (non-finite
        rows, named with their index).
    """
    n = check_count(n, "n", "samples listed per latent", allow_none=False)
    check_count(batch_size, "batch_size")
    check_fitted(estimator)
    known = n_latents(estimator)
    wanted = None if known is None else _check_latents(latents, known)
    running = None
    for first_row, block, codes in code_blocks(estimator, X, batch_size=batch_size):
        if running is None:  # the first block sets the namespace and, without components_, the latents
            xp = get_namespace(codes)
            wanted = xp.asarray(wanted if wanted is not None else _check_latents(latents, codes.shape[1]))
            dtype = codes.dtype if codes.dtype.kind == "f" else np.float64  # NaN pads the values
            running = _RunningTop(xp, wanted, n, dtype, block.shape[1] if return_samples else None)
        running.update(first_row, block, codes)
    if running is None:
        raise ValueError("X yielded no rows: there are no samples to rank.")
    return running.table(like_cupy=is_cupy_array(X))
