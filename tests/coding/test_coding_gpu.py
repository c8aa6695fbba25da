"""sparse_encode, SparseCoder and batched OMP on CuPy arrays: CuPy in, CuPy out, the NumPy numbers."""

import numpy as np
import pytest

from skdict import SparseCoder, sparse_encode
from skdict.ops.omp import orthogonal_matching_pursuit

pytestmark = pytest.mark.gpu

ALGORITHMS = ["fista", "ista", "mp", "omp", "topk", "threshold"]
TOL = {np.float32: dict(rtol=1e-3, atol=1e-4), np.float64: dict(rtol=1e-9, atol=1e-10)}


@pytest.fixture
def cupy():
    import cupy

    return cupy


def problem(dtype, seed=0):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((40, 16))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.standard_normal((25, 16))
    return X.astype(dtype), D.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_sparse_encode_on_gpu_matches_numpy(cupy, algorithm, dtype):
    X, D = problem(dtype)
    # fista/ista run to a tight gap, so that both backends are at the optimum whatever their rounding
    kwargs = dict(algorithm=algorithm, alpha=0.2, n_nonzero_coefs=4, positive=algorithm != "omp", tol=1e-10, max_iter=3000)
    got = sparse_encode(cupy.asarray(X), cupy.asarray(D), **kwargs)
    assert isinstance(got, cupy.ndarray) and got.dtype == dtype
    np.testing.assert_allclose(cupy.asnumpy(got), sparse_encode(X, D, **kwargs), **TOL[dtype])


def test_dictionary_follows_the_data(cupy):
    X, D = problem(np.float64, seed=1)
    got = sparse_encode(cupy.asarray(X), D, algorithm="omp", n_nonzero_coefs=3)  # NumPy dictionary moved to the GPU
    assert isinstance(got, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(got), sparse_encode(X, D, algorithm="omp", n_nonzero_coefs=3), **TOL[np.float64])
    init = sparse_encode(X, D, alpha=0.25)
    warm = sparse_encode(cupy.asarray(X), D, alpha=0.2, init=cupy.asarray(init), tol=1e-12, max_iter=5000)
    reference = sparse_encode(X, D, alpha=0.2, init=init, tol=1e-12, max_iter=5000)
    np.testing.assert_allclose(cupy.asnumpy(warm), reference, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("tol", [None, 3.0])
def test_omp_op_on_gpu(cupy, tol):
    X, D = problem(np.float64, seed=2)
    cpu = orthogonal_matching_pursuit(X, D, 6, tol=tol)
    gpu = orthogonal_matching_pursuit(cupy.asarray(X), cupy.asarray(D), 6, tol=tol)
    assert isinstance(gpu.values, cupy.ndarray)
    np.testing.assert_array_equal(cupy.asnumpy(gpu.n_active), cpu.n_active)
    np.testing.assert_allclose(cupy.asnumpy(gpu.codes().to_dense()), cpu.codes().to_dense(), **TOL[np.float64])


def test_sparse_coder_on_gpu(cupy):
    X, D = problem(np.float32, seed=3)
    coder = SparseCoder(D, transform_algorithm="mp", transform_n_nonzero_coefs=3)
    unfitted = coder.transform(cupy.asarray(X))
    fitted = coder.fit(cupy.asarray(X))
    assert isinstance(fitted.components_, cupy.ndarray)
    codes = fitted.transform(cupy.asarray(X))
    assert isinstance(codes, cupy.ndarray) and codes.dtype == np.float32
    np.testing.assert_array_equal(cupy.asnumpy(codes), cupy.asnumpy(unfitted))
    np.testing.assert_allclose(cupy.asnumpy(codes), SparseCoder(D, transform_algorithm="mp", transform_n_nonzero_coefs=3).transform(X), **TOL[np.float32])
    back = fitted.inverse_transform(codes)
    assert isinstance(back, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(back), cupy.asnumpy(codes) @ D, **TOL[np.float32])
