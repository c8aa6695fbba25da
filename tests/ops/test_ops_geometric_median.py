"""geometric_median (Weiszfeld) against a direct minimisation with scipy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from skdict.ops.geometric_median import geometric_median


def sum_of_distances(X, m):
    return np.sqrt(((X - m) ** 2).sum(axis=1)).sum()


def scipy_median(X):
    """Minimise sum_n ||x_n - m|| with BFGS and the analytic (sub)gradient."""

    def grad(m):
        diff = X - m
        dist = np.sqrt((diff**2).sum(axis=1))
        # a zero distance contributes the zero subgradient
        units = np.divide(diff, dist[:, None], out=np.zeros_like(diff), where=dist[:, None] > 0)
        return -units.sum(axis=0)

    result = minimize(
        lambda m: sum_of_distances(X, m), X.mean(axis=0), jac=grad, method="BFGS", options={"gtol": 1e-12}
    )
    return result.x


def data_scale(X):
    return np.sqrt(((X - X.mean(axis=0)) ** 2).sum(axis=1).mean())


def random_cloud(rng, n, d, kind):
    if kind == "gaussian":
        return rng.standard_normal((n, d)) * rng.uniform(0.1, 10.0, d) + rng.normal(0.0, 5.0, d)
    if kind == "skewed":
        return rng.standard_exponential((n, d)) ** 2
    return rng.standard_t(2, (n, d)) + 100.0  # heavy tails, far from the origin


@pytest.mark.parametrize("kind", ["gaussian", "skewed", "heavy"])
@pytest.mark.parametrize("n, d", [(7, 2), (50, 3), (200, 10)])
def test_matches_scipy_minimize(kind, n, d):
    rng = np.random.default_rng(n * 31 + d)
    X = random_cloud(rng, n, d, kind)
    median = geometric_median(X)
    reference = scipy_median(X)
    assert median.shape == (d,) and median.dtype == np.float64
    assert np.linalg.norm(median - reference) <= 1e-5 * data_scale(X)
    assert sum_of_distances(X, median) <= sum_of_distances(X, reference) * (1 + 1e-9)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(n=st.integers(3, 60), d=st.integers(2, 6), seed=st.integers(0, 2**32 - 1))
def test_matches_scipy_minimize_property(n, d, seed):
    X = random_cloud(np.random.default_rng(seed), n, d, "gaussian")
    median = geometric_median(X)
    assert np.linalg.norm(median - scipy_median(X)) <= 1e-5 * data_scale(X)


# Two clouds on which plain Weiszfeld iteration with a step-length stopping rule ended
# early: the median lies close to a data point, where the fixed-point map contracts
# slowly, so a step shorter than tol * scale still left an error of shift / (1 - rate)
# >> tol * scale. The Newton polish fixes that; a run at tol=1e-11 agrees with scipy
# to 1e-9 on both, so the reference is right.


def test_matches_scipy_on_a_triangle_with_a_wide_angle():
    # three points, angle 114 degrees at the first: the Fermat point is close to that
    # vertex; plain Weiszfeld ended 1.8e-5 x scale from it (1.1e-5 with max_iter=1000)
    rng = np.random.default_rng(1)
    X = random_cloud(rng, 3, 3, "gaussian")
    reference = scipy_median(X)
    np.testing.assert_allclose(geometric_median(X, tol=1e-11), reference, atol=1e-9)
    assert np.linalg.norm(geometric_median(X) - reference) <= 1e-5 * data_scale(X)


def test_matches_scipy_when_the_median_is_near_a_data_point():
    # 41 points in 2-D whose median is 9e-4 x scale from a data point: plain Weiszfeld
    # ended 1.5e-4 x scale from the minimiser (4.5e-5 with max_iter=1000)
    rng = np.random.default_rng(2968)
    n, d = int(rng.integers(3, 61)), int(rng.integers(2, 7))
    X = random_cloud(rng, n, d, "gaussian")
    assert (n, d) == (41, 2)
    reference = scipy_median(X)
    np.testing.assert_allclose(geometric_median(X, tol=1e-11), reference, atol=1e-9)
    assert np.linalg.norm(geometric_median(X) - reference) <= 1e-5 * data_scale(X)


def test_one_dimensional_odd_sample_is_the_ordinary_median():
    x = np.random.default_rng(0).standard_normal(21)
    np.testing.assert_allclose(geometric_median(x[:, None]), [np.median(x)], atol=1e-6)


def test_median_at_a_repeated_data_point():
    # m = 0 is optimal when the unit vectors towards the other points sum to a vector
    # no longer than the multiplicity of 0 (the subgradient condition); Weiszfeld
    # converges slowly to such a point, which this checks it still does within 1e-5
    rng = np.random.default_rng(1)
    others = rng.standard_normal((6, 3)) * 3 + 1
    units = others / np.linalg.norm(others, axis=1, keepdims=True)
    assert np.linalg.norm(units.sum(axis=0)) <= 5
    X = np.vstack([np.zeros((5, 3)), others])
    np.testing.assert_allclose(geometric_median(X), 0.0, atol=1e-5 * data_scale(X))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_identical_rows_give_the_point(dtype):
    point = np.array([1.5, -2.0, 3.25, 0.0], dtype=dtype)
    X = np.tile(point, (9, 1))
    median = geometric_median(X)
    assert median.dtype == dtype
    np.testing.assert_array_equal(median, point)


def test_single_row():
    X = np.array([[4.0, -1.0, 2.0]])
    np.testing.assert_array_equal(geometric_median(X), X[0])


def test_robust_to_an_outlier():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((99, 4))
    outlier = np.full((1, 4), 1e6)
    Y = np.vstack([X, outlier])
    mean_shift = np.linalg.norm(Y.mean(axis=0) - X.mean(axis=0))
    median_shift = np.linalg.norm(geometric_median(Y) - geometric_median(X))
    assert mean_shift > 1e4
    assert median_shift < 1e-3 * mean_shift
    assert median_shift < 0.1 * data_scale(X)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved_and_input_untouched(dtype):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 5)).astype(dtype)
    original = X.copy()
    median = geometric_median(X)
    assert median.dtype == dtype and median.shape == (5,)
    np.testing.assert_array_equal(X, original)
    reference = scipy_median(X.astype(np.float64))
    tol = 1e-5 if dtype == np.float64 else 1e-5 + 1e-6  # float32 output rounding
    assert np.linalg.norm(median.astype(np.float64) - reference) <= tol * data_scale(X.astype(np.float64))


@pytest.mark.parametrize("scale", [1e-300, 1e-150, 1e150, 1e300])
def test_the_median_scales_with_the_data_at_any_magnitude(scale):
    import warnings

    X = np.random.default_rng(0).normal(size=(50, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow or underflow on the way
        scaled = geometric_median(X * scale)
    np.testing.assert_allclose(scaled / scale, geometric_median(X), rtol=1e-9)


def test_float32_data_near_its_largest_value():
    X = (np.random.default_rng(1).normal(size=(40, 3)) * 1e37).astype(np.float32)
    median = geometric_median(X)
    assert median.dtype == np.float32 and np.isfinite(median).all()
    np.testing.assert_allclose(median / np.float32(1e37), geometric_median(X.astype(np.float64) / 1e37), rtol=1e-5)
