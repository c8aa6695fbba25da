"""The public ``callback`` and the one ``history_`` schema, for every iterative family."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from skdict import (
    LISTA,
    MPSAE,
    AnchoredSAE,
    BatchTopKSAE,
    FISTADictionaryLearning,
    JumpReLUSAE,
    ReLUSAE,
    SoftplusAdamDictionaryLearning,
    TopKSAE,
    TripletFeatureLearner,
)
from skdict._history import CORE_KEYS
from skdict.datasets import make_linear_representation_bench, make_triplet_feedback
from skdict.inspection import track_learning_dynamics
from skdict.metrics import mean_max_cosine

SAE = dict(n_components=12, max_iter=4, early_stopping=False, batch_size=64, random_state=0)
RECONSTRUCTING = ("loss", "explained_variance", "l0")
#: name: (estimator with a 4-epoch budget, the history keys it must have)
LEARNERS = {
    "TopK": (TopKSAE(k=2, **SAE), CORE_KEYS),
    "BatchTopK": (BatchTopKSAE(k=2, **SAE), CORE_KEYS),
    "ReLU": (ReLUSAE(alpha=0.01, **SAE), CORE_KEYS),
    "JumpReLU": (JumpReLUSAE(alpha=0.01, **SAE), CORE_KEYS),
    "MPSAE": (MPSAE(k=2, **SAE), CORE_KEYS),
    "FISTA-batch": (FISTADictionaryLearning(8, alpha=0.2, max_iter=4, tol=0, random_state=0),
                    CORE_KEYS + ("objective", "n_resampled")),
    "FISTA-minibatch": (FISTADictionaryLearning(8, alpha=0.2, max_iter=4, tol=0, batch_size=50, random_state=0),
                        CORE_KEYS + ("objective", "n_resampled")),
    "SoftplusAdam": (SoftplusAdamDictionaryLearning(8, max_iter=4, tol=0, transform_max_iter=5, random_state=0),
                     RECONSTRUCTING),
    "LISTA": (LISTA(8, n_layers=2, max_iter=4, tol=0, random_state=0), CORE_KEYS),
}


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(0)
    return rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6))


def _fit_quietly(est, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a 4-epoch budget on purpose
        return est.fit(X)


@pytest.mark.parametrize("name", list(LEARNERS))
def test_callback_sees_every_record_appended_to_history(name, X):
    template, keys = LEARNERS[name]
    calls = []
    est = clone(template).set_params(callback=lambda model, record: calls.append((model, dict(record))))
    _fit_quietly(est, X)
    assert tuple(est.history_) == keys  # the schema: core keys first, then the family's own
    n_epochs = len(est.history_["loss"])
    assert n_epochs == 4 and len(calls) == n_epochs
    for epoch, (model, record) in enumerate(calls, 1):
        assert model is est
        assert record == {"epoch": epoch, **{key: values[epoch - 1] for key, values in est.history_.items()}}


@pytest.mark.parametrize("name", list(LEARNERS))
def test_callback_returning_true_stops_the_fit_without_a_convergence_warning(name, X):
    est = clone(LEARNERS[name][0]).set_params(callback=lambda model, record: record["epoch"] == 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # stopping on request is not running out of budget
        est.fit(X)
    assert len(est.history_["loss"]) == 2
    assert est.n_iter_ == 2


def test_anchored_sae_passes_the_callback_to_its_model(X):
    epochs = []
    model = AnchoredSAE(TopKSAE(k=2, callback=lambda m, r: epochs.append(r["epoch"]), **SAE),
                        anchors=np.eye(6)[:2], anchor_weight=0.1)
    _fit_quietly(model, X)
    assert epochs == [1, 2, 3, 4] == list(range(1, model.n_iter_ + 1))


def test_partial_fit_calls_the_callback_once_per_call(X):
    records = []
    est = FISTADictionaryLearning(8, alpha=0.2, random_state=0, callback=lambda m, r: records.append(r))
    est.partial_fit(X[:100]).partial_fit(X[100:])
    assert [r["epoch"] for r in records] == [1, 2]
    sae = TopKSAE(k=2, n_components=12, random_state=0, callback=lambda m, r: records.append(r))
    sae.partial_fit(X)
    assert records[-1]["epoch"] == 1 and set(CORE_KEYS) <= set(records[-1])


def test_triplet_learner_history_is_its_loss_curve():
    D = np.random.default_rng(0).normal(size=(2, 4))
    T, y = make_triplet_feedback(D.T @ D, 300, kind="comparison", random_state=0)
    est = TripletFeatureLearner(solver="lowrank", rank=2, max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(T, y)
    assert est.history_ == {"loss": est.loss_curve_} and len(est.loss_curve_) > 0


def test_learning_dynamics_follow_a_dictionary_learner_through_its_callback():
    X, features, _ = make_linear_representation_bench(600, n_features=12, n_dims=10, max_coherence=0.5, random_state=0)
    users = []
    dl = FISTADictionaryLearning(12, alpha=0.05, max_iter=5, tol=0, random_state=0,
                                 callback=lambda m, r: users.append(r["epoch"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model, dynamics = track_learning_dynamics(dl, X, true_features=features)
    assert len(dynamics.mean_max_cosine) == len(dynamics.gt_recovery) == model.n_iter_ == 5 == len(dynamics.loss)
    assert dynamics.mean_max_cosine[-1] == pytest.approx(mean_max_cosine(features, model.components_))
    assert users == [1, 2, 3, 4, 5]  # the estimator's own callback still ran
    assert model.callback is dl.callback  # and is the fitted clone's again


def test_learning_dynamics_need_a_callback_parameter():
    from sklearn.decomposition import PCA

    with pytest.raises(TypeError, match="callback"):
        track_learning_dynamics(PCA(2), np.eye(3), true_features=np.eye(3))
