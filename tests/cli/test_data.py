"""DATA on the command line: every format opens as the rows it holds; bad files are refused by name."""

import argparse
import contextlib
import json
import struct
import sys

import numpy as np
import pytest
from safetensors.numpy import save_file

from skdict.cli._common import parse_count, parse_image_shape
from skdict.cli._data import DataError, RowRange, eval_rows, open_data, split_spec, split_tail
from skdict.sources import ShardedSource, as_source, npy_source
from skdict.sources._safetensors import SafetensorsSource


@pytest.fixture
def X():
    rng = np.random.default_rng(0)
    return rng.normal(size=(300, 6)).astype(np.float32)


def read_all(source):
    return source.read(0, source.n_rows)


def write_data_files(tmp_path, X):
    """``X`` in every format the CLI reads: ``{kind: DATA spec}``."""
    h5py = pytest.importorskip("h5py")
    zarr = pytest.importorskip("zarr")
    np.save(tmp_path / "acts.npy", X)
    (tmp_path / "shards").mkdir()
    np.save(tmp_path / "shards" / "s0.npy", X[:130])
    np.save(tmp_path / "shards" / "s1.npy", X[130:])
    save_file({"acts": X}, str(tmp_path / "one.safetensors"))
    save_file({"acts": X, "tokens": np.arange(300, dtype=np.int32)}, str(tmp_path / "two.safetensors"))
    with h5py.File(tmp_path / "acts.h5", "w") as f:
        f.create_dataset("group/acts", data=X, chunks=(64, 6))
    z = zarr.open(str(tmp_path / "acts.zarr"), mode="w", shape=X.shape, chunks=(50, 6), dtype="f4")
    z[:] = X
    group = zarr.open_group(str(tmp_path / "group.zarr"), mode="w")
    group.create_array("layer3", shape=X.shape, chunks=(50, 6), dtype="f4")[:] = X
    return {
        "npy": str(tmp_path / "acts.npy"),
        "shards folder": str(tmp_path / "shards"),
        "glob": str(tmp_path / "shards" / "s*.npy"),
        "safetensors": str(tmp_path / "one.safetensors"),
        "safetensors:name": str(tmp_path / "two.safetensors") + ":acts",
        "h5:dataset": str(tmp_path / "acts.h5") + ":/group/acts",
        "h5 (only dataset)": str(tmp_path / "acts.h5"),
        "zarr": str(tmp_path / "acts.zarr"),
        "zarr:path": str(tmp_path / "group.zarr") + ":layer3",
    }


def test_every_format_opens_as_the_rows_it_holds(tmp_path, X):
    for kind, spec in write_data_files(tmp_path, X).items():
        with contextlib.ExitStack() as stack:
            source = open_data(spec, stack)
            assert (source.n_rows, source.n_features, source.dtype) == (300, 6, np.float32), kind
            np.testing.assert_array_equal(read_all(source), X, err_msg=kind)
            np.testing.assert_array_equal(source.read(17, 151), X[17:151], err_msg=kind)


def test_a_safetensors_path_is_a_source_for_every_estimator(tmp_path, X):
    save_file({"acts": X}, str(tmp_path / "a.safetensors"))
    source = as_source(str(tmp_path / "a.safetensors"))
    assert isinstance(source, SafetensorsSource) and source.tensor == "acts"
    np.testing.assert_array_equal(read_all(source), X)


def test_safetensors_rows_are_read_in_place_not_loaded(tmp_path, X):
    # reads of a range touch only that range: a file whose other bytes are garbage still reads it
    path = tmp_path / "a.safetensors"
    save_file({"acts": X.astype(np.float64)}, str(path))
    source = SafetensorsSource(path)
    raw = bytearray(path.read_bytes())
    row_bytes = 6 * 8
    raw[source.offset + 200 * row_bytes :] = b"\xff" * (len(raw) - source.offset - 200 * row_bytes)  # NaN bytes
    path.write_bytes(bytes(raw))
    np.testing.assert_array_equal(source.read(10, 200), X[10:200].astype(np.float64))
    with pytest.raises(ValueError, match="row 200 .*NaN"):
        source.read(150, 250)


def write_bfloat16(path, values):
    """A safetensors file with one BF16 tensor (NumPy has no bfloat16: the upper 16 bits of float32)."""
    data = (values.astype(np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()
    header = json.dumps({"acts": {"dtype": "BF16", "shape": list(values.shape), "data_offsets": [0, len(data)]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)


def test_bfloat16_is_widened_exactly_to_float32(tmp_path):
    # values with at most 8 significant bits are exact in bfloat16
    values = np.array([[1.5, -2.0, 0.0], [2.0**40, -1.0 / 64, 255.0]], dtype=np.float32)
    write_bfloat16(tmp_path / "b.safetensors", values)
    source = SafetensorsSource(tmp_path / "b.safetensors")
    assert source.dtype == np.float32
    np.testing.assert_array_equal(read_all(source), values)


@pytest.mark.parametrize(
    ("tensors", "spec_suffix", "message"),
    [
        ({"acts": np.zeros((4, 3), np.int32)}, "", "dtype I32.*float32"),
        ({"acts": np.zeros((4, 3), bool)}, "", "dtype BOOL.*astype"),
        ({"acts": np.zeros((4, 3, 2), np.float32)}, "", r"shape \(4, 3, 2\).*2-D"),
        ({"acts": np.zeros((4, 3), np.float32), "tokens": np.zeros(4, np.int64)}, "", "2 tensors .*acts, tokens.*:TENSOR"),
        ({"acts": np.zeros((4, 3), np.float32)}, ":resid", "no tensor 'resid'.*acts"),
    ],
)
def test_bad_safetensors_files_are_refused_by_name(tmp_path, tensors, spec_suffix, message):
    path = str(tmp_path / "bad.safetensors")
    save_file(tensors, path)
    with pytest.raises(DataError, match=message), contextlib.ExitStack() as stack:
        open_data(path + spec_suffix, stack)


def test_bad_data_paths_are_refused_by_name(tmp_path):
    (tmp_path / "acts.csv").write_text("1,2\n")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4)))
    (tmp_path / "empty").mkdir()
    cases = {
        str(tmp_path / "acts.csv"): "not a format skdict reads.*npy",
        str(tmp_path / "missing.npy"): "does not exist",
        str(tmp_path / "junk.safetensors"): "not a readable .safetensors file",
        str(tmp_path / "cube.npy"): r"shape \(2, 3, 4\).*2-D",
        str(tmp_path / "empty"): "holds no .npy files",
    }
    for spec, message in cases.items():
        with pytest.raises(DataError, match=message), contextlib.ExitStack() as stack:
            open_data(spec, stack)


def test_hdf5_names_its_datasets_and_the_missing_extra(tmp_path, monkeypatch, X):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "two.h5", "w") as f:
        f["a"], f["b/c"] = X, X
    with pytest.raises(DataError, match="2 datasets .*/a, /b/c"), contextlib.ExitStack() as stack:
        open_data(str(tmp_path / "two.h5"), stack)
    with pytest.raises(DataError, match="no dataset '/x'"), contextlib.ExitStack() as stack:
        open_data(str(tmp_path / "two.h5") + ":/x", stack)
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(DataError, match=r'pip install "skdict\[hdf5\]"'), contextlib.ExitStack() as stack:
        open_data(str(tmp_path / "two.h5") + ":/a", stack)


def test_zarr_names_the_missing_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "zarr", None)
    with pytest.raises(DataError, match=r'pip install "skdict\[zarr\]"'), contextlib.ExitStack() as stack:
        open_data(str(tmp_path / "acts.zarr"), stack)


def test_the_held_out_tail_is_the_last_rows_read_through_the_source(tmp_path, X):
    np.save(tmp_path / "a.npy", X[:130])
    np.save(tmp_path / "b.npy", X[130:])
    shards = ShardedSource([npy_source(tmp_path / "a.npy"), npy_source(tmp_path / "b.npy")])
    train, held_out = split_tail(shards, eval_rows(300, 0.1))
    assert (train.n_rows, held_out.n_rows) == (270, 30)
    np.testing.assert_array_equal(read_all(train), X[:270])
    np.testing.assert_array_equal(read_all(held_out), X[270:])
    # blocks never cross a shard boundary and cover the range exactly
    bounds = train.block_bounds(100)
    assert bounds[0] == (0, 100) and (100, 130) in bounds and bounds[-1][1] == 270
    assert all(b - a > 0 for a, b in bounds) and sum(b - a for a, b in bounds) == 270
    assert split_tail(shards, 0) == (shards, None)
    with pytest.raises(DataError, match="leaves 1 to train on.*--eval-fraction"):
        split_tail(shards, 299)


def test_a_bad_row_in_a_range_is_named_by_its_row_in_the_file(tmp_path, X):
    bad = X.copy()
    bad[280, 2] = np.inf
    np.save(tmp_path / "bad.npy", bad)
    held_out = RowRange(npy_source(tmp_path / "bad.npy"), 270, 300)
    with pytest.raises(ValueError, match=r"bad.npy: row 280 .*NaN or infinity"):
        held_out.read(0, 30)


def test_eval_rows_is_the_fraction_capped():
    assert eval_rows(2000, 0.01) == 20
    assert eval_rows(1001, 0.01) == 11  # rounded up
    assert eval_rows(10**9, 0.01) == 100_000
    assert eval_rows(2000, 0.0) == 0


@pytest.mark.parametrize(
    ("text", "value"),
    [("20000", 20000), ("20_000", 20000), ("2e8", 200_000_000), ("200M", 200_000_000), ("1.5k", 1500), ("3B", 3 * 10**9)],
)
def test_counts_read_as_users_write_them(text, value):
    assert parse_count(text) == value


@pytest.mark.parametrize("text", ["0", "1.5", "-3", "ten", "5x"])
def test_bad_counts_are_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_count(text)


def test_specs_and_image_shapes():
    assert split_spec("a.safetensors:acts") == ("a.safetensors", "acts")
    assert split_spec("a.h5:/g/d") == ("a.h5", "/g/d")
    assert split_spec("a.npy") == ("a.npy", None)
    assert parse_image_shape("28,28") == parse_image_shape("28x28") == (28, 28)
    with pytest.raises(argparse.ArgumentTypeError):
        parse_image_shape("28")
