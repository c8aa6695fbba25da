"""Exact top-k selection (row_topk, batch_topk) against a full sort.

Matrices are random permutations of distinct values, so the k largest entries of a
row (or of the whole matrix) form a unique set that ``np.argsort`` identifies.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skdict.ops.topk import batch_topk, row_topk


def distinct_matrix(n_rows, n_cols, seed, dtype=np.float64):
    """A matrix whose entries are pairwise distinct (shuffled, centred integers)."""
    rng = np.random.default_rng(seed)
    values = rng.permutation(n_rows * n_cols).astype(dtype) - (n_rows * n_cols) / 2
    return values.reshape(n_rows, n_cols)


def argsort_row_sets(A, k):
    return [set(np.argsort(row)[len(row) - k :].tolist()) for row in A]


def check_row_topk(A, k):
    indices, values = row_topk(A, k)
    assert indices.shape == (A.shape[0], k)
    assert values.shape == (A.shape[0], k)
    assert np.issubdtype(indices.dtype, np.integer)
    assert values.dtype == A.dtype
    expected = argsort_row_sets(A, k)
    for n in range(A.shape[0]):
        assert set(indices[n].tolist()) == expected[n]
        np.testing.assert_array_equal(values[n], A[n, indices[n]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [1, 2, 5, 9, 10])
def test_row_topk_matches_argsort(k, dtype):
    check_row_topk(distinct_matrix(7, 10, seed=k, dtype=dtype), k)


def test_row_topk_k_equals_n_cols_returns_every_column():
    A = distinct_matrix(4, 6, seed=0)
    indices, values = row_topk(A, 6)
    for n in range(4):
        assert sorted(indices[n].tolist()) == list(range(6))
        np.testing.assert_array_equal(values[n], A[n, indices[n]])
    # the result is a real array that can be written to (not a broadcast view)
    before = indices[1].copy()
    indices[0, 0] = 5
    np.testing.assert_array_equal(indices[1], before)


def test_row_topk_with_ties_returns_exactly_k_distinct_columns():
    A = np.array([[1.0, 1.0, 1.0, 1.0], [3.0, 2.0, 2.0, 2.0], [0.0, 5.0, 5.0, -1.0]])
    indices, values = row_topk(A, 2)
    for n in range(A.shape[0]):
        assert len(set(indices[n].tolist())) == 2
        np.testing.assert_array_equal(np.sort(values[n]), np.sort(A[n])[-2:])
        np.testing.assert_array_equal(values[n], A[n, indices[n]])


@pytest.mark.parametrize("k", [0, -1, 7, 100])
def test_row_topk_k_out_of_range_raises(k):
    with pytest.raises(ValueError, match="k"):
        row_topk(distinct_matrix(3, 6, seed=1), k)


@settings(max_examples=60, deadline=None)
@given(
    n_rows=st.integers(1, 8),
    n_cols=st.integers(1, 12),
    data=st.data(),
)
def test_row_topk_property(n_rows, n_cols, data):
    k = data.draw(st.integers(1, n_cols), label="k")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    check_row_topk(distinct_matrix(n_rows, n_cols, seed), k)


# ----------------------------------------------------------------------------- batch_topk


def check_batch_topk(A, n_keep):
    rows, cols = batch_topk(A, n_keep)
    assert rows.shape == (n_keep,) and cols.shape == (n_keep,)
    assert np.issubdtype(rows.dtype, np.integer) and np.issubdtype(cols.dtype, np.integer)
    assert np.all((0 <= rows) & (rows < A.shape[0]))
    assert np.all((0 <= cols) & (cols < A.shape[1]))
    # rows non-decreasing (row-major order, as CodeMatrix wants), no pair twice
    assert np.all(np.diff(rows) >= 0)
    flat = rows * A.shape[1] + cols
    assert np.all(np.diff(flat) > 0)
    expected = set(np.argsort(A.ravel())[A.size - n_keep :].tolist())
    assert set(flat.tolist()) == expected
    # the selected entries are the n_keep largest values
    np.testing.assert_array_equal(np.sort(A[rows, cols]), np.sort(A.ravel())[A.size - n_keep :])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_keep", [1, 3, 17, 39, 40])
def test_batch_topk_matches_full_sort(n_keep, dtype):
    check_batch_topk(distinct_matrix(5, 8, seed=n_keep, dtype=dtype), n_keep)


def test_batch_topk_uneven_rows():
    # all the largest values sit in one row: that row gets every slot
    A = distinct_matrix(4, 5, seed=3)
    A[2] += 1000.0
    rows, cols = batch_topk(A, 5)
    np.testing.assert_array_equal(rows, [2, 2, 2, 2, 2])
    np.testing.assert_array_equal(np.sort(cols), np.arange(5))


def test_batch_topk_keep_everything():
    A = distinct_matrix(3, 4, seed=2)
    rows, cols = batch_topk(A, 12)
    np.testing.assert_array_equal(rows, np.repeat(np.arange(3), 4))
    np.testing.assert_array_equal(cols, np.tile(np.arange(4), 3))


@pytest.mark.parametrize("n_keep", [0, -2, 13])
def test_batch_topk_n_keep_out_of_range_raises(n_keep):
    with pytest.raises(ValueError, match="n_keep"):
        batch_topk(distinct_matrix(3, 4, seed=0), n_keep)


@settings(max_examples=60, deadline=None)
@given(
    n_rows=st.integers(1, 8),
    n_cols=st.integers(1, 12),
    data=st.data(),
)
def test_batch_topk_property(n_rows, n_cols, data):
    n_keep = data.draw(st.integers(1, n_rows * n_cols), label="n_keep")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    check_batch_topk(distinct_matrix(n_rows, n_cols, seed), n_keep)
