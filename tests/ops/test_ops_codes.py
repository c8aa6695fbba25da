"""CodeMatrix and sampled_row_dots against dense products built by hand.

The oracle code matrix is filled by a plain Python loop over the coordinate
triples (duplicates add up), independently of ``CodeMatrix.to_dense``.
"""

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st

import skdict.ops.codes as codes
from skdict.ops.codes import DENSE_ABOVE, CodeMatrix, sampled_row_dots

TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


def make_codes(n_rows, n_components, per_row, seed, dtype, *, empty_rows=(), duplicates=0):
    """Row-sorted triples with ``per_row`` nonzeros per row (none on ``empty_rows``),
    plus ``duplicates`` repeated (row, col) pairs with their own values."""
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    for n in range(n_rows):
        if n in empty_rows:
            continue
        chosen = rng.choice(n_components, size=per_row, replace=False)
        rows.extend([n] * per_row)
        cols.extend(chosen.tolist())
    for _ in range(duplicates):
        p = int(rng.integers(len(rows)))
        rows.append(rows[p])
        cols.append(cols[p])
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    order = np.argsort(rows, kind="stable")  # rows non-decreasing, columns in any order
    rows, cols = rows[order], cols[order]
    values = rng.standard_normal(rows.shape[0]).astype(dtype)
    return rows, cols, values


def dense_by_hand(rows, cols, values, shape):
    Z = np.zeros(shape, dtype=np.float64)
    for r, c, v in zip(rows.tolist(), cols.tolist(), values.tolist()):
        Z[r, c] += v
    return Z


# (n_rows, n_components, per_row): density well below / above DENSE_ABOVE
SPARSE_CASE = (12, max(50, int(4 / DENSE_ABOVE)), 2)
DENSE_CASE = (12, 16, max(2, int(np.ceil(4 * DENSE_ABOVE * 16)) + 1))


def test_regime_sizes_are_on_the_intended_side_of_the_threshold():
    n, c, k = SPARSE_CASE
    assert n * k / (n * c) < DENSE_ABOVE / 1.5
    n, c, k = DENSE_CASE
    assert n * k / (n * c) > DENSE_ABOVE


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("regime", ["sparse", "dense"])
@pytest.mark.parametrize("duplicates", [0, 5])
def test_code_matrix_matches_dense_oracle(regime, dtype, duplicates):
    n_rows, n_components, per_row = SPARSE_CASE if regime == "sparse" else DENSE_CASE
    empty_rows = (0, 5, n_rows - 1)
    rows, cols, values = make_codes(
        n_rows, n_components, per_row, seed=7, dtype=dtype, empty_rows=empty_rows, duplicates=duplicates
    )
    shape = (n_rows, n_components)
    Z = dense_by_hand(rows, cols, values, shape)
    cm = CodeMatrix(rows, cols, values, shape)

    assert cm.nnz == rows.shape[0]
    assert cm.density == pytest.approx(rows.shape[0] / (n_rows * n_components))
    assert scipy.sparse.issparse(cm._as_matrix()) == (regime == "sparse")

    rng = np.random.default_rng(1)
    W = rng.standard_normal((n_components, 6)).astype(dtype)
    G = rng.standard_normal((n_rows, 6)).astype(dtype)

    dense = cm.to_dense()
    assert type(dense) is np.ndarray and dense.dtype == dtype
    np.testing.assert_allclose(dense, Z, **TOL[dtype])

    ZW = cm.dot(W)
    assert type(ZW) is np.ndarray and ZW.dtype == dtype and ZW.shape == (n_rows, 6)
    np.testing.assert_allclose(ZW, Z @ W.astype(np.float64), **TOL[dtype])
    for n in empty_rows:
        np.testing.assert_array_equal(ZW[n], 0)

    ZtG = cm.tdot(G)
    assert type(ZtG) is np.ndarray and ZtG.dtype == dtype and ZtG.shape == (n_components, 6)
    np.testing.assert_allclose(ZtG, Z.T @ G.astype(np.float64), **TOL[dtype])

    sums = cm.column_sums()
    assert sums.dtype == dtype and sums.shape == (n_components,)
    np.testing.assert_allclose(sums, Z.sum(axis=0), **TOL[dtype])


@pytest.mark.parametrize("regime", ["sparse", "dense"])
def test_duplicates_add_up(regime):
    # one pair given three times, in both regimes: the code entry is the sum
    n_components = 200 if regime == "sparse" else 4
    rows = np.array([0, 1, 1, 1, 2])
    cols = np.array([3, 2, 2, 2, 0])
    values = np.array([1.0, 0.5, 0.25, 2.0, -1.0])
    cm = CodeMatrix(rows, cols, values, (3, n_components))
    assert scipy.sparse.issparse(cm._as_matrix()) == (regime == "sparse")
    assert cm.to_dense()[1, 2] == 2.75
    W = np.arange(n_components * 2, dtype=np.float64).reshape(n_components, 2)
    np.testing.assert_allclose(cm.dot(W)[1], 2.75 * W[2])
    G = np.array([[1.0, 0.0], [10.0, 1.0], [0.0, 3.0]])
    np.testing.assert_allclose(cm.tdot(G)[2], 2.75 * G[1])
    assert cm.column_sums()[2] == 2.75


def test_code_matrix_with_no_nonzeros():
    rows = np.zeros(0, dtype=np.int64)
    cols = np.zeros(0, dtype=np.int64)
    values = np.zeros(0, dtype=np.float32)
    cm = CodeMatrix(rows, cols, values, (4, 6))
    assert cm.nnz == 0 and cm.density == 0.0
    W = np.ones((6, 3), dtype=np.float32)
    G = np.ones((4, 3), dtype=np.float32)
    np.testing.assert_array_equal(cm.dot(W), np.zeros((4, 3)))
    np.testing.assert_array_equal(cm.tdot(G), np.zeros((6, 3)))
    np.testing.assert_array_equal(cm.column_sums(), np.zeros(6))
    np.testing.assert_array_equal(cm.to_dense(), np.zeros((4, 6)))
    assert cm.dot(W).dtype == np.float32 and cm.column_sums().dtype == np.float32


@settings(max_examples=40, deadline=None)
@given(
    n_rows=st.integers(1, 10),
    n_components=st.integers(1, 120),
    data=st.data(),
)
def test_code_matrix_property(n_rows, n_components, data):
    per_row = data.draw(st.integers(0, min(n_components, 5)), label="per_row")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    duplicates = data.draw(st.integers(0, 3), label="duplicates") if per_row else 0
    empty = data.draw(st.sets(st.integers(0, n_rows - 1), max_size=n_rows), label="empty_rows")
    if len(empty) == n_rows:
        duplicates = 0
    rows, cols, values = make_codes(
        n_rows, n_components, per_row, seed, np.float64, empty_rows=empty, duplicates=duplicates
    )
    shape = (n_rows, n_components)
    Z = dense_by_hand(rows, cols, values, shape)
    cm = CodeMatrix(rows, cols, values, shape)
    assert scipy.sparse.issparse(cm._as_matrix()) == (cm.density <= DENSE_ABOVE)
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n_components, 3))
    G = rng.standard_normal((n_rows, 3))
    np.testing.assert_allclose(cm.to_dense(), Z, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cm.dot(W), Z @ W, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cm.tdot(G), Z.T @ G, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cm.column_sums(), Z.sum(axis=0), rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- sampled_row_dots


def random_pairs(n_pairs, n_rows, n_cols, rng):
    return rng.integers(0, n_rows, n_pairs), rng.integers(0, n_cols, n_pairs)


def gather_threshold(n_rows, n_cols):
    """The most pairs that still take the gather path."""
    return int(np.floor(DENSE_ABOVE * n_rows * n_cols))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("path", ["gather", "dense"])
def test_sampled_row_dots_matches_dense_product(path, dtype):
    rng = np.random.default_rng(3)
    n_rows, n_cols, p = 40, 60, 7
    G = rng.standard_normal((n_rows, p)).astype(dtype)
    W = rng.standard_normal((n_cols, p)).astype(dtype)
    limit = gather_threshold(n_rows, n_cols)
    n_pairs = max(1, limit // 2) if path == "gather" else 5 * limit + 3
    assert (n_pairs > DENSE_ABOVE * n_rows * n_cols) == (path == "dense")
    rows, cols = random_pairs(n_pairs, n_rows, n_cols, rng)
    dots = sampled_row_dots(G, W, rows, cols)
    expected = (G.astype(np.float64) @ W.T.astype(np.float64))[rows, cols]
    assert dots.shape == (n_pairs,) and dots.dtype == dtype
    np.testing.assert_allclose(dots, expected, **TOL[dtype])


@pytest.mark.parametrize("block_elements", [1, 7, 3 * 7, 3 * 7 + 5, 1000])
def test_sampled_row_dots_gather_blocks(monkeypatch, block_elements):
    # p = 7 features; the block holds block_elements // 7 pairs (at least one)
    monkeypatch.setattr(codes, "_GATHER_BLOCK", block_elements)
    rng = np.random.default_rng(4)
    n_rows, n_cols, p = 50, 80, 7
    G = rng.standard_normal((n_rows, p))
    W = rng.standard_normal((n_cols, p))
    n_pairs = gather_threshold(n_rows, n_cols)  # 80: still the gather path
    rows, cols = random_pairs(n_pairs, n_rows, n_cols, rng)
    rows[:3] = rows[0]  # repeated pairs are fine
    cols[:3] = cols[0]
    dots = sampled_row_dots(G, W, rows, cols)
    np.testing.assert_allclose(dots, (G @ W.T)[rows, cols], rtol=1e-12, atol=1e-12)


def test_sampled_row_dots_zero_pairs():
    rng = np.random.default_rng(5)
    G = rng.standard_normal((4, 3)).astype(np.float32)
    W = rng.standard_normal((5, 3)).astype(np.float32)
    empty = np.zeros(0, dtype=np.int64)
    dots = sampled_row_dots(G, W, empty, empty)
    assert dots.shape == (0,) and dots.dtype == np.float32


@settings(max_examples=40, deadline=None)
@given(
    n_rows=st.integers(1, 30),
    n_cols=st.integers(1, 30),
    p=st.integers(1, 6),
    n_pairs=st.integers(0, 60),
    block=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
)
def test_sampled_row_dots_property(n_rows, n_cols, p, n_pairs, block, seed):
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((n_rows, p))
    W = rng.standard_normal((n_cols, p))
    rows, cols = random_pairs(n_pairs, n_rows, n_cols, rng)
    original = codes._GATHER_BLOCK
    codes._GATHER_BLOCK = block
    try:
        dots = sampled_row_dots(G, W, rows, cols)
    finally:
        codes._GATHER_BLOCK = original
    np.testing.assert_allclose(dots, (G @ W.T)[rows, cols], rtol=1e-12, atol=1e-12)
