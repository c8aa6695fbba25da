"""Row-addressable sources: arrays, memory maps, ``.npy`` files and shards, HDF5, Zarr, Dask.

Each reads a range of rows on demand; none loads the whole matrix. h5py, zarr and
dask are never imported here: their objects are recognised by duck typing (a
``shape``, a ``dtype`` and row slicing; ``compute`` for Dask), so a missing extra
costs nothing until the user passes such an object.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from skdict._array import device_of, is_cupy_array
from skdict.sources._base import RowRangeSource, working_dtype


def _check_matrix_shape(shape, name):
    if len(shape) != 2:
        raise ValueError(
            f"{name} has shape {tuple(shape)}; a data source must be 2-D (n_samples, n_features). "
            "Reshape activations of shape (batch, positions, width) to (-1, width) first."
        )
    if shape[0] < 1 or shape[1] < 1:
        raise ValueError(f"{name} has shape {tuple(shape)}: it needs at least one row and one feature.")


class ArraySource(RowRangeSource):
    """Rows of anything sliceable by rows with a 2-D ``shape`` and a ``dtype``.

    NumPy arrays and memory maps, CuPy arrays, ``h5py.Dataset``, ``zarr.Array``.
    A memory map or an HDF5/Zarr dataset is read only one range at a time.

    Parameters
    ----------
    array : 2-D array-like with ``shape``, ``dtype`` and ``array[start:stop]``
    name : str, optional
        How messages call it; a default is derived from the object's type.
    natural_rows : int, optional
        Rows per storage chunk (read from ``array.chunks`` when it has them, as HDF5 and Zarr do).
    """

    def __init__(self, array, *, name=None, natural_rows=None):
        self.array = array
        self.name = name or _describe(array)
        _check_matrix_shape(array.shape, self.name)
        self.n_rows, self.n_features = int(array.shape[0]), int(array.shape[1])
        self.dtype = working_dtype(array.dtype)
        self.device = device_of(array)
        if natural_rows is None:
            chunks = getattr(array, "chunks", None)
            if isinstance(chunks, tuple) and chunks and isinstance(chunks[0], (int, np.integer)):
                natural_rows = int(chunks[0])  # h5py and zarr: the shape of one storage chunk
        self.natural_rows = natural_rows

    def _read(self, start, stop):
        return self.array[start:stop]


class DaskSource(RowRangeSource):
    """Rows of a ``dask.array.Array``, whole row chunks computed a few at a time.

    Reads are aligned to the array's row chunks (regular or not, see :meth:`block_bounds`),
    so each read computes -- or, for an array persisted on a ``dask.distributed`` cluster,
    fetches from the workers -- whole blocks and nothing else, and no block twice in an
    epoch. ``compute`` runs on the caller's thread (the prefetch thread while training)
    with Dask's current scheduler: the default ``distributed.Client`` when one exists,
    else the local threads.

    Parameters
    ----------
    array : dask.array.Array of shape (n_samples, n_features)
        Known chunk sizes; its blocks may be NumPy or CuPy arrays (CuPy blocks are read as
        CuPy arrays, on their GPU).
    name : str, optional
        How messages call it.

    Raises
    ------
    ValueError
        Not 2-D, empty, or with unknown (NaN) chunk sizes.
    """

    def __init__(self, array, *, name=None):
        self.array = array
        self.name = name or f"dask array {getattr(array, 'name', '')[:24]!s}".rstrip()
        _check_matrix_shape(array.shape, self.name)
        if any(np.isnan(size) for size in array.shape) or any(np.isnan(size) for size in array.chunks[0]):
            raise ValueError(
                f"{self.name} has unknown chunk sizes {array.shape}; call array.compute_chunk_sizes() first."
            )
        self.n_rows, self.n_features = int(array.shape[0]), int(array.shape[1])
        self.dtype = working_dtype(array.dtype)
        self.device = device_of(getattr(array, "_meta", None))
        row_chunks = array.chunks[0]
        self.natural_rows = int(max(row_chunks)) if len(set(row_chunks[:-1])) <= 1 else None
        #: Row index where each row chunk starts, and n_rows at the end.
        self.chunk_edges = np.cumsum((0, *(int(size) for size in row_chunks)))

    def block_bounds(self, block_rows):
        """Runs of whole row chunks of at most ``block_rows`` rows (one chunk when it alone is larger).

        Regular chunks give the same blocks as :meth:`RowRangeSource.block_bounds`; irregular
        ones (e.g. a concatenation of shards of different lengths) are never cut either.
        """
        bounds, start = [], 0
        edges = self.chunk_edges
        for previous, edge in zip(edges[1:-1], edges[2:]):
            if edge - start > block_rows:  # adding the next chunk would pass block_rows: close the block
                bounds.append((start, int(previous)))
                start = int(previous)
        bounds.append((start, self.n_rows))
        return bounds

    def _read(self, start, stop):
        rows = self.array[start:stop].compute()
        return rows if is_cupy_array(rows) else np.asarray(rows)


class ShardedSource(RowRangeSource):
    """Several row-addressable sources of one width read as one, in order (e.g. ``.npy`` shards).

    A range that crosses a shard boundary is read from both and joined.
    """

    def __init__(self, shards, *, name=None):
        if not shards:
            raise ValueError("the list of shards is empty: give at least one file or array.")
        first = shards[0]
        for shard in shards[1:]:
            if shard.n_features != first.n_features:
                raise ValueError(
                    f"{shard.name} has {shard.n_features} features per row, but {first.name} has "
                    f"{first.n_features}: every shard must have the same width."
                )
        self.shards = list(shards)
        self.name = name or f"{len(shards)} shards ({first.name}, ...)"
        self.n_features = first.n_features
        dtypes = {shard.dtype for shard in shards}
        self.dtype = first.dtype if len(dtypes) == 1 else np.dtype(np.float64)
        self.offsets = np.cumsum([0] + [shard.n_rows for shard in shards])
        self.n_rows = int(self.offsets[-1])
        self.natural_rows = None

    def shard_of(self, row):
        """Index of the shard holding ``row`` and the row's index inside it."""
        index = int(np.searchsorted(self.offsets, row, side="right") - 1)
        return index, row - int(self.offsets[index])

    def _read(self, start, stop):
        parts = []
        while start < stop:
            index, local = self.shard_of(start)
            shard = self.shards[index]
            take = min(stop - start, shard.n_rows - local)
            parts.append(shard.read(local, local + take, chunk_index=0))  # checked with the shard's own name
            start += take
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    def block_bounds(self, block_rows):
        """Blocks never cross a shard boundary (a read stays inside one file)."""
        bounds = []
        for shard, offset in zip(self.shards, self.offsets[:-1]):
            bounds.extend((int(offset) + a, int(offset) + b) for a, b in shard.block_bounds(block_rows))
        return bounds


class NpyFileSource(RowRangeSource):
    """Rows of a ``.npy`` file read by explicit positioned reads (no memory map).

    A memory map's pages, once touched, stay in the process's resident memory as
    long as the system has room, so streaming a file larger than RAM through one
    makes the RSS grow with the file. Here each read copies its rows into a fresh
    array and nothing else stays mapped: resident memory is bounded by the reads
    in flight.

    Parameters
    ----------
    path : str or os.PathLike
        A C-ordered 2-D ``.npy`` array of numbers (format version 1, 2 or 3).

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        It is not a ``.npy`` file (bad magic string or header), holds Python objects, is
        Fortran-ordered, is not 2-D, or is shorter than its header says (truncated).
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self.name = self.path
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"no such .npy file: {self.path!r}.")
        with open(self.path, "rb") as f:
            try:
                version = np.lib.format.read_magic(f)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, fortran_order, dtype = read_header(f)  # version 3 differs from 2 only in the header's text encoding
            except (ValueError, OSError) as exc:
                raise ValueError(f"{self.path} is not a readable .npy file: {exc}") from None
            self.offset = f.tell()
        if dtype.hasobject:
            raise ValueError(f"{self.path} holds Python objects; skdict reads .npy files of numbers only (no pickle).")
        if fortran_order:
            raise ValueError(
                f"{self.path} is stored in Fortran (column-major) order, so its rows are not contiguous on disk; "
                "save it C-ordered: np.save(path, np.ascontiguousarray(X))."
            )
        _check_matrix_shape(shape, self.path)
        self.file_dtype = dtype
        self.n_rows, self.n_features = int(shape[0]), int(shape[1])
        self.dtype = working_dtype(dtype)
        self.row_bytes = self.n_features * dtype.itemsize
        expected = self.offset + self.n_rows * self.row_bytes
        size = os.path.getsize(self.path)
        if size < expected:
            raise ValueError(
                f"{self.path} is truncated: its header says {self.n_rows} rows of {self.n_features} {dtype} values "
                f"({expected} bytes) but the file has {size} bytes. Re-create or re-download it."
            )
        self._file = None
        self._lock = threading.Lock()

    def _read(self, start, stop):
        out = np.empty((stop - start, self.n_features), dtype=self.file_dtype)
        with self._lock:  # one positioned read at a time on the shared handle (the prefetch thread and callers)
            if self._file is None:
                self._file = open(self.path, "rb")  # noqa: SIM115 - kept open across reads, closed in close()
            self._file.seek(self.offset + start * self.row_bytes)
            n_read = self._file.readinto(memoryview(out).cast("B"))
        if n_read != out.nbytes:
            raise ValueError(f"{self.path}: rows [{start}, {stop}) could not be read (the file shrank while in use?).")
        return out

    def close(self):
        """Close the file handle (it is reopened by the next read)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __getstate__(self):  # a pickled source (e.g. sent to a joblib worker) reopens its file there
        state = dict(self.__dict__)
        state["_file"], state["_lock"] = None, None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()


def npy_source(path):
    """A ``.npy`` file as a :class:`NpyFileSource` (nothing is read until rows are asked for)."""
    return NpyFileSource(path)


def _describe(array):
    """A short name for an array-like in messages."""
    if isinstance(array, np.memmap) and getattr(array, "filename", None):
        return f"memory map {array.filename}"
    module = type(array).__module__.split(".")[0]
    if module == "h5py":
        file = getattr(getattr(array, "file", None), "filename", "?")
        return f"HDF5 dataset {array.name!r} in {file}"
    if module == "zarr":
        return f"Zarr array {getattr(array, 'path', '') or getattr(array, 'name', '')!r}"
    if is_cupy_array(array):
        return "CuPy array"
    return "X"


class PairedSource(RowRangeSource):
    """Two row-aligned sources read together: a transcoder's inputs ``X`` and targets ``Y``.

    A read returns ``X``'s and ``Y``'s rows side by side, shape (rows, d_in + d_out), so that
    block shuffling moves each input row with its target; :meth:`split` cuts them apart.
    """

    def __init__(self, inputs, targets):
        if inputs.n_rows != targets.n_rows:
            raise ValueError(
                f"{inputs.name} has {inputs.n_rows} rows but the targets {targets.name} have {targets.n_rows}: "
                "a transcoder needs one target row per input row."
            )
        self.inputs, self.targets = inputs, targets
        self.name = f"{inputs.name} with targets {targets.name}"
        self.n_rows = inputs.n_rows
        self.n_inputs = inputs.n_features
        self.n_features = inputs.n_features + targets.n_features
        self.dtype = inputs.dtype
        self.natural_rows = inputs.natural_rows

    def _read(self, start, stop):
        X = self.inputs.read(start, stop)
        Y = self.targets.read(start, stop).astype(self.dtype, copy=False)
        return np.concatenate([X, Y], axis=1)

    def split(self, rows):
        """``(X rows, Y rows)`` of an array read from this source."""
        return rows[:, : self.n_inputs], rows[:, self.n_inputs :]
