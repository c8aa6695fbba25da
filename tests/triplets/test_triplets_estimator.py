"""TripletFeatureLearner's public behaviour: fitted attributes, predict/score, input validation."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from skdict import TripletFeatureLearner
from skdict.datasets import make_triplet_feedback
from skdict.triplets._estimator import AUTO_CVXPY_MAX_FEATURES

SOLVERS = ["lowrank", pytest.param("cvxpy", marks=pytest.mark.filterwarnings("error::UserWarning"))]


def _labelled(p=6, r=2, n=300, seed=0):
    D = np.random.default_rng(seed).standard_normal((r, p))
    Phi = D.T @ D
    T, y = make_triplet_feedback(Phi, n, kind="comparison", random_state=seed)
    return T, y, Phi


@pytest.mark.parametrize("solver", SOLVERS)
def test_fitted_attributes_are_consistent(solver):
    if solver == "cvxpy":
        pytest.importorskip("cvxpy")
    T, y, _ = _labelled()
    est = TripletFeatureLearner(solver=solver, rank=3 if solver == "lowrank" else None, max_iter=20, random_state=0)
    assert est.fit(T, y) is est
    Phi = est.feature_matrix_
    assert Phi.shape == (6, 6) and est.n_features_in_ == 6
    assert np.linalg.norm(Phi) == pytest.approx(1.0)
    np.testing.assert_allclose(Phi, Phi.T)
    assert np.linalg.eigvalsh(Phi)[0] > -1e-12
    assert est.components_.shape == (est.rank_, 6)
    np.testing.assert_allclose(est.components_.T @ est.components_, Phi, atol=1e-12)
    norms = np.linalg.norm(est.components_, axis=1)
    assert np.all(np.diff(norms) <= 1e-12)  # principal axes, largest first
    gram = est.components_ @ est.components_.T
    np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0, atol=1e-10)  # orthogonal rows
    assert est.n_iter_ >= 1 and est.solver_ == solver


def test_predict_and_score_follow_the_contrast_sign():
    # Φ = diag(1, 0): only the first coordinate counts.
    T = np.array(
        [
            [[0.0, 0.0], [1.0, 5.0], [2.0, 0.0]],  # d(x, y) = 1 < d(x, z) = 4: +1
            [[0.0, 0.0], [3.0, 0.0], [1.0, 9.0]],  # 9 > 1: -1
            [[0.0, 0.0], [1.0, 0.0], [1.0, 7.0]],  # equal: 0
        ]
    )
    est = TripletFeatureLearner(solver="lowrank", max_iter=1, random_state=0).fit(T, [1, -1, 0])
    est.feature_matrix_ = np.diag([1.0, 0.0])  # predict uses feature_matrix_ only
    np.testing.assert_array_equal(est.predict(T), [1, -1, 0])
    assert est.predict(T).dtype == np.int64
    assert est.score(T, [1, -1, 0]) == 1.0
    assert est.score(T, [1, 1, 1]) == pytest.approx(1 / 3)
    assert est.score(T) == pytest.approx(1 / 3)  # y=None: all equalities
    s = est.decision_function(T)
    np.testing.assert_allclose(s, [3 / 30, -8 / 91, 0.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(dtype):
    T, y, _ = _labelled()
    est = TripletFeatureLearner(solver="lowrank", rank=2, max_iter=3, random_state=0).fit(T.astype(dtype), y)
    assert est.feature_matrix_.dtype == dtype and est.components_.dtype == dtype
    assert est.decision_function(T.astype(dtype)).dtype == dtype


def test_integer_triplets_become_float64():
    T = np.random.default_rng(0).integers(0, 3, size=(40, 3, 4))
    est = TripletFeatureLearner(solver="lowrank", max_iter=2, random_state=0).fit(T)
    assert est.feature_matrix_.dtype == np.float64


def test_auto_solver_choice():
    pytest.importorskip("cvxpy")
    T, y, _ = _labelled(p=4, n=60)
    assert TripletFeatureLearner(random_state=0).fit(T, y).solver_ == "cvxpy"
    p = AUTO_CVXPY_MAX_FEATURES + 1
    T, y = make_triplet_feedback(np.eye(p), 50, kind="comparison", random_state=0)
    assert TripletFeatureLearner(max_iter=1, random_state=0).fit(T, y).solver_ == "lowrank"


@pytest.mark.parametrize(
    ("T", "message"),
    [
        (np.zeros((5, 6)), r"3-D array .* got a 2-D array .* T.reshape\(-1, 3, n_features\)"),
        (np.zeros(5), "got a 1-D array"),
        (np.zeros((5, 2, 4)), "middle dimension is 2, not 3"),
        (np.zeros((0, 3, 4)), "0 triplets"),
        (np.zeros((5, 3, 0)), "0 features"),
        (np.full((2, 3, 2), np.nan), "NaN"),
        (np.full((2, 3, 2), np.inf), "infinity"),
    ],
)
def test_bad_triplets_get_clear_errors(T, message):
    with pytest.raises(ValueError, match=message):
        TripletFeatureLearner().fit(T)


@pytest.mark.parametrize(
    ("y", "message"),
    [
        ([1, 0, 2], r"only -1 .* found \[2\]"),
        ([0.5, 0, 1], r"found \[0.5\]"),
        ([1, 0], r"shape \(3,\)"),
        ([[1, 0, 1]], r"shape \(3,\)"),
        (["a", "b", "c"], "numbers -1, 0 or"),
    ],
)
def test_bad_labels_get_clear_errors(y, message):
    T = np.random.default_rng(0).random((3, 3, 2))
    with pytest.raises(ValueError, match=message):
        TripletFeatureLearner(solver="lowrank").fit(T, y)


def test_other_errors():
    T, y, _ = _labelled()
    with pytest.raises(ValueError, match="rank=7 exceeds n_features=6"):
        TripletFeatureLearner(rank=7).fit(T, y)
    with pytest.raises(ValueError, match="solver"):
        TripletFeatureLearner(solver="sgd").fit(T, y)
    with pytest.raises(NotFittedError):
        TripletFeatureLearner().predict(T)
    est = TripletFeatureLearner(solver="lowrank", max_iter=2, random_state=0).fit(T, y)
    with pytest.raises(ValueError, match="T has 5 features per vector, but TripletFeatureLearner is expecting 6"):
        est.predict(T[:, :, :5])
    with pytest.raises(ValueError, match="carry no information"):
        TripletFeatureLearner(solver="lowrank", max_iter=2).fit(np.ones((4, 3, 3)))


def test_boolean_labels_and_list_input_are_accepted():
    T, y, _ = _labelled(n=50)
    est = TripletFeatureLearner(solver="lowrank", max_iter=2, random_state=0).fit(T.tolist(), (y > 0).astype(bool))
    assert est.feature_matrix_.shape == (6, 6)


def test_report_line():
    from skdict.triplets._summary import triplet_summary_line

    line = triplet_summary_line(quick=True)
    assert line.startswith("TripletFeatureLearner: ")
    pcc = float(line.split("PCC ")[1].split()[0])
    assert pcc > 0.95
    if "exact p=" in line:
        assert float(line.split("rel. error ")[1].split()[0]) < 1e-3
