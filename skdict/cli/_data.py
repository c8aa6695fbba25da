"""DATA on the command line: which file (and which tensor or dataset in it) holds the activations.

``skdict train DATA`` and ``skdict evaluate MODEL DATA`` accept

- ``acts.npy``; a folder of ``.npy`` shards; a glob of them (``'acts/*.npy'``);
- ``acts.safetensors`` (its only tensor) or ``acts.safetensors:TENSOR``;
- ``acts.h5:/group/dataset`` (``.h5``/``.hdf5``; the dataset may be left out when the file has one);
- ``store.zarr`` (an array) or ``store.zarr:path/in/group``.

:func:`open_data` opens one as a :class:`~skdict.sources.RowRangeSource` (nothing is read),
:func:`split_tail` holds out the last rows for evaluation.
"""

from __future__ import annotations

import contextlib
import glob
import math
import os

from skdict._optional import import_optional
from skdict.cli._common import UsageError
from skdict.sources import RowRangeSource, as_source
from skdict.sources._arrays import ArraySource
from skdict.sources._safetensors import SafetensorsSource

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")
ZARR_SUFFIXES = (".zarr", ".zarr.zip")
FORMATS = (
    "a .npy file, a folder or glob of .npy shards, FILE.safetensors[:TENSOR], FILE.h5[:/DATASET] "
    "(also .hdf5), STORE.zarr[:PATH]"
)


class DataError(ValueError):
    """DATA cannot be opened or read as activations: the CLI prints the message and exits non-zero."""


def split_spec(spec):
    """``(path, inner name or None)`` of ``FILE:NAME``; a path that exists as written is taken whole."""
    if os.path.exists(spec) or ":" not in spec:
        return spec, None
    path, inner = spec.rsplit(":", 1)
    return path, inner or None


def _only_member(path, names, inner_kind, syntax):
    """The single member of a container, or an error that lists them."""
    if len(names) == 1:
        return names[0]
    listed = ", ".join(sorted(names)) or "none"
    raise DataError(f"{path} holds {len(names)} {inner_kind}s ({listed}): name one as {syntax}.")


def _open_hdf5(path, inner, stack):
    h5py = import_optional("h5py", extra="hdf5", needed_for="reading an HDF5 file", error=DataError)
    try:
        file = stack.enter_context(h5py.File(path, "r"))
    except OSError as exc:
        raise DataError(f"{path} is not a readable HDF5 file: {exc}") from None
    if inner is None:
        found = []
        file.visititems(lambda name, obj: found.append("/" + name) if isinstance(obj, h5py.Dataset) else None)
        inner = _only_member(path, found, "dataset", f"'{path}:/group/dataset'")
    dataset = file.get(inner)
    if not isinstance(dataset, h5py.Dataset):
        raise DataError(f"{path} has no dataset {inner!r}.")
    return ArraySource(dataset)


def _open_zarr(path, inner):
    zarr = import_optional("zarr", extra="zarr", needed_for="reading a Zarr store", error=DataError)
    try:
        node = zarr.open(path, mode="r")
        if inner is not None:
            node = node[inner]
    except (KeyError, FileNotFoundError, ValueError) as exc:
        raise DataError(f"{path}: no Zarr array {inner or ''!r} there ({exc}).") from None
    if not hasattr(node, "dtype"):  # a group: its only array
        names = [name for name, _ in node.arrays()]
        node = node[_only_member(path, names, "array", f"'{path}:NAME'")]
    return ArraySource(node)


def open_data(spec, stack, *, what="DATA"):
    """Open DATA (or a transcoder's TARGET) as a row-addressable source.

    Parameters
    ----------
    spec : str
        DATA as given on the command line (formats in the module docstring).
    stack : contextlib.ExitStack
        Holds files that stay open while the source is read (HDF5); closed by the caller.
    what : str, default="DATA"
        The argument's name in error messages (``"TARGET"`` for ``--target``).

    Returns
    -------
    source : RowRangeSource

    Raises
    ------
    DataError
        No such file; an unknown format (the message lists the formats); a missing optional
        dependency (naming the extra); a container with several tensors/datasets and none named
        (listing them); not 2-D; a dtype that cannot be read.
    """
    path, inner = split_spec(spec)
    lower = path.lower().rstrip("/\\")
    try:
        if lower.endswith(ZARR_SUFFIXES):
            return _open_zarr(path, inner)
        if not os.path.exists(path) and not glob.has_magic(path):
            raise DataError(f"{what} {spec!r} does not exist.")
        if lower.endswith(".safetensors"):
            return SafetensorsSource(path, inner)
        if lower.endswith(HDF5_SUFFIXES):
            return _open_hdf5(path, inner, stack)
        if inner is None and (os.path.isdir(path) or glob.has_magic(path) or lower.endswith(".npy")):
            source = as_source(path)
            if isinstance(source, RowRangeSource):
                return source
    except DataError:
        raise
    except (ValueError, FileNotFoundError, OSError, TypeError) as exc:
        raise DataError(str(exc)) from None
    raise DataError(f"{what} {spec!r} is not a format skdict reads; give {FORMATS}.")


class RowRange(RowRangeSource):
    """Rows ``[start, stop)`` of a row-addressable source, read through it (its names and row numbers in messages).

    Parameters
    ----------
    source : RowRangeSource
    start, stop : int
        ``0 <= start < stop <= source.n_rows``.
    """

    def __init__(self, source, start, stop):
        self.source, self.start = source, int(start)
        self.n_rows = int(stop) - self.start
        self.n_features, self.dtype, self.device = source.n_features, source.dtype, source.device
        self.natural_rows = source.natural_rows
        self.name = f"{source.name} rows {start}-{stop - 1}"

    def read(self, start, stop, *, chunk_index=0):
        if not 0 <= start <= stop <= self.n_rows:
            raise IndexError(f"rows [{start}, {stop}) are outside {self.name}, which has {self.n_rows} rows.")
        return self.source.read(self.start + start, self.start + stop, chunk_index=chunk_index)

    def block_bounds(self, block_rows):
        """The source's own blocks (shard and storage-chunk aligned) cut to the range."""
        stop = self.start + self.n_rows
        return [
            (max(a, self.start) - self.start, min(b, stop) - self.start)
            for a, b in self.source.block_bounds(block_rows)
            if b > self.start and a < stop
        ]


#: Most rows held out for evaluation by default (the fraction of a huge file would be slow to score).
MAX_EVAL_ROWS = 100_000


def eval_rows(n_rows, fraction, max_rows=MAX_EVAL_ROWS):
    """Rows held out: ``ceil(fraction * n_rows)``, at most ``max_rows``, 0 when ``fraction`` is 0."""
    if fraction <= 0:
        return 0
    return min(int(math.ceil(fraction * n_rows)), max_rows)


def split_tail(source, n_eval):
    """``(training rows, held-out rows or None)``: the last ``n_eval`` rows are held out.

    A contiguous tail (not a random sample): it is read sequentially, and activations
    stored in generation order keep whole documents on one side of the split.

    Raises
    ------
    DataError
        Fewer than two rows would be left for training.
    """
    if n_eval == 0:
        return source, None
    n_train = source.n_rows - n_eval
    if n_train < 2:
        raise DataError(
            f"{source.name} has {source.n_rows} rows: holding out {n_eval} for evaluation leaves {n_train} to train on; "
            "lower --eval-fraction (0 holds out nothing)."
        )
    return RowRange(source, 0, n_train), RowRange(source, n_train, source.n_rows)


@contextlib.contextmanager
def opened(spec, *, what="DATA"):
    """``with opened(DATA) as source``: the source, its files closed on leaving (``what`` as in :func:`open_data`)."""
    with contextlib.ExitStack() as stack:
        source = open_data(spec, stack, what=what)
        try:
            yield source
        finally:
            for part in getattr(source, "shards", [source]):
                if hasattr(part, "close"):
                    part.close()  # file handles of .npy and .safetensors sources


@contextlib.contextmanager
def opened_pair(data, target):
    """``with opened_pair(DATA, TARGET) as (source, targets)``: a transcoder's row-aligned inputs and targets.

    ``target`` ``None`` (an SAE) gives ``targets`` ``None``.

    Raises
    ------
    UsageError
        DATA and TARGET hold different numbers of rows (both files and both counts named).
    DataError
        Either cannot be opened (as :func:`open_data`).
    """
    with opened(data) as source:
        if target is None:
            yield source, None
            return
        with opened(target, what="TARGET") as targets:
            if targets.n_rows != source.n_rows:
                raise UsageError(
                    f"DATA {data} has {source.n_rows} rows but TARGET {target} has {targets.n_rows}: a transcoder "
                    "needs one target row per input row (row i of TARGET is the output for row i of DATA)."
                )
            yield source, targets
