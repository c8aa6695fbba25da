"""A fit that ran out of max_iter, or ended worse than its mean, says so with a ConvergenceWarning."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skdict import AnchoredSAE, BatchTopKSAE, JumpReLUSAE, MPSAE, ReLUSAE, TopKSAE

CLASSES = [TopKSAE, BatchTopKSAE, ReLUSAE, JumpReLUSAE, MPSAE]


def make(cls, **params):
    extra = {"k": 4} if cls in (TopKSAE, BatchTopKSAE, MPSAE) else {}
    return cls(n_components=32, random_state=0, **extra, **params)


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).normal(size=(300, 16))


@pytest.mark.filterwarnings("ignore:.*worse than its mean:sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("cls", CLASSES)
def test_running_out_of_max_iter_warns(X, cls):
    with pytest.warns(ConvergenceWarning, match=rf"^{cls.__name__}: max_iter=2 ran out after 4 steps before the training loss reached a plateau.*; raise it"):
        make(cls, max_iter=2).fit(X)


@pytest.mark.parametrize("cls", CLASSES)
def test_early_stopping_and_partial_fit_do_not_warn(X, cls):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*worse than its mean", ConvergenceWarning)  # a few epochs of ReLU
        warnings.filterwarnings("error", ".*ran out after", ConvergenceWarning)
        # tol=1: no window (one epoch of 2 steps here) counts as progress, so early stopping sees the plateau
        # after n_iter_no_change + 1 = 3 epochs (6 steps), cools down for ceil(6 * 0.2 / 0.8) = 2 steps and ends
        est = make(cls, max_iter=10, tol=1.0, n_iter_no_change=2).fit(X)
        assert (est.n_iter_, est.n_steps_) == (4, 8)
        est.partial_fit(X)  # a stream has no budget to run out of
        make(cls).partial_fit(X)


def test_the_warning_points_at_the_callers_line(X):
    with pytest.warns(ConvergenceWarning) as record:
        make(TopKSAE, max_iter=1).fit(X)
    assert record[0].filename == __file__


@pytest.mark.filterwarnings("ignore:.*ran out after:sklearn.exceptions.ConvergenceWarning")
def test_a_fit_worse_than_its_mean_warns_and_says_to_lower_the_learning_rate(mlp_layer):
    # the case: learning_rate too high for a real MLP layer ended at EV -0.35, silently
    est = TopKSAE(n_components=512, k=16, learning_rate=0.3, max_iter=30, random_state=0)
    with pytest.warns(ConvergenceWarning, match=r"worse than its mean: explained variance -.*lower learning_rate \(now 0.3\)"):
        est.fit(mlp_layer)
    assert est.history_["explained_variance"][-1] < 0
    assert est.score(mlp_layer) < 0.1  # a real failure (the cooldown's last small steps lift it a little)


def test_a_good_fit_does_not_warn_that_it_is_worse_than_its_mean(mlp_layer):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        est = TopKSAE(n_components=512, k=16, learning_rate=0.1, max_iter=3, random_state=0).fit(mlp_layer)
    assert est.score(mlp_layer) > 0
    assert not [w for w in record if "worse than its mean" in str(w.message)]


def test_anchored_sae_passes_the_inner_warning_on(X):
    with pytest.warns(ConvergenceWarning, match="TopKSAE: max_iter=1 ran out"):
        AnchoredSAE(make(TopKSAE, max_iter=1), anchors=X[:2]).fit(X)
