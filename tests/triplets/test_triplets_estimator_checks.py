"""scikit-learn's estimator checks, and the same contracts on 3-D triplets where those checks cannot apply.

scikit-learn's checks feed 2-D matrices X. TripletFeatureLearner takes triplets of
shape (n_triplets, 3, n_features) and rejects a 2-D X with a ValueError that says
so; every check that needs a successful fit on 2-D X is therefore an expected
failure, and the contract it guards is re-checked on triplets further below.
"""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from skdict import TripletFeatureLearner
from skdict.datasets import make_triplet_feedback
from skdict.metrics import make_feature_matrix_scorer

# A 2-D X is rejected with a ValueError (the estimator takes 3-D triplets, see the module
# docstring); the contracts these checks guard are re-tested on triplets below.
_NEEDS_2D_FIT = "needs a fit on 2-D X; retested on triplets below"
# A 2-D X is rejected for its shape before its size is looked at (see test_single_triplet_and_single_feature).
_NEEDS_2D_MESSAGE = "expects a 1-sample/1-feature message for 2-D X"
EXPECTED_FAILED_CHECKS = {
    name: _NEEDS_2D_FIT
    for name in (
        "check_dict_unchanged",
        "check_dont_overwrite_parameters",
        "check_dtype_object",
        "check_estimators_dtypes",
        "check_estimators_fit_returns_self",
        "check_estimators_nan_inf",
        "check_estimators_overwrite_params",
        "check_estimators_pickle",
        "check_f_contiguous_array_estimator",
        "check_fit2d_predict1d",
        "check_fit_check_is_fitted",
        "check_fit_idempotent",
        "check_fit_score_takes_y",
        "check_methods_sample_order_invariance",
        "check_methods_subset_invariance",
        "check_n_features_in",
        "check_n_features_in_after_fitting",
        "check_pipeline_consistency",
        "check_positive_only_tag_during_fit",
        "check_readonly_memmap_input",
    )
}
EXPECTED_FAILED_CHECKS["check_fit2d_1sample"] = _NEEDS_2D_MESSAGE
EXPECTED_FAILED_CHECKS["check_fit2d_1feature"] = _NEEDS_2D_MESSAGE


@parametrize_with_checks(
    [TripletFeatureLearner()],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ----------------------------------------------------------- the same contracts on triplets
def _data(n=120, p=5, seed=0):
    D = np.random.default_rng(seed).standard_normal((2, p))
    T, y = make_triplet_feedback(D.T @ D, n, kind="comparison", random_state=seed)
    return T, y, D.T @ D


SOLVERS = ["lowrank", "cvxpy"]


def _estimator(solver):
    if solver == "cvxpy":
        pytest.importorskip("cvxpy")
    return TripletFeatureLearner(solver=solver, rank=2 if solver == "lowrank" else None, max_iter=10, random_state=0)


@pytest.mark.parametrize("solver", SOLVERS)
def test_fit_returns_self_keeps_params_and_is_idempotent(solver):
    T, y, _ = _data()
    est = _estimator(solver)
    params = est.get_params()
    assert est.fit(T, y) is est
    assert est.get_params() == params
    first = est.feature_matrix_.copy()
    np.testing.assert_allclose(est.fit(T, y).feature_matrix_, first, atol=1e-9)
    assert not hasattr(clone(est), "feature_matrix_")


@pytest.mark.parametrize("solver", SOLVERS)
def test_pickle_round_trip_and_methods_leave_state_unchanged(solver):
    T, y, _ = _data()
    est = _estimator(solver).fit(T, y)
    state = pickle.dumps(est)
    before = {key: (value.copy() if isinstance(value, np.ndarray) else value) for key, value in vars(est).items()}
    predicted, decision, score = est.predict(T), est.decision_function(T), est.score(T, y)
    assert pickle.dumps(est) == state
    for key, value in vars(est).items():
        np.testing.assert_array_equal(value, before[key])
    again = pickle.loads(state)
    np.testing.assert_array_equal(again.predict(T), predicted)
    np.testing.assert_array_equal(again.decision_function(T), decision)
    assert again.score(T, y) == score


def test_sample_order_and_subset_invariance():
    T, y, _ = _data()
    est = _estimator("lowrank").fit(T, y)
    order = np.random.default_rng(0).permutation(len(T))
    full = est.decision_function(T)
    np.testing.assert_allclose(est.decision_function(T[order]), full[order], rtol=1e-12)
    np.testing.assert_allclose(np.concatenate([est.decision_function(T[i : i + 7]) for i in range(0, len(T), 7)]), full)


def test_memory_layouts_and_readonly_input(tmp_path):
    T, y, _ = _data()
    reference = _estimator("lowrank").fit(T, y).feature_matrix_
    fortran = np.asfortranarray(T)
    path = tmp_path / "T.npy"
    np.save(path, T)
    readonly = np.load(path, mmap_mode="r")
    strided = np.repeat(T, 2, axis=2)[:, :, ::2]  # a non-contiguous view equal to T
    for variant in (fortran, readonly, strided):
        np.testing.assert_allclose(_estimator("lowrank").fit(variant, y).feature_matrix_, reference, atol=1e-12)
    assert not readonly.flags.writeable


def test_single_triplet_and_single_feature():
    T, y, _ = _data(n=4)
    est = TripletFeatureLearner(solver="lowrank", max_iter=2, random_state=0)
    assert est.fit(T[:1], y[:1]).feature_matrix_.shape == (5, 5)
    assert est.fit(T[:, :, :1], None).feature_matrix_.shape == (1, 1)
    assert est.n_features_in_ == 1


def test_predict_rejects_2d_input_after_fit():
    T, y, _ = _data()
    est = _estimator("lowrank").fit(T, y)
    with pytest.raises(ValueError, match="3-D array"):
        est.predict(T[:, 0])


def test_model_selection_with_triplets():
    T, y, Phi = _data(n=300)
    search = GridSearchCV(
        TripletFeatureLearner(solver="lowrank", random_state=0),
        {"rank": [1, 2]},
        scoring=make_feature_matrix_scorer(Phi),
        cv=3,
    ).fit(T, y)
    assert search.best_params_ == {"rank": 2}  # Φ has rank 2
    accuracies = cross_val_score(TripletFeatureLearner(solver="lowrank", rank=2, random_state=0), T, y, cv=3)
    assert accuracies.shape == (3,) and np.all(accuracies > 0.8)
