"""What every data source is: rows of activations read one chunk at a time, each chunk checked.

A :class:`DataSource` hands out 2-D chunks of a (possibly huge) activation
matrix without ever holding all of it. Two kinds exist:

- a *row-addressable* source (:class:`RowRangeSource`) knows ``n_rows`` and reads
  any range of rows (``read(start, stop)``): arrays, memory maps, ``.npy`` files and
  shards, HDF5, Zarr and Dask arrays. Minibatches come from blocks read in a random
  order (sequential on disk) and shuffled inside a buffer;
- a *stream* (:class:`~skdict.sources._stream.ChunkStream`) yields chunks in its own
  order and may not know its length: activations harvested from a model batch by batch.

Every chunk passes :func:`check_chunk` on its way out, so a bad row is reported
with the source, the chunk and the row where it sits.
"""

from __future__ import annotations

import numpy as np

from skdict._array import get_namespace

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def working_dtype(dtype):
    """float32 and float64 are kept; any other dtype is read as float64 (scikit-learn's rule)."""
    dtype = np.dtype(dtype)
    return dtype if dtype in FLOAT_DTYPES else np.dtype(np.float64)


def check_chunk(chunk, *, source, chunk_index, first_row, n_features, dtype):
    """Validate one chunk of a source and return it as a C-contiguous array of ``dtype``.

    Parameters
    ----------
    chunk : array of shape (n_rows_in_chunk, n_features)
        NumPy (or CuPy) rows as read from the source.
    source : str
        The source's name in messages (a file path, ``"h5py dataset '/acts'"``, ...).
    chunk_index : int
        Position of the chunk in the source's reading order (0-based).
    first_row : int or None
        Index in the whole source of the chunk's first row (``None`` for a stream, where
        the running count is used by the caller instead).
    n_features : int
        The width every chunk must have.
    dtype : numpy dtype
        The working dtype (float32 or float64).

    Returns
    -------
    chunk : array of shape (n_rows_in_chunk, n_features), C-contiguous, ``dtype``

    Raises
    ------
    ValueError
        Not 2-D, another width, a complex or non-numeric dtype, or a NaN/inf: the message names
        the source, the chunk, the row (in the chunk and in the source) and the fix.
    """
    xp = get_namespace(chunk)
    where = f"{source}, chunk {chunk_index}"
    if getattr(chunk, "ndim", None) != 2:
        raise ValueError(f"{where}: expected a 2-D chunk (rows of activations), got shape {getattr(chunk, 'shape', None)}.")
    if chunk.shape[1] != n_features:
        raise ValueError(
            f"{where} has {chunk.shape[1]} features per row, but the data has {n_features}: every chunk must have "
            "the same width (were two layers or models mixed?)."
        )
    kind = np.dtype(chunk.dtype).kind
    if kind not in "fiub":
        raise ValueError(
            f"{where} has dtype {chunk.dtype}, which cannot be read as real activations "
            "(complex or non-numeric); convert it to float32 or float64 first."
        )
    chunk = xp.ascontiguousarray(chunk, dtype=dtype)
    finite = xp.isfinite(chunk).all(axis=1)
    if not bool(finite.all()):
        row = int(xp.argmin(finite))
        at = f"row {row} of chunk {chunk_index}" if first_row is None else f"row {first_row + row} (row {row} of chunk {chunk_index})"
        raise ValueError(
            f"{source}: {at} contains NaN or infinity. Remove or impute such rows "
            "(a fit stopped by this keeps the parameters of its last good step; nothing else was changed)."
        )
    return chunk


class DataSource:
    """Base class of the sources: a name, a width, a dtype, and (when known) a row count.

    Attributes
    ----------
    name : str
        How messages refer to the source.
    n_features : int
    dtype : numpy dtype
        The working dtype, float32 or float64.
    n_rows : int or None
        ``None`` for a stream of unknown length.
    device : {"cpu", "cuda"}
        Where its chunks live.
    """

    name = "data"
    n_features = 0
    dtype = np.dtype(np.float64)
    n_rows = None
    device = "cpu"

    @property
    def reiterable(self):
        """Whether the source can be read more than once (several epochs)."""
        return True

    def chunks(self, chunk_rows):
        """Yield ``(first_row, chunk)`` over the whole source in its own order, each chunk checked.

        ``first_row`` is the index of the chunk's first row in that order.
        """
        raise NotImplementedError


class RowRangeSource(DataSource):
    """A source whose rows can be read by range: ``read(start, stop)``.

    Subclasses implement :meth:`_read` (unchecked rows ``[start, stop)``) and may
    give :attr:`natural_rows`, the row count of their storage chunks (HDF5/Zarr
    chunks, Dask blocks) so that reads are aligned to them.
    """

    #: Rows per storage chunk (reads aligned to it are cheapest); ``None`` when any range is as good.
    natural_rows = None

    def _read(self, start, stop):
        raise NotImplementedError

    def read(self, start, stop, *, chunk_index=0):
        """Rows ``[start, stop)`` as a checked array of shape (stop - start, n_features)."""
        if not 0 <= start <= stop <= self.n_rows:
            raise IndexError(f"rows [{start}, {stop}) are outside {self.name}, which has {self.n_rows} rows.")
        return check_chunk(
            self._read(start, stop),
            source=self.name,
            chunk_index=chunk_index,
            first_row=start,
            n_features=self.n_features,
            dtype=self.dtype,
        )

    def block_bounds(self, block_rows):
        """``[(start, stop), ...]`` covering the rows in blocks of about ``block_rows``, aligned to :attr:`natural_rows`."""
        step = max(1, int(block_rows))
        if self.natural_rows:
            step = max(self.natural_rows, (step // self.natural_rows) * self.natural_rows)
        return [(start, min(start + step, self.n_rows)) for start in range(0, self.n_rows, step)]

    def chunks(self, chunk_rows):
        for index, (start, stop) in enumerate(self.block_bounds(chunk_rows)):
            yield start, self.read(start, stop, chunk_index=index)
