"""The SAE family on CuPy arrays: arrays follow the input, results match the CPU path."""

import numpy as np
import pytest

from skdict import BatchTopKSAE, JumpReLUSAE, MPSAE, ReLUSAE, TopKSAE

pytestmark = pytest.mark.gpu
ALL = [TopKSAE, BatchTopKSAE, ReLUSAE, JumpReLUSAE, MPSAE]


def make(cls, **kwargs):
    params = {"n_components": 48, "max_iter": 2, "random_state": 0, **kwargs}
    if cls in (TopKSAE, BatchTopKSAE, MPSAE):
        params.setdefault("k", 4)
    return cls(**params)


def data(dtype=np.float64):
    return np.random.default_rng(0).normal(size=(300, 12)).astype(dtype)


@pytest.mark.parametrize("cls", ALL)
def test_cupy_in_cupy_out_and_same_model_as_numpy(cls):
    import cupy

    X = data()
    cpu = make(cls).fit(X)
    gpu = make(cls).fit(cupy.asarray(X))
    assert isinstance(gpu.components_, cupy.ndarray)
    codes = gpu.transform(cupy.asarray(X))
    assert isinstance(codes, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(gpu.components_), cpu.components_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cupy.asnumpy(codes), cpu.transform(X), rtol=1e-4, atol=1e-5)
    assert gpu.score(cupy.asarray(X)) == pytest.approx(cpu.score(X), abs=1e-5)


@pytest.mark.parametrize("cls", ALL)
def test_device_cuda_moves_numpy_input_and_returns_numpy(cls):
    import cupy

    X = data(np.float32)
    est = make(cls, device="cuda").fit(X)
    assert isinstance(est.components_, cupy.ndarray) and est.components_.dtype == np.float32
    codes = est.transform(X)
    assert isinstance(codes, np.ndarray) and codes.dtype == np.float32
    assert isinstance(est.predict(X), np.ndarray)


def test_transcoder_on_gpu():
    import cupy

    rng = np.random.default_rng(1)
    X = cupy.asarray(rng.normal(size=(400, 10)))
    Y = cupy.asarray(rng.normal(size=(400, 6)))
    est = make(TopKSAE).fit(X, Y)
    assert est.predict(X).shape == (400, 6) and isinstance(est.predict(X), cupy.ndarray)
