"""The ops on CuPy arrays: CuPy in, CuPy out, same numbers as the NumPy path."""

import numpy as np
import pytest

from skdict.ops.adam import Adam
from skdict.ops.atoms import normalize_rows, remove_parallel_component
from skdict.ops.codes import DENSE_ABOVE, CodeMatrix, sampled_row_dots
from skdict.ops.geometric_median import geometric_median
from skdict.ops.topk import batch_topk, row_topk

pytestmark = pytest.mark.gpu

TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


@pytest.fixture
def cupy():
    import cupy

    return cupy


def distinct(n_rows, n_cols, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return (rng.permutation(n_rows * n_cols).astype(dtype) - n_rows * n_cols / 2).reshape(n_rows, n_cols)


def test_row_topk_on_gpu(cupy):
    A = distinct(9, 30, seed=0, dtype=np.float32)
    indices, values = row_topk(cupy.asarray(A), 5)
    assert isinstance(indices, cupy.ndarray) and isinstance(values, cupy.ndarray)
    indices, values = cupy.asnumpy(indices), cupy.asnumpy(values)
    for n in range(A.shape[0]):
        assert set(indices[n].tolist()) == set(np.argsort(A[n])[-5:].tolist())
        np.testing.assert_array_equal(values[n], A[n, indices[n]])


def test_batch_topk_on_gpu(cupy):
    A = distinct(8, 20, seed=1)
    rows, cols = batch_topk(cupy.asarray(A), 25)
    assert isinstance(rows, cupy.ndarray)
    rows, cols = cupy.asnumpy(rows), cupy.asnumpy(cols)
    assert np.all(np.diff(rows) >= 0)
    assert set((rows * 20 + cols).tolist()) == set(np.argsort(A.ravel())[-25:].tolist())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_components", [400, 12])  # sparse and dense regimes
def test_code_matrix_on_gpu_matches_numpy(cupy, dtype, n_components):
    rng = np.random.default_rng(2)
    n_rows = 10
    rows = np.repeat(np.arange(1, n_rows), 2)  # row 0 empty
    cols = rng.integers(0, n_components, rows.shape[0])
    rows, cols = np.append(rows, rows[-1]), np.append(cols, cols[-1])  # one duplicate pair
    values = rng.standard_normal(rows.shape[0]).astype(dtype)
    W = rng.standard_normal((n_components, 5)).astype(dtype)
    G = rng.standard_normal((n_rows, 5)).astype(dtype)
    shape = (n_rows, n_components)
    cpu = CodeMatrix(rows, cols, values, shape)
    gpu = CodeMatrix(cupy.asarray(rows), cupy.asarray(cols), cupy.asarray(values), shape)
    assert (gpu.density > DENSE_ABOVE) == (n_components == 12)
    for name, args_cpu, args_gpu in [
        ("dot", (W,), (cupy.asarray(W),)),
        ("tdot", (G,), (cupy.asarray(G),)),
        ("column_sums", (), ()),
        ("to_dense", (), ()),
    ]:
        got = getattr(gpu, name)(*args_gpu)
        assert isinstance(got, cupy.ndarray) and got.dtype == dtype, name
        np.testing.assert_allclose(cupy.asnumpy(got), getattr(cpu, name)(*args_cpu), **TOL[dtype])


@pytest.mark.parametrize("n_pairs", [0, 5, 400])  # none, gather path, dense path
def test_sampled_row_dots_on_gpu(cupy, n_pairs):
    rng = np.random.default_rng(3)
    G = rng.standard_normal((30, 6)).astype(np.float32)
    W = rng.standard_normal((40, 6)).astype(np.float32)
    rows, cols = rng.integers(0, 30, n_pairs), rng.integers(0, 40, n_pairs)
    got = sampled_row_dots(cupy.asarray(G), cupy.asarray(W), cupy.asarray(rows), cupy.asarray(cols))
    assert isinstance(got, cupy.ndarray) and got.shape == (n_pairs,)
    np.testing.assert_allclose(cupy.asnumpy(got), (G @ W.T)[rows, cols], **TOL[np.float32])


def test_atoms_on_gpu(cupy):
    rng = np.random.default_rng(4)
    D = rng.standard_normal((6, 4))
    D[2] = 0.0
    D_gpu = cupy.asarray(D)
    assert normalize_rows(D_gpu, out=D_gpu) is D_gpu
    np.testing.assert_allclose(cupy.asnumpy(D_gpu), normalize_rows(D), rtol=1e-14, atol=0)
    grad = rng.standard_normal((6, 4))
    grad_gpu = cupy.asarray(grad)
    remove_parallel_component(grad_gpu, D_gpu)
    np.testing.assert_allclose(cupy.asnumpy(grad_gpu), remove_parallel_component(grad, normalize_rows(D)), atol=1e-14)


def test_adam_on_gpu(cupy):
    rng = np.random.default_rng(5)
    theta = rng.standard_normal((3, 4)).astype(np.float32)
    grads = rng.standard_normal((5, 3, 4)).astype(np.float32)
    cpu, gpu = {"W": theta.copy()}, {"W": cupy.asarray(theta)}
    opt_cpu, opt_gpu = Adam(cpu), Adam(gpu)
    for g in grads:
        opt_cpu.step(cpu, {"W": g}, {"W": 0.01})
        opt_gpu.step(gpu, {"W": cupy.asarray(g)}, {"W": 0.01})
    assert isinstance(gpu["W"], cupy.ndarray) and gpu["W"].dtype == np.float32
    np.testing.assert_allclose(cupy.asnumpy(gpu["W"]), cpu["W"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_geometric_median_on_gpu(cupy, dtype):
    X = np.random.default_rng(6).standard_normal((50, 3)).astype(dtype)
    got = geometric_median(cupy.asarray(X))
    assert isinstance(got, cupy.ndarray) and got.dtype == dtype
    np.testing.assert_allclose(cupy.asnumpy(got), geometric_median(X), **TOL[dtype])
