"""Data sources: every kind reads the same rows as the in-memory array; bad chunks are named; shuffling sees each row once."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skdict.sources import (
    ArraySource,
    ChunkStream,
    PairedSource,
    ShardedSource,
    as_source,
    chunks_in_random_order,
    epoch_batches,
    is_out_of_core,
    prefetched,
    sample_rows,
    shuffled_batches,
)


@pytest.fixture
def X():
    return np.random.default_rng(0).normal(size=(1000, 8)).astype(np.float32)


@pytest.fixture
def shard_folder(tmp_path, X):
    for i, (a, b) in enumerate([(0, 300), (300, 600), (600, 1000)]):
        np.save(tmp_path / f"part{i}.npy", X[a:b])
    return tmp_path


def _all_rows(source, block_rows=128):
    return np.concatenate([chunk for _, chunk in source.chunks(block_rows)])


def test_npy_path_reads_the_same_rows_without_a_memory_map(tmp_path, X):
    np.save(tmp_path / "x.npy", X)
    source = as_source(tmp_path / "x.npy")
    assert not hasattr(source, "array")  # positioned reads: nothing stays mapped into the process
    assert (source.n_rows, source.n_features, source.dtype) == (1000, 8, np.float32)
    np.testing.assert_array_equal(_all_rows(source), X)


@pytest.mark.parametrize("form", ["folder", "glob", "list"])
def test_shards_read_as_one_matrix(shard_folder, X, form):
    data = {
        "folder": shard_folder,
        "glob": str(shard_folder / "part*.npy"),
        "list": [shard_folder / f"part{i}.npy" for i in range(3)],
    }[form]
    source = as_source(data)
    assert isinstance(source, ShardedSource) and source.n_rows == 1000
    np.testing.assert_array_equal(_all_rows(source, 256), X)
    np.testing.assert_array_equal(source.read(250, 700), X[250:700])  # crosses two shard boundaries
    assert all(source.shard_of(a)[0] == source.shard_of(b - 1)[0] for a, b in source.block_bounds(256))


def test_shards_of_different_widths_name_both(tmp_path, X):
    np.save(tmp_path / "a.npy", X[:10])
    np.save(tmp_path / "b.npy", X[:10, :5])
    with pytest.raises(ValueError, match=r"b\.npy has 5 features per row, but .*a\.npy has 8"):
        as_source(tmp_path)


def test_nan_row_is_named_by_file_chunk_and_row(shard_folder, X):
    bad = X[600:].copy()
    bad[177, 3] = np.nan
    np.save(shard_folder / "part2.npy", bad)
    with pytest.raises(ValueError, match=r"part2\.npy: row 177 \(row 177 of chunk 0\) contains NaN"):
        _all_rows(as_source(shard_folder), 1000)
    source = ArraySource(np.concatenate([X[:600], bad]), name="acts")
    with pytest.raises(ValueError, match=r"acts: row 777 \(row 77 of chunk 7\)"):
        _all_rows(source, 100)


def test_stream_chunks_are_checked_for_width_and_values(X):
    with pytest.raises(ValueError, match=r"stream, chunk 2 has 7 features per row, but the data has 8"):
        list(ChunkStream([X[:10], X[10:20], X[20:30, :7]]).chunks())
    bad = X[:30].copy()
    bad[25, 0] = np.inf
    with pytest.raises(ValueError, match=r"stream: row 25 \(row 5 of chunk 2\)"):
        list(ChunkStream(iter([bad[:10], bad[10:20], bad[20:30]])).chunks())


def test_complex_chunk_is_refused(X):
    with pytest.raises(ValueError, match="complex or non-numeric"):
        list(ChunkStream([X[:4].astype(np.complex64)]).chunks())


def test_generator_is_one_pass_and_a_list_is_reiterable(X):
    generator = (X[i : i + 100] for i in range(0, 1000, 100))
    stream = as_source(generator)
    assert not stream.reiterable
    np.testing.assert_array_equal(_all_rows(stream), X)  # the first chunk, used to learn the width, is not lost
    with pytest.raises(RuntimeError, match="one-pass iterator"):
        _all_rows(stream)
    listed = ChunkStream([X[:500], X[500:]])
    assert listed.reiterable
    np.testing.assert_array_equal(_all_rows(listed), _all_rows(listed))


def test_empty_stream_and_non_2d_inputs_are_refused(X):
    with pytest.raises(ValueError, match="yielded no chunk"):
        as_source(iter([]))
    with pytest.raises(ValueError, match=r"must be 2-D .*Reshape"):
        as_source(X.reshape(10, 100, 8))


def test_integer_data_is_read_as_float64():
    source = as_source(np.arange(12).reshape(4, 3))
    assert source.dtype == np.float64
    assert _all_rows(source).dtype == np.float64


def test_a_list_of_arrays_is_row_addressable(X):
    source = as_source([X[:300], X[300:]])
    assert isinstance(source, ShardedSource) and source.n_rows == 1000
    np.testing.assert_array_equal(source.read(250, 350), X[250:350])


def test_what_counts_as_out_of_core(tmp_path, X):
    np.save(tmp_path / "x.npy", X)
    assert is_out_of_core(str(tmp_path / "x.npy"))
    assert is_out_of_core(np.load(tmp_path / "x.npy", mmap_mode="r"))
    assert is_out_of_core(iter([X]))
    assert is_out_of_core([X[:5], X[5:]])
    assert not is_out_of_core(X)
    assert not is_out_of_core(X.tolist())  # a list of rows is an in-memory array-like


@settings(max_examples=40, deadline=None)
@given(
    n_rows=st.integers(1, 300),
    block_rows=st.integers(1, 64),
    batch_size=st.integers(1, 50),
    buffer_rows=st.integers(1, 200),
    seed=st.integers(0, 2**16),
)
def test_block_shuffling_uses_every_row_once_per_epoch(n_rows, block_rows, batch_size, buffer_rows, seed):
    X = np.arange(n_rows, dtype=np.float64).reshape(-1, 1) * np.ones((1, 2))
    rng = np.random.RandomState(seed)
    batches = list(shuffled_batches(chunks_in_random_order(as_source(X), block_rows, rng), batch_size, buffer_rows, rng))
    sizes = [b.shape[0] for b in batches]
    assert all(size == batch_size for size in sizes[:-1]) and 0 < sizes[-1] <= batch_size
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)[:, 0]), np.arange(n_rows))


def test_a_buffer_of_several_blocks_mixes_rows_across_blocks():
    X = np.arange(4096, dtype=np.float64).reshape(-1, 1)
    rng = np.random.RandomState(0)
    first = next(shuffled_batches(chunks_in_random_order(as_source(X), 64, rng), 256, 2048, rng))
    blocks = np.unique(first[:, 0] // 64)
    assert blocks.size >= 16  # 256 rows drawn from a buffer of 32 blocks, not from one or two blocks


def test_prefetched_yields_in_order_and_reraises_where_consumed():
    assert list(prefetched(iter(range(10)), depth=3)) == list(range(10))

    def failing():
        yield 1
        raise OSError("disk gone")

    items = prefetched(failing())
    assert next(items) == 1
    with pytest.raises(OSError, match="disk gone"):
        next(items)


def test_prefetched_stops_its_thread_when_the_consumer_leaves():
    with prefetched(iter(range(10**9)), depth=2) as items:
        assert next(items) == 0
    assert not items._thread.is_alive()


def test_dlpack_array_is_taken_zero_copy(X):
    class Foreign:  # what a torch CPU tensor offers
        def __init__(self, array):
            self._array = array

        def __dlpack__(self, **kwargs):
            return self._array.__dlpack__(**kwargs)

        def __dlpack_device__(self):
            return self._array.__dlpack_device__()

    source = as_source(Foreign(X))
    assert np.shares_memory(source.array, X)
    np.testing.assert_array_equal(_all_rows(source), X)


def test_dask_array_is_read_by_row_chunks(X):
    da = pytest.importorskip("dask.array")
    source = as_source(da.from_array(X, chunks=(250, 8)))
    assert source.natural_rows == 250
    assert source.block_bounds(300) == [(0, 250), (250, 500), (500, 750), (750, 1000)]
    np.testing.assert_array_equal(_all_rows(source, 300), X)


def test_hdf5_dataset_reads_aligned_to_its_chunks(tmp_path, X):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "acts.h5", "w") as f:
        f.create_dataset("layer3", data=X, chunks=(100, 8))
    with h5py.File(tmp_path / "acts.h5", "r") as f:
        source = as_source(f["layer3"])
        assert source.natural_rows == 100 and "layer3" in source.name
        np.testing.assert_array_equal(_all_rows(source, 250), X)


def test_zarr_array(X, tmp_path):
    zarr = pytest.importorskip("zarr")
    z = zarr.open(str(tmp_path / "acts.zarr"), mode="w", shape=X.shape, chunks=(128, 8), dtype="f4")
    z[:] = X
    source = as_source(z)
    assert source.natural_rows == 128
    np.testing.assert_array_equal(_all_rows(source, 128), X)


def test_not_a_source():
    with pytest.raises(TypeError, match="not a data source"):
        as_source(3.5)


def test_paired_source_moves_each_target_row_with_its_input(X):
    Y = X[:, :3] * 2.0
    paired = PairedSource(as_source(X), as_source(Y))
    rng = np.random.RandomState(0)
    for batch in shuffled_batches(chunks_in_random_order(paired, 64, rng), 100, 300, rng):
        Xb, Yb = paired.split(batch)
        np.testing.assert_array_equal(Yb, Xb[:, :3] * 2.0)
    with pytest.raises(ValueError, match="one target row per input row"):
        PairedSource(as_source(X), as_source(Y[:10]))


def test_sample_rows_reads_a_few_blocks_and_draws_distinct_rows():
    X = np.arange(100_000, dtype=np.float64).reshape(-1, 1)
    source = as_source(X)
    reads = []
    original = source._read
    source._read = lambda a, b: reads.append((a, b)) or original(a, b)
    sample = sample_rows(source, 1000, np.random.RandomState(0), block_rows=1024)
    assert sample.shape == (1000, 1) and np.unique(sample).size == 1000
    assert len(reads) <= 4  # 4 x 1000 rows from blocks of 1024, not 1000 reads
    np.testing.assert_array_equal(sample_rows(as_source(X[:10]), 1000, np.random.RandomState(0)), X[:10])


def test_sample_of_a_stream_is_its_beginning_and_a_generator_keeps_it(X):
    np.testing.assert_array_equal(sample_rows(ChunkStream([X[:300], X[300:]]), 500, None), X[:500])
    stream = as_source(X[i : i + 100] for i in range(0, 1000, 100))
    np.testing.assert_array_equal(sample_rows(stream, 250, None), X[:250])
    np.testing.assert_array_equal(_all_rows(stream), X)  # the peeked chunks are read again by the pass


def test_peeking_a_generator_reports_bad_rows_before_training(X):
    bad = X[:200].copy()
    bad[150, 1] = np.nan
    with pytest.raises(ValueError, match=r"stream: row 150 \(row 50 of chunk 1\)"):
        as_source(iter([bad[:100], bad[100:]])).peek(200)


def test_a_source_within_one_buffer_gets_the_in_memory_engine_order(tmp_path, X):
    np.save(tmp_path / "x.npy", X)
    batches = list(epoch_batches(as_source(tmp_path / "x.npy"), 64, np.random.RandomState(3), buffer_rows=1000, block_rows=128))
    order = np.random.RandomState(3).permutation(1000)  # what the engine draws for an array
    np.testing.assert_array_equal(np.concatenate(batches), X[order])
    assert [b.shape[0] for b in batches] == [64] * 15 + [40]


def test_a_larger_source_is_block_shuffled_once_through(X):
    batches = list(epoch_batches(as_source(X), 64, np.random.RandomState(3), buffer_rows=256, block_rows=100))
    np.testing.assert_array_equal(np.sort(np.concatenate(batches), axis=0), np.sort(X, axis=0))


@pytest.mark.parametrize("dtype", [np.float16, np.int32, np.float64])
def test_npy_of_other_dtypes_is_read_in_the_working_dtype(tmp_path, dtype):
    X = (np.arange(60).reshape(20, 3) % 7).astype(dtype)
    np.save(tmp_path / "x.npy", X)
    source = as_source(tmp_path / "x.npy")
    assert source.dtype == np.float64  # float16 and int32 are read as float64, as scikit-learn does
    np.testing.assert_array_equal(source.read(3, 11), X[3:11].astype(np.float64))


def test_bad_npy_files_are_named_with_the_fix(tmp_path, X):
    (tmp_path / "junk.npy").write_bytes(b"not numpy at all")
    with pytest.raises(ValueError, match=r"junk\.npy is not a readable \.npy file"):
        as_source(tmp_path / "junk.npy")
    np.save(tmp_path / "full.npy", X)
    data = (tmp_path / "full.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.npy is truncated: its header says 1000 rows"):
        as_source(tmp_path / "cut.npy")
    np.save(tmp_path / "f.npy", np.asfortranarray(X))
    with pytest.raises(ValueError, match="Fortran"):
        as_source(tmp_path / "f.npy")
    np.save(tmp_path / "obj.npy", np.array([[1, "a"]], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="Python objects"):
        as_source(tmp_path / "obj.npy")
    with pytest.raises(FileNotFoundError, match="no such .npy file"):
        as_source(tmp_path / "missing.npy")


def test_npy_source_survives_pickling(tmp_path, X):
    import pickle

    np.save(tmp_path / "x.npy", X)
    source = as_source(tmp_path / "x.npy")
    source.read(0, 5)  # opens its handle
    clone = pickle.loads(pickle.dumps(source))
    np.testing.assert_array_equal(clone.read(990, 1000), X[990:])
