"""skdict.inspection.top_activating against a dense argsort oracle, for every kind of input and block size."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

from skdict import SparseCoder, TopKSAE
from skdict.inspection import top_activating
from skdict.metrics._code_blocks import code_blocks


class QuantizedCodes:
    """A fitted transformer whose codes are ReLU(X W^T) rounded to 0.5: many zeros and many ties."""

    def __init__(self, n_features=6, n_latents=9, seed=0):
        self.components_ = np.random.default_rng(seed).normal(size=(n_latents, n_features))

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.round(np.maximum(np.asarray(X) @ self.components_.T, 0.0) * 2.0) / 2.0


def oracle(codes, n, latents=None):
    """Per latent: the rows where it fires, by value descending then row ascending (np.lexsort), padded -1 / NaN."""
    latents = np.arange(codes.shape[1]) if latents is None else np.asarray(latents)
    indices = np.full((len(latents), n), -1, dtype=np.int64)
    values = np.full((len(latents), n), np.nan)
    for p, j in enumerate(latents):
        rows = np.flatnonzero(codes[:, j])
        order = rows[np.lexsort((rows, -codes[rows, j]))][:n]
        indices[p, : len(order)] = order
        values[p, : len(order)] = codes[order, j]
    return indices, values


def assert_matches_oracle(result, codes, n, latents=None):
    indices, values = oracle(codes, n, latents)
    np.testing.assert_array_equal(result.indices, indices)
    np.testing.assert_array_equal(result.values, values)  # NaN where the latent fired fewer than n times
    np.testing.assert_array_equal(result.n_firing, (codes != 0).sum(axis=0)[result.latents])
    assert result.n_samples == codes.shape[0]


@pytest.fixture
def X():
    return np.random.default_rng(1).normal(size=(300, 6))


@pytest.fixture(scope="module")
def topk():
    X = np.random.default_rng(2).normal(size=(400, 10)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # two epochs are enough for a model to inspect
        return TopKSAE(n_components=24, k=3, max_iter=2, random_state=0).fit(X), X


@pytest.mark.parametrize("batch_size", [1, 7, 64, 299, 300, 1000, None])
def test_equals_the_dense_argsort_oracle_for_any_block_size(X, batch_size):
    est = QuantizedCodes()
    codes = est.transform(X)
    assert len(np.unique(codes[codes > 0])) < (codes > 0).sum() / 4  # the data really has ties
    assert_matches_oracle(top_activating(est, X, n=12, batch_size=batch_size), codes, 12)


def test_ties_list_the_lower_row_first_and_non_firing_rows_are_padding():
    class Fixed:
        components_ = np.zeros((3, 1))

        def transform(self, X):
            table = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, 0.0], [1.0, 0.0, 3.0], [2.0, 5.0, 0.0]])
            return table[np.asarray(X, dtype=int)[:, 0]]

    rows = np.arange(4.0)[:, None]
    result = top_activating(Fixed(), rows, n=3, batch_size=1)
    np.testing.assert_array_equal(result.indices, [[1, 3, 0], [3, -1, -1], [2, 0, -1]])
    np.testing.assert_array_equal(result.values, [[2.0, 2.0, 1.0], [5.0, np.nan, np.nan], [3.0, -1.0, np.nan]])
    np.testing.assert_array_equal(result.n_firing, [4, 1, 2])
    assert result["values"] is result.values  # attribute and key give the same array


def test_sae_in_memory_npy_memmap_shards_and_generator_agree(topk, tmp_path):
    est, X = topk
    codes = est.transform(X)
    np.save(tmp_path / "acts.npy", X)
    (tmp_path / "shards").mkdir()
    for i, start in enumerate(range(0, len(X), 150)):
        np.save(tmp_path / "shards" / f"{i:02d}.npy", X[start : start + 150])
    inputs = {
        "array": X,
        "npy path": str(tmp_path / "acts.npy"),
        "memmap": np.load(tmp_path / "acts.npy", mmap_mode="r"),
        "folder of shards": str(tmp_path / "shards"),
        "generator": (X[start : start + 97] for start in range(0, len(X), 97)),
    }
    for name, data in inputs.items():
        result = top_activating(est, data, n=5, batch_size=64)
        assert_matches_oracle(result, codes, 5)
        assert result.values.dtype == np.float32, name


def test_hdf5_zarr_and_dask_inputs(topk, tmp_path):
    est, X = topk
    h5py, zarr, da = pytest.importorskip("h5py"), pytest.importorskip("zarr"), pytest.importorskip("dask.array")
    codes = est.transform(X)
    with h5py.File(tmp_path / "acts.h5", "w") as f:
        f.create_dataset("acts", data=X, chunks=(50, X.shape[1]))
    store = zarr.open(str(tmp_path / "acts.zarr"), mode="w", shape=X.shape, chunks=(70, X.shape[1]), dtype=X.dtype)
    store[:] = X
    with h5py.File(tmp_path / "acts.h5", "r") as f:
        assert_matches_oracle(top_activating(est, f["acts"], n=4, batch_size=60), codes, 4)
    assert_matches_oracle(top_activating(est, store, n=4, batch_size=60), codes, 4)
    assert_matches_oracle(top_activating(est, da.from_array(X, chunks=(90, -1)), n=4), codes, 4)


def test_chosen_latents_transcoder_and_sparse_coder(topk):
    est, X = topk
    latents = [5, 0, 5, 23]
    assert_matches_oracle(top_activating(est, X, n=3, latents=latents), est.transform(X), 3, latents)

    rng = np.random.default_rng(3)
    Y = X @ rng.normal(size=(10, 4)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        transcoder = TopKSAE(n_components=16, k=2, max_iter=2, random_state=0).fit(X, Y)
    assert_matches_oracle(top_activating(transcoder, X, n=6, batch_size=33), transcoder.transform(X), 6)

    coder = SparseCoder(rng.normal(size=(8, 10)), transform_algorithm="omp", transform_n_nonzero_coefs=2)
    assert_matches_oracle(top_activating(coder, X, n=6, batch_size=50), coder.transform(X), 6)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n_rows=st.integers(1, 80),
    n=st.integers(1, 15),
    batch_size=st.integers(1, 90),
    latents=st.none() | st.lists(st.integers(0, 8), min_size=1, max_size=5),
    seed=st.integers(0, 1000),
)
def test_property_any_sizes_equal_the_oracle(n_rows, n, batch_size, latents, seed):
    est = QuantizedCodes(seed=seed)
    X = np.random.default_rng(seed).normal(size=(n_rows, 6))
    assert_matches_oracle(top_activating(est, X, n=n, latents=latents, batch_size=batch_size), est.transform(X), n, latents)


def test_code_blocks_cut_a_long_stream_chunk_and_keep_row_positions(X):
    est = QuantizedCodes()
    blocks = [(first, codes) for first, _, codes in code_blocks(est, iter([X[:250], X[250:]]), batch_size=100)]
    assert [(first, len(codes)) for first, codes in blocks] == [(0, 100), (100, 100), (200, 50), (250, 50)]
    np.testing.assert_array_equal(np.concatenate([codes for _, codes in blocks]), est.transform(X))


@pytest.mark.parametrize(
    "kwargs, parameter",
    [
        ({"n": 0}, "n must"),
        ({"n": 2.5}, "n must"),
        ({"n": True}, "n must"),
        ({"latents": [9]}, r"latents must lie in \[0, 9\)"),
        ({"latents": [-1]}, "latents must lie"),
        ({"latents": []}, "latents must be"),
        ({"latents": [[1, 2]]}, "latents must be"),
        ({"latents": [0.5]}, "latents must be"),
        ({"batch_size": 0}, "batch_size must"),
    ],
)
def test_bad_parameters_raise_naming_the_parameter(X, kwargs, parameter):
    with pytest.raises(ValueError, match=parameter):
        top_activating(QuantizedCodes(), X, **kwargs)


def test_non_finite_row_is_named_and_unfitted_estimator_refused(X, topk):
    X = X.copy()
    X[123, 2] = np.nan
    with pytest.raises(ValueError, match="row 123"):
        top_activating(QuantizedCodes(), X, batch_size=50)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        top_activating(TopKSAE(), topk[1])


@pytest.mark.gpu
def test_cupy_input_gives_cupy_tables_equal_to_numpy(topk):
    import cupy

    est, X = topk
    result = top_activating(est, cupy.asarray(X), n=5, batch_size=64)
    assert isinstance(result.indices, cupy.ndarray) and isinstance(result.values, cupy.ndarray)
    expected = top_activating(est, X, n=5, batch_size=64)
    np.testing.assert_array_equal(cupy.asnumpy(result.indices), expected.indices)
    np.testing.assert_allclose(cupy.asnumpy(result.values), expected.values, rtol=1e-5)


def test_return_samples_keeps_the_listed_rows_in_the_same_pass(X):
    est = QuantizedCodes()
    expected = top_activating(est, X, n=160, batch_size=40)
    for data in (X, X.tolist(), (X[start : start + 33] for start in range(0, len(X), 33))):
        result = top_activating(est, data, n=160, batch_size=40, return_samples=True)
        np.testing.assert_array_equal(result.indices, expected.indices)
        filled = expected.indices >= 0
        assert not filled.all()  # some latent fires fewer than 160 times: padding is exercised
        np.testing.assert_array_equal(result.samples[filled], X[expected.indices[filled]])
        assert np.isnan(result.samples[~filled]).all()
    assert "samples" not in expected


def test_a_stream_of_empty_chunks_is_refused(X):
    with pytest.raises(ValueError, match="no rows"):
        top_activating(QuantizedCodes(), iter([X[:0], X[:0]]))
