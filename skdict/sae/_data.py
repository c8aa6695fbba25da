"""What the SAE training engine reads: minibatches, an initialisation sample, statistics rows.

Two kinds of training data give the engine the same four things:

- :class:`InMemoryData`: ``X`` (and a transcoder's ``Y``) as arrays on the training
  device. An epoch draws ``rng.permutation(n_samples)`` and gathers ``X[rows]``: the
  fastest path, and the reference every source is tested against.
- :class:`StreamedData`: a :class:`~skdict.sources.DataSource` (a ``.npy`` file or
  shards, HDF5, Zarr, Dask, a stream of chunks). An epoch block-shuffles it
  (:func:`~skdict.sources.epoch_batches`) on a background thread and moves each
  minibatch to the training device; at most a shuffle buffer is ever in memory.
  A source within one buffer is drawn in exactly the in-memory order, so it trains
  to the same parameters as the array it holds.
"""

from __future__ import annotations

import numpy as np

from skdict._array import HostToDevice, get_namespace
from skdict.ops.moments import RunningMoments, batch_moments
from skdict._validation import is_matrix_target
from skdict.sources import PairedSource, RowRangeSource, epoch_batches, is_out_of_core, prefetched, sample_rows

#: Rows shuffled together when streaming, as bytes of rows held (the buffer is copied once when cut).
SHUFFLE_BUFFER_BYTES = 1 << 28
#: Bytes of rows read at once from a source (sequential on disk).
BLOCK_BYTES = 1 << 23
#: Minibatches read ahead of the training step on the prefetch thread.
PREFETCH_BATCHES = 4


def _sample_rows(rng, n_rows, size):
    """Sorted indices of ``min(size, n_rows)`` distinct rows, without permuting all ``n_rows`` indices.

    (``RandomState.choice(n, size, replace=False)`` shuffles all n indices: gigabytes
    for 1e8 rows.) Draws with replacement, keeps the distinct ones and subsamples
    them; a uniform random subset either way.
    """
    if n_rows <= 4 * size:
        return np.sort(rng.choice(n_rows, size=min(size, n_rows), replace=False))
    distinct = np.unique(rng.randint(0, n_rows, size=2 * size))
    while distinct.shape[0] < size:  # 2*size draws from > 4*size rows: rarely more than once
        distinct = np.union1d(distinct, rng.randint(0, n_rows, size=size))
    return np.sort(rng.choice(distinct, size=size, replace=False))


def is_target(y):
    """Whether ``y`` given with out-of-core ``X`` is a transcoder target: a 2-D array, or a file, dataset or source.

    A 1-D label vector (what a Pipeline passes) is not, as for in-memory ``X``; a 3-D array raises.
    """
    if y is None:
        return False
    return is_matrix_target(y) if hasattr(y, "ndim") else is_out_of_core(y)


def spread_rows(n_rows, size):
    """Indices of ``size`` evenly spaced rows of ``n_rows`` (``None`` when ``size >= n_rows``: all of them), deterministic."""
    if n_rows <= size:
        return None
    return (np.arange(size, dtype=np.int64) * n_rows) // size


class InMemoryData:
    """Training rows held as arrays on the training device.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    Y : array of shape (n_samples, n_targets) or None
        A transcoder's targets; ``None`` for an SAE (the target is ``X``).
    """

    def __init__(self, X, Y):
        self.X, self.Y = X, Y
        self.has_target = Y is not None
        self.reiterable = True
        self.n_rows, self.n_features = X.shape
        self.dtype = X.dtype
        self.xp = get_namespace(X)
        self._total_variance = None

    @property
    def target(self):
        return self.X if self.Y is None else self.Y

    def init_sample(self, rng, size):
        """``(X rows, target rows)`` of up to ``size`` random rows, for the initial statistics."""
        rows = self.xp.asarray(_sample_rows(rng, self.n_rows, size))
        X_rows = self.X[rows]
        return X_rows, (X_rows if self.Y is None else self.Y[rows])

    def statistics_rows(self, size):
        """Up to ``size`` evenly spaced rows of ``X`` (e.g. for an inference threshold at the final parameters)."""
        rows = spread_rows(self.n_rows, size)
        return self.X if rows is None else self.X[self.xp.asarray(rows)]

    def epoch(self, rng, batch_size):
        """Yield ``(Xb, Yb, None)`` minibatches of one epoch in the order ``rng.permutation(n_samples)``.

        (The third item is the batch's target moments where the data computes them ahead: not in memory,
        where the total variance is known, :meth:`total_variance`.)
        """
        order = self.xp.asarray(rng.permutation(self.n_rows))
        for start in range(0, self.n_rows, batch_size):
            rows = order[start : start + batch_size]
            Xb = self.X[rows]
            yield Xb, (Xb if self.Y is None else self.Y[rows]), None

    def total_variance(self):
        """:math:`\\sum_n \\|y_n - \\bar y\\|^2` of the targets (computed once)."""
        if self._total_variance is None:
            self._total_variance = RunningMoments().update(self.target).total_variance
        return self._total_variance


class StreamedData:
    """Training rows read from a :class:`~skdict.sources.DataSource`, one shuffle buffer at a time.

    Parameters
    ----------
    source : DataSource
        For a transcoder, a :class:`~skdict.sources.PairedSource` of inputs and targets.
    device : {"cpu", "cuda"}
        Where minibatches go (the copy runs on the prefetch thread, ahead of the step).
    """

    def __init__(self, source, device):
        self.source, self.device = source, device
        self.paired = self.has_target = isinstance(source, PairedSource)
        self.reiterable = source.reiterable
        self.n_rows = source.n_rows
        self.n_features = source.n_inputs if self.paired else source.n_features
        self.dtype = source.dtype
        row_bytes = source.n_features * source.dtype.itemsize
        self.buffer_rows = max(1, SHUFFLE_BUFFER_BYTES // row_bytes)
        self.block_rows = max(1, BLOCK_BYTES // row_bytes)
        self._to_device = HostToDevice(device)  # on a GPU: pinned memory and a copy stream of its own
        #: Within one shuffle buffer, every sample is drawn as from the array the source holds.
        self.within_buffer = isinstance(source, RowRangeSource) and source.n_rows <= self.buffer_rows

    def _split(self, rows):
        rows = self._to_device(rows)
        if self.paired:
            return self.source.split(rows)
        return rows, rows

    def init_sample(self, rng, size):
        """``(X rows, target rows)`` of about ``size`` rows.

        Within one buffer: the rows :class:`InMemoryData` would draw with the same ``rng``.
        Larger: rows from a few random blocks (:func:`~skdict.sources.sample_rows`); a stream: its first rows.
        """
        if self.within_buffer:
            rows = self.source.read(0, self.n_rows)
            return self._split(rows[_sample_rows(rng, self.n_rows, size)])
        return self._split(sample_rows(self.source, size, rng))

    def statistics_rows(self, size):
        """About ``size`` rows of ``X``: evenly spaced within one buffer (as in memory), else from random blocks.

        The blocks are drawn with a fixed seed: the training RNG is not used.
        """
        if self.within_buffer:
            rows, every = spread_rows(self.n_rows, size), self.source.read(0, self.n_rows)
            return self._split(every if rows is None else every[rows])[0]
        return self._split(sample_rows(self.source, size, np.random.RandomState(0)))[0]

    def epoch(self, rng, batch_size):
        """Yield ``(Xb, Yb, moments)`` minibatches of one block-shuffled epoch, read ahead on a thread.

        The prefetch thread reads, shuffles, computes the batch's target moments
        (:func:`~skdict.ops.moments.batch_moments` of the host rows: ``(n, mean, m2)``, which the
        engine merges into its windows' explained-variance denominators) and moves each minibatch
        to the device, all off the training thread.
        """
        batches = epoch_batches(self.source, batch_size, rng, buffer_rows=self.buffer_rows, block_rows=self.block_rows)

        def produce():
            for rows in batches:
                target = self.source.split(rows)[1] if self.paired else rows
                moments = batch_moments(target)
                Xb, Yb = self._split(rows)
                yield Xb, Yb, moments

        with prefetched(produce(), depth=PREFETCH_BATCHES) as ahead:
            yield from ahead
