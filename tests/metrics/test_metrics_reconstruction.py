import numpy as np
import pytest
from sklearn.metrics import r2_score

from skdict.metrics import explained_variance, fvu


@pytest.fixture
def data():
    rng = np.random.RandomState(0)
    X = rng.standard_normal((50, 8)) * np.arange(1, 9) + 3.0
    X_hat = X + 0.3 * rng.standard_normal(X.shape)
    return X, X_hat


def test_matches_variance_weighted_r2(data):
    X, X_hat = data
    expected = r2_score(X, X_hat, multioutput="variance_weighted")
    assert explained_variance(X, X_hat) == pytest.approx(expected, rel=1e-12)
    assert fvu(X, X_hat) == pytest.approx(1 - expected, rel=1e-12)


def test_predicting_the_mean_gives_exactly_zero(data):
    X, _ = data
    X_hat = np.broadcast_to(X.mean(axis=0), X.shape)
    assert explained_variance(X, X_hat) == 0.0
    assert fvu(X, X_hat) == 1.0


def test_perfect_reconstruction_gives_one(data):
    X, _ = data
    ev = explained_variance(X, X.copy())
    assert ev == 1.0
    assert isinstance(ev, float)


def test_hand_example_against_np_var():
    X = np.array([[1.0, 2.0], [3.0, 6.0], [5.0, 4.0]])
    X_hat = np.array([[1.0, 3.0], [3.0, 5.0], [4.0, 4.0]])
    # residuals: 0,1,0,1,1,0 -> 3; total: n * sum of per-feature population variances
    expected = 1 - 3 / (X.shape[0] * np.var(X, axis=0).sum())
    assert explained_variance(X, X_hat) == pytest.approx(expected, rel=1e-14)
    assert expected == pytest.approx(1 - 3 / 16)


def test_float32_and_integer_inputs(data):
    X, X_hat = data
    ev64 = explained_variance(X, X_hat)
    assert explained_variance(X.astype(np.float32), X_hat.astype(np.float32)) == pytest.approx(ev64, rel=1e-5)
    Xi = np.array([[1, 2], [3, 4], [0, 7]])
    assert explained_variance(Xi, Xi) == 1.0


def test_shape_mismatch_names_both_shapes(data):
    X, X_hat = data
    with pytest.raises(ValueError, match=r"X\.shape=\(50, 8\) and X_hat\.shape=\(50, 7\)"):
        explained_variance(X, X_hat[:, :7])


def test_too_few_samples():
    with pytest.raises(ValueError, match="at least 2 samples"):
        explained_variance(np.ones((1, 3)), np.ones((1, 3)))


@pytest.mark.parametrize("value", [0.0, 0.1, -7.3])
def test_zero_variance_is_undefined(value):
    X = np.full((3, 4), value)
    with pytest.raises(ValueError, match="zero variance.*undefined"):
        explained_variance(X, X + 1)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_rejected(data, bad):
    X, X_hat = data
    X_hat = X_hat.copy()
    X_hat[3, 2] = bad
    with pytest.raises(ValueError, match="X_hat contains NaN or infinity"):
        explained_variance(X, X_hat)


def test_not_2d_rejected():
    with pytest.raises(ValueError, match="X must be a 2-D array"):
        explained_variance(np.arange(5.0), np.arange(5.0))
