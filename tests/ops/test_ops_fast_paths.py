"""The optimised paths of the ops layer against their plain references.

Each fast path (block-maximum top-k prefilter, threaded row blocks, CSR of Zᵀ,
padded-row SDDMM, fused Adam) is compared with a plain NumPy transcription of
the same maths, at sizes large enough to take the fast path, and with the
thread count forced to 1 and to several (the results must not depend on it).
"""

import math

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skdict.ops import _threads, adam, codes, topk
from skdict.ops.adam import Adam
from skdict.ops.codes import CodeMatrix, sampled_row_dots
from skdict.ops.topk import candidate_columns, group_max_candidates, keep_row_topk, row_topk, uses_prefilter


@pytest.fixture(params=["1", "3"], ids=["one-thread", "three-threads"])
def threads(request, monkeypatch):
    monkeypatch.setenv("SKDICT_NUM_THREADS", request.param)
    # small blocks, so that even these test sizes are cut into several blocks
    monkeypatch.setattr(_threads, "MIN_BLOCK_ELEMENTS", 64)
    return int(request.param)


# ----------------------------------------------------------------------------- threads


def test_n_threads_reads_the_environment(monkeypatch):
    monkeypatch.setenv("SKDICT_NUM_THREADS", "3")
    assert _threads.n_threads() == 3
    monkeypatch.delenv("SKDICT_NUM_THREADS")
    assert _threads.n_threads() >= 1


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_n_threads_rejects_bad_settings(monkeypatch, value):
    monkeypatch.setenv("SKDICT_NUM_THREADS", value)
    with pytest.raises(ValueError, match="SKDICT_NUM_THREADS"):
        _threads.n_threads()


@settings(max_examples=30, deadline=None)
@given(n_items=st.integers(0, 500), cost=st.integers(1, 1000), max_blocks=st.integers(1, 9))
def test_split_covers_the_range_in_order(n_items, cost, max_blocks):
    blocks = _threads.split(n_items, cost, max_blocks=max_blocks, min_block_elements=100)
    covered = [i for start, stop in blocks for i in range(start, stop)]
    assert covered == list(range(n_items))
    assert len(blocks) <= max_blocks
    if blocks:
        sizes = [stop - start for start, stop in blocks]
        assert max(sizes) - min(sizes) <= 1  # balanced


def test_run_blocks_returns_results_in_block_order(threads):
    blocks = _threads.split(100, 1000, min_block_elements=1)
    assert _threads.run_blocks(lambda a, b: (a, b), blocks) == blocks


@pytest.mark.parametrize("n_rows, rows_per_block", [(1, 4), (5, 100), (23, 4), (64, 7)])
def test_run_row_blocks_covers_the_rows_in_order(threads, n_rows, rows_per_block):
    blocks = _threads.run_row_blocks(lambda a, b: (a, b), n_rows, rows_per_block)
    assert [i for a, b in blocks for i in range(a, b)] == list(range(n_rows))
    assert all(b - a == rows_per_block for a, b in blocks[:-1])


def test_run_blocks_nested_in_a_pool_thread_runs_inline_and_agrees(threads):
    # work that itself cuts its rows into blocks would wait on the pool it runs on: it must run inline
    rng = np.random.default_rng(4)
    A = rng.standard_normal((50, 300))

    def outer(a, b):
        inner = _threads.split(b - a, A.shape[1], min_block_elements=1)
        assert len(inner) == min(threads, b - a)  # really nested blocks
        return np.concatenate(_threads.run_blocks(lambda c, d: A[a + c : a + d].sum(axis=1), inner))

    result = []
    runner = threading.Thread(target=lambda: result.append(_threads.run_row_blocks(outer, A.shape[0], 8)))
    runner.start()
    runner.join(timeout=60)
    assert not runner.is_alive(), "nested run_blocks deadlocked the pool"
    np.testing.assert_allclose(np.concatenate(result[0]), A.sum(axis=1))


def test_run_blocks_applies_the_callers_floating_point_error_policy(threads):
    huge = np.full((40, 4), 1e300)

    def square(start, stop):
        return huge[start:stop] * huge[start:stop]  # overflows

    blocks = _threads.split(40, 1000, min_block_elements=1)
    with np.errstate(over="ignore"):
        assert np.isinf(np.concatenate(_threads.run_blocks(square, blocks))).all()
    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        _threads.run_blocks(square, blocks)


def blas_thread_counts(threadpoolctl):
    return [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]


def test_single_threaded_blas_pins_blas_inside_and_restores_it(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    monkeypatch.setenv("SKDICT_NUM_THREADS", "2")
    with threadpoolctl.threadpool_limits(2, user_api="blas"):  # observable even where the tests pin BLAS to 1
        before = blas_thread_counts(threadpoolctl)
        if max(before, default=1) < 2:  # e.g. OPENBLAS_NUM_THREADS=1 caps it at start-up
            pytest.skip("no BLAS library here can run on more than one thread")
        with _threads.single_threaded_blas():
            assert set(blas_thread_counts(threadpoolctl)) == {1}
        assert blas_thread_counts(threadpoolctl) == before


def test_single_threaded_blas_pins_only_from_the_main_thread(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    monkeypatch.setenv("SKDICT_NUM_THREADS", "2")
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        before = blas_thread_counts(threadpoolctl)
        if not before:
            pytest.skip("no BLAS library that threadpoolctl can see")
        seen = []

        def other():
            with _threads.single_threaded_blas():  # from another thread: nothing to pin or restore
                seen.append((_threads.blas_pinned(), blas_thread_counts(threadpoolctl)))

        with _threads.single_threaded_blas():
            with _threads.single_threaded_blas():  # nested: the outer pin stays
                pass
            helper = threading.Thread(target=other)
            helper.start()
            helper.join(30)
            assert _threads.blas_pinned() and set(blas_thread_counts(threadpoolctl)) == {1}
        unpinned = threading.Thread(target=other)
        unpinned.start()
        unpinned.join(30)
        assert seen == [(True, [1] * len(before)), (False, before)]  # the main thread's pin is visible everywhere
        assert blas_thread_counts(threadpoolctl) == before and not _threads.blas_pinned()


# ----------------------------------------------------------------------------- top-k


def topk_value_sets(A, k):
    return np.sort(np.sort(A, axis=1)[:, -k:], axis=1)


@pytest.mark.parametrize("n_cols", [1024, 1037])  # a multiple of the group size, and with leftover columns
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_topk_prefilter_path_matches_argsort(threads, n_cols, dtype):
    k = 8
    assert uses_prefilter(n_cols, k)
    rng = np.random.default_rng(n_cols)
    A = rng.permutation(40 * n_cols).reshape(40, n_cols).astype(dtype)  # distinct values
    indices, values = row_topk(A, k)
    expected = np.argsort(A, axis=1)[:, -k:]
    for n in range(A.shape[0]):
        assert set(indices[n].tolist()) == set(expected[n].tolist())
    np.testing.assert_array_equal(values, np.take_along_axis(A, indices, axis=1))


def test_row_topk_prefilter_keeps_the_largest_values_with_ties(threads):
    # few distinct values: many ties at the k-th value; the value multiset is exact
    rng = np.random.default_rng(0)
    A = rng.integers(-3, 4, size=(30, 800)).astype(np.float64)
    A[::3, ::7] = 9.0  # some rows have more 9s than k
    k = 6
    assert uses_prefilter(A.shape[1], k)
    indices, values = row_topk(A, k)
    for n in range(A.shape[0]):
        assert len(set(indices[n].tolist())) == k
    np.testing.assert_array_equal(np.sort(values, axis=1), topk_value_sets(A, k))
    np.testing.assert_array_equal(values, np.take_along_axis(A, indices, axis=1))


def test_row_topk_with_threads_equals_one_block(monkeypatch):
    rng = np.random.default_rng(1)
    A = rng.standard_normal((64, 2048))
    assert uses_prefilter(A.shape[1], 16)
    monkeypatch.setenv("SKDICT_NUM_THREADS", "1")
    single = row_topk(A, 16)
    monkeypatch.setenv("SKDICT_NUM_THREADS", "4")
    monkeypatch.setattr(topk, "_BLOCK_ELEMENTS", 3 * 2048)
    many = row_topk(A, 16)
    np.testing.assert_array_equal(np.sort(single[0], axis=1), np.sort(many[0], axis=1))


def dense_topk_reference(A, k, shift, positive):
    """The plain dense TopK code: a full argsort of each row of ``A + shift``."""
    shifted = A + shift
    keep = np.argsort(shifted, axis=1)[:, -k:]
    out = np.zeros_like(shifted)
    np.put_along_axis(out, keep, np.take_along_axis(shifted, keep, axis=1), axis=1)
    return np.maximum(out, 0) if positive else out


@pytest.mark.parametrize("n_cols", [10, 1024, 1037])  # argpartition path, prefilter, prefilter with leftovers
@pytest.mark.parametrize("n_rows", [1, 40])
@pytest.mark.parametrize("positive", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keep_row_topk_equals_the_dense_reference(threads, monkeypatch, n_rows, n_cols, positive, dtype):
    monkeypatch.setattr(topk, "_BLOCK_ELEMENTS", 3 * n_cols)  # blocks of 3 rows: block offsets are exercised
    k = 8
    rng = np.random.default_rng(n_cols)
    A = (rng.permutation(n_rows * n_cols).reshape(n_rows, n_cols) - n_rows * n_cols // 2).astype(dtype)
    A[-1] = -np.abs(A[-1]) - 1  # a row with no positive entry: all zero when positive
    shift = rng.permutation(n_cols).astype(dtype) * 0.5  # keeps the shifted values distinct
    shift[:] = np.where(A[-1] + shift < 0, shift, 0)
    expected = dense_topk_reference(A, k, shift, positive)
    out = A.copy()
    assert keep_row_topk(out, k, shift=shift, positive=positive) is out
    np.testing.assert_array_equal(out, expected)
    assert np.all(np.count_nonzero(out, axis=1) <= k)
    if positive:
        assert not out[-1].any()


def test_keep_row_topk_with_ties_keeps_exactly_k_per_row(threads):
    rng = np.random.default_rng(3)
    A = rng.integers(-3, 4, size=(30, 800)).astype(np.float64) + 10.0  # all positive, many ties
    k = 6
    out = keep_row_topk(A.copy(), k)
    assert np.all(np.count_nonzero(out, axis=1) == k)
    np.testing.assert_array_equal(np.sort(out, axis=1)[:, -k:], topk_value_sets(A, k))
    kept = out != 0
    np.testing.assert_array_equal(out[kept], A[kept])  # kept entries unchanged


@pytest.mark.parametrize("k", [0, 11])
def test_keep_row_topk_k_out_of_range_raises(k):
    with pytest.raises(ValueError, match="k"):
        keep_row_topk(np.zeros((2, 10)), k)


@settings(max_examples=40, deadline=None)
@given(
    n_rows=st.integers(1, 6),
    k=st.integers(1, 5),
    group_size=st.integers(1, 6),
    extra=st.integers(0, 7),
    seed=st.integers(0, 2**32 - 1),
    n_values=st.integers(2, 50),
)
def test_group_max_candidates_hold_every_topk_value(n_rows, k, group_size, extra, seed, n_values):
    """The law of the prefilter: the k largest candidates have the row's k largest values."""
    n_cols = k * group_size + extra
    rng = np.random.default_rng(seed)
    A = rng.integers(0, n_values, size=(n_rows, n_cols)).astype(np.float64)  # ties are likely
    candidates, kept = group_max_candidates(A, k, group_size)
    assert candidates.shape == (n_rows, k * group_size + n_cols % group_size)
    positions = np.broadcast_to(np.arange(candidates.shape[1]), candidates.shape)
    columns = candidate_columns(positions, kept, n_cols, group_size)
    np.testing.assert_array_equal(np.take_along_axis(A, columns, axis=1), candidates)
    for n in range(n_rows):
        assert len(set(columns[n].tolist())) == columns.shape[1]  # no column twice
    np.testing.assert_array_equal(topk_value_sets(candidates, k), topk_value_sets(A, k))


def test_group_max_candidates_rejects_too_few_groups():
    with pytest.raises(ValueError, match="group_size"):
        group_max_candidates(np.zeros((2, 10)), 4, 3)


# ----------------------------------------------------------------------------- code matrices


def support(n_rows, n_components, k, seed, dtype=np.float64, skip_every=0):
    """Row-sorted support with k columns per row (fewer on every ``skip_every``-th row)."""
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    for n in range(n_rows):
        width = k // 2 if skip_every and n % skip_every == 0 else k
        rows += [n] * width
        cols += rng.choice(n_components, width, replace=False).tolist()
    rows, cols = np.asarray(rows), np.asarray(cols)
    return rows, cols, rng.standard_normal(rows.shape[0]).astype(dtype)


def dense_oracle(rows, cols, values, shape):
    Z = np.zeros(shape)
    np.add.at(Z, (rows, cols), values.astype(np.float64))
    return Z


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_code_matrix_threaded_products_match_dense(threads, dtype):
    shape = (90, 400)
    rows, cols, values = support(*shape, 5, seed=2, dtype=dtype, skip_every=4)
    Z = CodeMatrix(rows, cols, values, shape)
    assert Z.density <= codes.DENSE_ABOVE
    rng = np.random.default_rng(3)
    W = rng.standard_normal((shape[1], 11)).astype(dtype)
    G = rng.standard_normal((shape[0], 11)).astype(dtype)
    dense = dense_oracle(rows, cols, values, shape)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(Z.dot(W), dense @ W, **tol)
    np.testing.assert_allclose(Z.tdot(G), dense.T @ G, **tol)
    assert Z.dot(W).dtype == dtype and Z.tdot(G).dtype == dtype
    # a matrix with the same support and other values reuses the index structures
    other_values = rng.standard_normal(values.shape[0]).astype(dtype)
    Y = Z.with_values(other_values)
    assert Y._pattern is Z._pattern
    other = dense_oracle(rows, cols, other_values, shape)
    np.testing.assert_allclose(Y.tdot(G), other.T @ G, **tol)
    np.testing.assert_allclose(Y.dot(W), other @ W, **tol)
    np.testing.assert_allclose(Y.column_sums(), other.sum(axis=0), **tol)


def test_transposed_structure_is_a_stable_column_sort():
    rows, cols, values = support(30, 200, 4, seed=4)
    Z = CodeMatrix(rows, cols, values, (30, 200))
    indptr, indices, order = Z._transposed_pointers()
    np.testing.assert_array_equal(order, np.argsort(cols, kind="stable"))
    np.testing.assert_array_equal(indices, rows[order])
    np.testing.assert_array_equal(np.diff(indptr), np.bincount(cols, minlength=200))


def test_add_to_dense_adds_in_place_on_strided_output():
    rows = np.array([0, 0, 1, 2, 2])
    cols = np.array([1, 1, 0, 3, 2])
    values = np.array([1.0, 2.0, -1.0, 4.0, 0.5])
    Z = CodeMatrix(rows, cols, values, (3, 4))
    big = np.ones((3, 8))
    view = big[:, ::2]  # not contiguous
    Z.add_to_dense(view)
    expected = np.ones((3, 4)) + dense_oracle(rows, cols, values, (3, 4))
    np.testing.assert_array_equal(big[:, ::2], expected)
    np.testing.assert_array_equal(big[:, 1::2], 1.0)
    with pytest.raises(ValueError, match="out must have shape"):
        Z.add_to_dense(np.zeros((3, 5)))


# ----------------------------------------------------------------------------- SDDMM


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("skip_every", [0, 3])  # equal and unequal row widths
def test_sampled_row_dots_padded_path_matches_dense(threads, monkeypatch, dtype, skip_every):
    monkeypatch.setattr(codes, "_GATHER_BLOCK", 3 * 7 * 5)  # a few rows per block
    calls = []
    padded = codes._padded_row_dots
    monkeypatch.setattr(codes, "_padded_row_dots", lambda *a: calls.append(1) or padded(*a))
    rng = np.random.default_rng(5)
    G = rng.standard_normal((60, 7)).astype(dtype)
    W = rng.standard_normal((500, 7)).astype(dtype)
    rows, cols, _ = support(60, 500, 6, seed=6, skip_every=skip_every)
    rows[5:8], cols[5:8] = rows[5], cols[5]  # a repeated pair
    dots = sampled_row_dots(G, W, rows, cols)
    assert calls, "the sorted support should take the padded path"
    expected = (G.astype(np.float64) @ W.T.astype(np.float64))[rows, cols]
    assert dots.dtype == dtype
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dots, expected, **tol)


def test_sampled_row_dots_skewed_rows_take_the_pair_path(threads, monkeypatch):
    # one very wide row: padding every row to its width would cost too much
    calls = []
    pairs = codes._pair_block_dots
    monkeypatch.setattr(codes, "_pair_block_dots", lambda *a: calls.append(1) or pairs(*a))
    rng = np.random.default_rng(7)
    G = rng.standard_normal((40, 5))
    W = rng.standard_normal((1000, 5))
    rows = np.concatenate([np.zeros(40, dtype=np.int64), np.arange(1, 40)])
    cols = rng.integers(0, 1000, rows.shape[0])
    dots = sampled_row_dots(G, W, rows, cols)
    assert calls
    np.testing.assert_allclose(dots, (G @ W.T)[rows, cols], rtol=1e-12, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    n_rows=st.integers(1, 20),
    n_cols=st.integers(60, 200),
    per_row=st.integers(1, 4),
    p=st.integers(1, 5),
    seed=st.integers(0, 2**32 - 1),
)
def test_sampled_row_dots_sorted_support_property(n_rows, n_cols, per_row, p, seed):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, per_row + 1, n_rows)
    rows = np.repeat(np.arange(n_rows), counts)
    cols = rng.integers(0, n_cols, rows.shape[0])
    G = rng.standard_normal((n_rows, p))
    W = rng.standard_normal((n_cols, p))
    np.testing.assert_allclose(sampled_row_dots(G, W, rows, cols), (G @ W.T)[rows, cols], rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- Adam


def plain_adam_update(theta, grad, m, v, step_size, beta1, beta2, eps):
    """The update as first written: whole-array temporaries, same operation order."""
    m *= beta1
    m += (1.0 - beta1) * grad
    v *= beta2
    v += (1.0 - beta2) * (grad * grad)
    denom = np.sqrt(v)
    denom += eps
    theta -= step_size * (m / denom)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_adam_is_bitwise_the_plain_update(threads, monkeypatch, dtype):
    monkeypatch.setattr(adam, "_CHUNK", 37)  # chunks that do not divide the size
    rng = np.random.default_rng(8)
    params = {"W": rng.standard_normal((23, 19)).astype(dtype), "b": rng.standard_normal(5).astype(dtype)}
    plain = {name: p.copy() for name, p in params.items()}
    moments = {name: (np.zeros_like(p), np.zeros_like(p)) for name, p in params.items()}
    optimizer = Adam(params, beta1=0.8, beta2=0.99, eps=1e-6)
    rates = {"W": 1e-2, "b": 3e-3}
    for t in range(1, 6):
        grads = {name: rng.standard_normal(p.shape).astype(dtype) for name, p in params.items()}
        optimizer.step(params, grads, rates)
        correction = math.sqrt(1 - 0.99**t) / (1 - 0.8**t)  # a Python float, as in Adam
        for name in plain:
            plain_adam_update(plain[name], grads[name], *moments[name], rates[name] * correction, 0.8, 0.99, 1e-6)
    for name in params:
        np.testing.assert_array_equal(params[name], plain[name])
        np.testing.assert_array_equal(optimizer.m[name], moments[name][0])
        np.testing.assert_array_equal(optimizer.v[name], moments[name][1])


def test_adam_updates_a_non_contiguous_parameter_in_place():
    rng = np.random.default_rng(9)
    base = rng.standard_normal((10, 8))
    view = base[:, ::2]  # not contiguous: the whole-array path
    reference = view.copy()
    optimizer = Adam({"w": view})
    grad = rng.standard_normal(view.shape)
    optimizer.step({"w": view}, {"w": grad}, {"w": 0.1})
    m, v = np.zeros_like(reference), np.zeros_like(reference)
    plain_adam_update(reference, grad, m, v, 0.1 * math.sqrt(1 - 0.999) / (1 - 0.9), 0.9, 0.999, 1e-8)
    np.testing.assert_array_equal(base[:, ::2], reference)


# ----------------------------------------------------------------------------- CuPy (skipped without a GPU)


@pytest.fixture
def cupy():
    import cupy

    return cupy


@pytest.mark.gpu
def test_prefiltered_topk_on_gpu_equals_numpy(cupy):
    rng = np.random.default_rng(10)
    A = rng.permutation(50 * 1100).reshape(50, 1100).astype(np.float32)
    assert uses_prefilter(1100, 8)
    indices, values = row_topk(cupy.asarray(A), 8)
    assert isinstance(indices, cupy.ndarray)
    expected, _ = row_topk(A, 8)
    np.testing.assert_array_equal(np.sort(cupy.asnumpy(indices), axis=1), np.sort(expected, axis=1))
    np.testing.assert_array_equal(cupy.asnumpy(values), np.take_along_axis(A, cupy.asnumpy(indices), axis=1))


@pytest.mark.gpu
@pytest.mark.parametrize("n_cols", [30, 1100])
def test_keep_row_topk_on_gpu_equals_numpy(cupy, n_cols):
    rng = np.random.default_rng(13)
    A = (rng.permutation(50 * n_cols).reshape(50, n_cols) - 25 * n_cols).astype(np.float32)
    shift = rng.permutation(n_cols).astype(np.float32) * 0.5
    out = keep_row_topk(cupy.asarray(A), 8, shift=cupy.asarray(shift), positive=True)
    assert isinstance(out, cupy.ndarray)
    np.testing.assert_array_equal(cupy.asnumpy(out), dense_topk_reference(A, 8, shift, True))


@pytest.mark.gpu
def test_code_matrix_and_sddmm_on_gpu_equal_numpy(cupy):
    shape = (90, 400)
    rows, cols, values = support(*shape, 5, seed=11, skip_every=4)
    rng = np.random.default_rng(12)
    W = rng.standard_normal((shape[1], 11))
    G = rng.standard_normal((shape[0], 11))
    other = rng.standard_normal(values.shape[0])
    cpu = CodeMatrix(rows, cols, values, shape)
    gpu = CodeMatrix(*(cupy.asarray(a) for a in (rows, cols, values)), shape)
    tol = dict(rtol=1e-12, atol=1e-12)
    for method, operand in (("dot", W), ("tdot", G)):
        got = getattr(gpu, method)(cupy.asarray(operand))
        assert isinstance(got, cupy.ndarray)
        np.testing.assert_allclose(cupy.asnumpy(got), getattr(cpu, method)(operand), **tol)
    got = gpu.with_values(cupy.asarray(other)).tdot(cupy.asarray(G))
    np.testing.assert_allclose(cupy.asnumpy(got), cpu.with_values(other).tdot(G), **tol)
    out = cupy.ones(shape)
    gpu.add_to_dense(out)
    np.testing.assert_allclose(cupy.asnumpy(out), cpu.add_to_dense(np.ones(shape)), **tol)
    dots = sampled_row_dots(cupy.asarray(G), cupy.asarray(W), cupy.asarray(rows), cupy.asarray(cols))
    np.testing.assert_allclose(cupy.asnumpy(dots), sampled_row_dots(G, W, rows, cols), **tol)


@pytest.mark.gpu
def test_fused_adam_on_gpu_equals_numpy(cupy):
    rng = np.random.default_rng(13)
    theta = rng.standard_normal((30, 7)).astype(np.float32)
    grads = [rng.standard_normal(theta.shape).astype(np.float32) for _ in range(4)]
    cpu_params, gpu_params = {"w": theta.copy()}, {"w": cupy.asarray(theta)}
    cpu_opt, gpu_opt = Adam(cpu_params), Adam(gpu_params)
    for grad in grads:
        cpu_opt.step(cpu_params, {"w": grad}, {"w": 1e-2})
        gpu_opt.step(gpu_params, {"w": cupy.asarray(grad)}, {"w": 1e-2})
    np.testing.assert_allclose(cupy.asnumpy(gpu_params["w"]), cpu_params["w"], rtol=1e-5, atol=1e-6)
