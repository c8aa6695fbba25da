"""Rows of one tensor of a ``.safetensors`` file, read by positioned reads.

A ``.safetensors`` file is an 8-byte little-endian header length, a JSON header
(each tensor's ``dtype``, ``shape`` and ``data_offsets``) and the tensors' bytes,
C-ordered and little-endian: the rows of a 2-D tensor lie on disk exactly as those
of a ``.npy`` file do. :class:`SafetensorsSource` therefore reads them as
:class:`~skdict.sources._arrays.NpyFileSource` does (no memory map, so resident
memory does not grow with the file); ``safetensors.safe_open`` validates the file
and names its tensors. ``bfloat16`` tensors (torch's usual activation dtype, which
NumPy lacks) are widened exactly to float32.
"""

from __future__ import annotations

import json
import os
import struct
import threading

import numpy as np

from skdict.sources._arrays import NpyFileSource, _check_matrix_shape
from skdict.sources._base import working_dtype

#: safetensors dtype codes NumPy reads as real activations, and the dtype their bytes are read as.
_FLOAT_DTYPES = {"F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2")}


def _open_header(path):
    """Tensor names (via ``safetensors.safe_open``, which validates the file) and the parsed JSON header.

    Raises
    ------
    ImportError
        safetensors is not installed.
    ValueError
        The file is not a valid safetensors file.
    """
    try:
        from safetensors import safe_open
    except ImportError as exc:  # a runtime dependency of skdict; only a broken install lacks it
        raise ImportError("reading a .safetensors file needs the safetensors package: pip install safetensors") from exc
    try:
        with safe_open(path, framework="numpy") as f:
            names = list(f.keys())
    except Exception as exc:  # safetensors raises its own SafetensorError for a malformed file
        raise ValueError(f"{path} is not a readable .safetensors file: {exc}") from None
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    return names, header, 8 + length


def _choose_tensor(path, names, tensor):
    """The tensor to read: the one named, or the file's only tensor."""
    if tensor is not None:
        if tensor not in names:
            raise ValueError(f"{path} has no tensor {tensor!r}; its tensors are: {', '.join(sorted(names)) or 'none'}.")
        return tensor
    if len(names) != 1:
        raise ValueError(
            f"{path} holds {len(names)} tensors ({', '.join(sorted(names)) or 'none'}): name the one to read as "
            f"'{path}:TENSOR'."
        )
    return names[0]


class SafetensorsSource(NpyFileSource):
    """A 2-D tensor of a ``.safetensors`` file as a row-addressable source.

    Parameters
    ----------
    path : str or os.PathLike
    tensor : str or None, default=None
        The tensor's name; ``None`` when the file holds exactly one tensor.

    Attributes
    ----------
    tensor : str
        The tensor read.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Not a safetensors file; no such tensor (the message lists the tensors); several tensors
        and none named; a tensor that is not 2-D; a dtype that is not floating point (integers,
        booleans, 8-bit floats: the message names the dtype and the fix).
    """

    def __init__(self, path, tensor=None):
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"no such .safetensors file: {self.path!r}.")
        names, header, data_start = _open_header(self.path)
        self.tensor = _choose_tensor(self.path, names, tensor)
        self.name = f"{self.path}:{self.tensor}"
        entry = header[self.tensor]
        code = entry["dtype"]
        if code not in _FLOAT_DTYPES:
            raise ValueError(
                f"{self.name} has dtype {code}, which skdict does not read as activations (it reads F32, F64, F16 "
                "and BF16): save the activations as floating point, e.g. tensor.float() in torch or "
                "array.astype(np.float32) in NumPy."
            )
        _check_matrix_shape(entry["shape"], self.name)
        self.is_bfloat16 = code == "BF16"
        self.file_dtype = _FLOAT_DTYPES[code]
        self.n_rows, self.n_features = (int(size) for size in entry["shape"])
        self.dtype = np.dtype(np.float32) if self.is_bfloat16 else working_dtype(self.file_dtype)
        self.row_bytes = self.n_features * self.file_dtype.itemsize
        self.offset = data_start + int(entry["data_offsets"][0])
        self._file = None
        self._lock = threading.Lock()

    def _read(self, start, stop):
        rows = super()._read(start, stop)
        if self.is_bfloat16:  # bfloat16 is the upper half of a float32: widen exactly
            return (rows.astype(np.uint32) << 16).view(np.float32)
        return rows
