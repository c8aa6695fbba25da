"""Which source a user's data is: one function, :func:`as_source`, for every estimator.

In-memory arrays (NumPy, CuPy, anything :func:`numpy.asarray` takes) stay on the
estimators' in-memory path; :func:`is_out_of_core` says when data must be read
through a source instead. Arrays of other frameworks (a torch tensor, a JAX array)
are taken through DLPack without importing those frameworks (:func:`from_dlpack`).
"""

from __future__ import annotations

import glob
import os

import numpy as np

from skdict._array import is_cupy_array
from skdict.sources._arrays import ArraySource, DaskSource, ShardedSource, npy_source
from skdict.sources._base import DataSource
from skdict.sources._safetensors import SafetensorsSource
from skdict.sources._stream import ChunkStream

#: DLPack device types (dlpack.h): where a foreign array's memory lives.
_DLPACK_CPU, _DLPACK_CUDA = 1, 2


def _module(obj):
    return type(obj).__module__.split(".")[0]


def is_dask_array(obj):
    return _module(obj) == "dask" and hasattr(obj, "compute") and hasattr(obj, "chunks")


def _is_storage_array(obj):
    """An h5py dataset or a Zarr array: row-sliceable storage read on demand."""
    return _module(obj) in ("h5py", "zarr") and hasattr(obj, "shape") and hasattr(obj, "dtype")


def _is_path(obj):
    return isinstance(obj, (str, os.PathLike))


def is_foreign_dlpack(obj):
    """Whether ``obj`` is another framework's array that speaks DLPack (not NumPy, CuPy or a Dask array)."""
    return (
        hasattr(obj, "__dlpack__")
        and hasattr(obj, "__dlpack_device__")
        and not isinstance(obj, np.ndarray)
        and not is_cupy_array(obj)
        and not is_dask_array(obj)
    )


def from_dlpack(obj):
    """A NumPy (CPU memory) or CuPy (CUDA memory) view of a DLPack-capable array, zero-copy.

    Raises
    ------
    ValueError
        The array lives on a device other than the CPU or a CUDA GPU, or the framework refused
        to export it (e.g. a torch tensor that requires grad: call ``.detach()``).
    """
    device_type, _ = obj.__dlpack_device__()
    try:
        if device_type == _DLPACK_CPU:
            return np.from_dlpack(obj)
        if device_type == _DLPACK_CUDA:
            from skdict._array import _import_cupy, require_cuda

            require_cuda()
            return _import_cupy().from_dlpack(obj)
    except (BufferError, RuntimeError, TypeError) as exc:
        raise ValueError(
            f"a {type(obj).__name__} could not be read through DLPack: {exc}. For a torch tensor use "
            "tensor.detach(); otherwise convert it to a NumPy array first."
        ) from exc
    raise ValueError(
        f"a {type(obj).__name__} on DLPack device type {device_type} cannot be read: skdict takes CPU memory "
        "(NumPy) and CUDA memory (CuPy). Move it to the CPU or a CUDA GPU first."
    )


def is_out_of_core(data):
    """Whether ``data`` must be read through a source (files, storage, Dask, streams) rather than as one array."""
    if isinstance(data, DataSource) or _is_path(data) or is_dask_array(data) or _is_storage_array(data):
        return True
    if isinstance(data, np.memmap):
        return True
    if isinstance(data, (list, tuple)):
        return bool(data) and all(_is_path(item) or hasattr(item, "shape") for item in data) and (
            _is_path(data[0]) or getattr(data[0], "ndim", 0) == 2
        )
    # a generator or any other one-pass iterator of chunks
    return hasattr(data, "__next__") and hasattr(data, "__iter__")


def _shard_paths(path):
    """The ``.npy`` files a path names: the file itself, a folder's ``*.npy``, or a glob pattern's matches."""
    path = os.fspath(path)
    if os.path.isdir(path):
        files = sorted(glob.glob(os.path.join(path, "*.npy")))
        if not files:
            raise FileNotFoundError(f"the folder {path!r} holds no .npy files.")
        return files
    if any(char in path for char in "*?["):
        files = sorted(glob.glob(path))
        if not files:
            raise FileNotFoundError(f"no file matches {path!r}.")
        return files
    return [path]


def as_source(data, *, name=None):
    """The :class:`~skdict.sources.DataSource` that reads ``data``.

    Parameters
    ----------
    data : one of
        - a :class:`DataSource` (returned as is);
        - a path to a ``.safetensors`` file holding one 2-D tensor;
        - a path to a ``.npy`` file (memory-mapped), a folder of ``.npy`` shards (read in sorted
          order), a glob pattern, or a list of such paths;
        - a NumPy array or ``np.memmap``, a CuPy array, an ``h5py.Dataset``, a ``zarr.Array``;
        - a ``dask.array.Array`` (read one row-chunk block at a time);
        - a torch/JAX/... array (through DLPack, zero-copy);
        - a list of 2-D arrays (read as the rows of their concatenation, without concatenating);
        - an iterator or generator of 2-D chunks, or any other iterable of them (a stream).
    name : str, optional
        How error messages call the data.

    Raises
    ------
    TypeError
        ``data`` is none of these.
    """
    if isinstance(data, DataSource):
        return data
    if _is_path(data) and os.fspath(data).endswith(".safetensors"):
        return SafetensorsSource(data)  # its only tensor (skdict train names one as FILE:TENSOR)
    if _is_path(data):
        files = _shard_paths(data)
        return npy_source(files[0]) if len(files) == 1 else ShardedSource([npy_source(f) for f in files], name=name)
    if isinstance(data, (list, tuple)) and data and all(_is_path(item) for item in data):
        files = [f for item in data for f in _shard_paths(item)]
        return npy_source(files[0]) if len(files) == 1 else ShardedSource([npy_source(f) for f in files], name=name)
    if is_dask_array(data):
        return DaskSource(data, name=name)
    if is_foreign_dlpack(data):
        return ArraySource(from_dlpack(data), name=name or type(data).__name__)
    if isinstance(data, np.ndarray) or is_cupy_array(data) or _is_storage_array(data):
        return ArraySource(data, name=name)
    if isinstance(data, (list, tuple)) and data and all(getattr(item, "ndim", None) == 2 for item in data):
        # arrays already in memory: row-addressable, so they shuffle (and sample) as one array would
        return ShardedSource([ArraySource(item, name=f"chunk {i}") for i, item in enumerate(data)], name=name or "list of chunks")
    if isinstance(data, (list, tuple)) or hasattr(data, "__iter__"):
        return ChunkStream(data, name=name or "stream")
    raise TypeError(
        f"{type(data).__name__} is not a data source skdict can read: give an array, a .npy path or folder, "
        "an HDF5/Zarr dataset, a Dask array, or an iterable of 2-D chunks."
    )
