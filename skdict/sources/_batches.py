"""Minibatches from a source without loading it: block shuffling, and reading ahead on a thread.

Block shuffling: the rows are cut into contiguous blocks, the blocks are read in a
random order (each read is sequential on disk), and the rows of ``buffer_rows``
worth of blocks are shuffled together before being cut into minibatches. Every
row is used exactly once per epoch; only the buffer is ever in memory. With a
buffer as large as the data it is a full shuffle; with one block it is a shuffle
of block order only.
"""

from __future__ import annotations

import queue
import threading

import numpy as np

from skdict._array import get_namespace
from skdict.sources._base import RowRangeSource


def chunks_in_random_order(source, block_rows, rng):
    """Yield the source's chunks, a row-addressable source's blocks in a random order.

    Parameters
    ----------
    source : DataSource
    block_rows : int
        Rows per block read at once (aligned to the storage's chunks where it has them).
    rng : numpy.random.RandomState
        Draws the block order (a stream keeps its own order).
    """
    if isinstance(source, RowRangeSource):
        bounds = source.block_bounds(block_rows)
        for index in rng.permutation(len(bounds)):
            start, stop = bounds[index]
            yield source.read(start, stop, chunk_index=int(index))
    else:
        for _, chunk in source.chunks(block_rows):
            yield chunk


def shuffled_batches(chunks, batch_size, buffer_rows, rng):
    """Cut a sequence of chunks into minibatches of ``batch_size`` rows, shuffling inside a buffer.

    Parameters
    ----------
    chunks : iterable of arrays of shape (n_i, n_features)
    batch_size : int
    buffer_rows : int
        Rows gathered before shuffling (at least ``batch_size``): the larger, the closer to a
        full shuffle, at ``buffer_rows * n_features`` elements of memory.
    rng : numpy.random.RandomState

    Yields
    ------
    batch : array of shape (batch_size, n_features)
        The last batch of the pass holds the rows left over (fewer than ``batch_size``).
    """
    buffer_rows = max(int(buffer_rows), int(batch_size))
    pending, n_pending = [], 0
    leftover = None
    for chunk in chunks:
        pending.append(chunk)
        n_pending += chunk.shape[0]
        if n_pending < buffer_rows:
            continue
        rows = _shuffled(pending, leftover, rng)
        n_full = (rows.shape[0] // batch_size) * batch_size
        for start in range(0, n_full, batch_size):
            yield rows[start : start + batch_size]
        leftover = rows[n_full:] if n_full < rows.shape[0] else None
        pending, n_pending = [], 0
    if pending or leftover is not None:
        rows = _shuffled(pending, leftover, rng)
        for start in range(0, rows.shape[0], batch_size):
            yield rows[start : start + batch_size]


def _shuffled(chunks, leftover, rng):
    """The rows of ``leftover`` and ``chunks`` together, in a random order (one copy)."""
    parts = ([leftover] if leftover is not None else []) + list(chunks)
    rows = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
    xp = get_namespace(rows)
    return rows[xp.asarray(rng.permutation(rows.shape[0]))]


_DONE = object()


class prefetched:
    """Iterate over ``iterable`` while a background thread computes the next ``depth`` items.

    Reading the next blocks from disk (or fetching them from a Dask cluster) then
    overlaps the current training step. An exception raised while producing an
    item is raised again, unchanged, where that item would have been consumed;
    leaving the loop early (``break``, an error in the step) stops the thread.

    Parameters
    ----------
    iterable : iterable
    depth : int, default=2
        Items produced ahead (each holds memory: a batch or a block).
    """

    def __init__(self, iterable, depth=2):
        self._queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, args=(iter(iterable),), name="skdict-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item):
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, iterator):
        try:
            for item in iterator:
                if not self._put((item, None)):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            self._put((None, exc))
            return
        self._put((_DONE, None))

    def __iter__(self):
        return self

    def __next__(self):
        item, error = self._queue.get()
        if error is not None:
            self.close()
            raise error
        if item is _DONE:
            self.close()
            raise StopIteration
        return item

    def close(self):
        """Stop the producing thread and wait for it."""
        self._stop.set()
        self._thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def sample_rows(source, size, rng, *, block_rows=4096):
    """About ``size`` rows drawn from a source without reading all of it.

    A row-addressable source gives ``size`` rows drawn uniformly from randomly chosen
    blocks of ``block_rows`` rows (a few sequential reads, not ``size`` random ones);
    when the source has at most ``size`` rows, all of them. A stream gives its
    first rows (up to ``size``; a one-pass stream keeps them for its first pass): the
    sample of a stream is its beginning, which is documented wherever it is used.

    Returns
    -------
    rows : array of shape (min(size, n_rows), n_features)
    """
    if isinstance(source, RowRangeSource):
        if source.n_rows <= size:
            return source.read(0, source.n_rows)
        bounds = source.block_bounds(block_rows)
        picked, n_picked = [], 0
        for index in rng.permutation(len(bounds)):
            start, stop = bounds[index]
            picked.append(source.read(start, stop, chunk_index=int(index)))
            n_picked += stop - start
            if n_picked >= 4 * size or n_picked >= source.n_rows:
                break
        rows = picked[0] if len(picked) == 1 else np.concatenate(picked, axis=0)
        xp = get_namespace(rows)
        return rows[xp.asarray(np.sort(rng.choice(rows.shape[0], size=min(size, rows.shape[0]), replace=False)))]
    return source.peek(size)


def epoch_batches(source, batch_size, rng, *, buffer_rows, block_rows):
    """The minibatches of one epoch over ``source``, every row once.

    A row-addressable source of at most ``buffer_rows`` rows is read whole, in order, and
    its rows drawn by ``rng.permutation(n_rows)`` -- exactly the order an in-memory array
    gets from the training engine, so a small file trains to the same parameters as the
    array it holds. A larger source, or a stream, is block-shuffled
    (:func:`chunks_in_random_order`, :func:`shuffled_batches`).

    Parameters
    ----------
    source : DataSource
    batch_size : int
    rng : numpy.random.RandomState
    buffer_rows : int
        Rows shuffled together (memory: ``buffer_rows * n_features`` elements, twice while a
        buffer is cut into batches).
    block_rows : int
        Rows per sequential read.
    """
    if isinstance(source, RowRangeSource) and source.n_rows <= buffer_rows:
        rows = source.read(0, source.n_rows)
        order = get_namespace(rows).asarray(rng.permutation(source.n_rows))
        for start in range(0, source.n_rows, batch_size):
            yield rows[order[start : start + batch_size]]
        return
    yield from shuffled_batches(chunks_in_random_order(source, block_rows, rng), batch_size, buffer_rows, rng)
