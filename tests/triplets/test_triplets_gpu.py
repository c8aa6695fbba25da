"""CuPy against NumPy for TripletFeatureLearner (skipped without a GPU)."""

import numpy as np
import pytest

from skdict import TripletFeatureLearner
from skdict._array import is_cupy_array, to_numpy
from skdict.datasets import make_eigendecomposition_teaching_set, make_triplet_feedback
from skdict.triplets._comparisons import triplet_differences
from skdict.triplets._lowrank_solver import lowrank_objective

pytestmark = pytest.mark.gpu


def _data(kind="comparison", n=400, p=8, r=2):
    D = np.random.default_rng(0).standard_normal((r, p))
    return (*make_triplet_feedback(D.T @ D, n, kind=kind, random_state=0), D.T @ D)


def test_objective_and_gradient_match_numpy():
    cp = pytest.importorskip("cupy")
    T, y, _ = _data()
    U = np.random.default_rng(1).standard_normal((T.shape[2], 3))
    host = lowrank_objective(U, *triplet_differences(T), y.astype(float), margin=0.01, alpha=0.1)
    device = lowrank_objective(
        cp.asarray(U), *triplet_differences(cp.asarray(T)), cp.asarray(y, dtype=cp.float64), margin=0.01, alpha=0.1
    )
    assert device[0] == pytest.approx(host[0], rel=1e-10)
    assert is_cupy_array(device[1])
    np.testing.assert_allclose(to_numpy(device[1]), host[1], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lowrank_on_cupy_matches_numpy(dtype):
    cp = pytest.importorskip("cupy")
    T, y, Phi = _data()
    params = dict(solver="lowrank", rank=2, max_iter=30, random_state=0)
    host = TripletFeatureLearner(**params).fit(T.astype(dtype), y)
    device = TripletFeatureLearner(**params).fit(cp.asarray(T, dtype=dtype), cp.asarray(y))
    assert is_cupy_array(device.feature_matrix_) and is_cupy_array(device.components_)
    assert device.feature_matrix_.dtype == dtype
    tolerance = 1e-3 if dtype == np.float32 else 1e-8
    np.testing.assert_allclose(to_numpy(device.feature_matrix_), host.feature_matrix_, atol=tolerance)
    predicted = device.predict(cp.asarray(T, dtype=dtype))
    assert is_cupy_array(predicted)
    assert device.score(cp.asarray(T, dtype=dtype), y) == pytest.approx(host.score(T.astype(dtype), y), abs=0.01)


def test_device_cuda_moves_numpy_input_and_cvxpy_results_come_back():
    cp = pytest.importorskip("cupy")
    T, y, _ = _data(n=100)
    est = TripletFeatureLearner(solver="lowrank", rank=2, max_iter=3, device="cuda", random_state=0).fit(T, y)
    assert is_cupy_array(est.feature_matrix_)
    pytest.importorskip("cvxpy")
    Phi = np.diag([3.0, 1.0, 0.0])
    T_teach = cp.asarray(make_eigendecomposition_teaching_set(Phi))
    exact = TripletFeatureLearner(solver="cvxpy").fit(T_teach)
    assert is_cupy_array(exact.feature_matrix_)
    np.testing.assert_allclose(to_numpy(exact.feature_matrix_), Phi / np.linalg.norm(Phi), atol=1e-6)
