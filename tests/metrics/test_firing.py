"""firing_frequency: exact against a dense count, for arrays and for every out-of-core reading path."""

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.decomposition import SparseCoder

from skdict import TopKSAE
from skdict.metrics import firing_frequency


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 10)).astype(np.float32)
    model = TopKSAE(n_components=24, k=3, max_iter=2, early_stopping=False, random_state=0)
    with pytest.warns(Warning):  # a 2-epoch budget ends before a plateau (ConvergenceWarning)
        model.fit(X)
    return model, X


def _dense(model, X):
    return np.count_nonzero(model.transform(X), axis=0) / X.shape[0]


def test_matches_dense_count_in_small_blocks(fitted):
    model, X = fitted
    expected = _dense(model, X)
    assert expected.shape == (24,)
    np.testing.assert_array_equal(firing_frequency(model, X, block_rows=7), expected)
    np.testing.assert_array_equal(firing_frequency(model, X), expected)


def test_out_of_core_paths_read_once_block_by_block(fitted, tmp_path):
    model, X = fitted
    expected = _dense(model, X)
    path = tmp_path / "acts.npy"
    np.save(path, X)
    for data in (str(path), np.load(path, mmap_mode="r"), [X[:100], X[100:]], iter([X[:150], X[150:]])):
        np.testing.assert_array_equal(firing_frequency(model, data, block_rows=64), expected)


def test_sparse_codes_and_array_likes():
    """A transformer returning sparse codes (counted by column) and a nested-list X."""

    class SparseCodes:
        def transform(self, X):
            return scipy.sparse.csr_array(np.where(np.asarray(X) > 0.5, np.asarray(X), 0.0))

    X = [[1.0, 0.0, 0.7], [0.0, 0.0, 0.9], [0.6, 0.0, 0.0], [0.0, 0.0, 1.0]]
    np.testing.assert_array_equal(firing_frequency(SparseCodes(), X, block_rows=3), [0.5, 0.0, 0.75])


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 40), st.integers(1, 9), st.integers(0, 2**16))
def test_any_blocking_gives_the_dense_frequencies(n_rows, block_rows, seed):
    """For a fixed dictionary (SparseCoder, thresholding) the frequencies do not depend on the blocking."""
    rng = np.random.default_rng(seed)
    dictionary = rng.normal(size=(5, 4))
    coder = SparseCoder(dictionary, transform_algorithm="threshold", transform_alpha=0.8)
    X = rng.normal(size=(n_rows, 4))
    expected = np.count_nonzero(coder.transform(X), axis=0) / n_rows
    np.testing.assert_array_equal(firing_frequency(coder, X, block_rows=block_rows), expected)


def test_no_rows_is_an_error(fitted):
    model, _ = fitted
    with pytest.raises(ValueError, match="no (rows|chunk)"):
        firing_frequency(model, iter([]))


@pytest.mark.gpu
def test_gpu_model_and_cupy_input_count_as_on_the_cpu(fitted):
    import cupy

    model, X = fitted
    gpu_model = TopKSAE(n_components=24, k=3, max_iter=2, early_stopping=False, random_state=0, device="cuda")
    with pytest.warns(Warning):
        gpu_model.fit(X)
    expected = np.count_nonzero(cupy.asnumpy(gpu_model.transform(cupy.asarray(X))), axis=0) / X.shape[0]
    for data in (X, cupy.asarray(X)):
        result = firing_frequency(gpu_model, data, block_rows=64)
        assert isinstance(result, np.ndarray)
        np.testing.assert_array_equal(result, expected)
