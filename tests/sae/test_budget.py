"""Training budgets (max_iter epochs, max_steps, max_samples), the schedule's horizon, early stopping's cooldown."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

import skdict.sae._training as training
from skdict import BatchTopKSAE, JumpReLUSAE, MPSAE, ReLUSAE, TopKSAE
from skdict.ops.schedule import learning_rate_factor
from skdict.sae._training import Budget, Schedule

CLASSES = [TopKSAE, BatchTopKSAE, ReLUSAE, JumpReLUSAE, MPSAE]


def make(cls=TopKSAE, **params):
    extra = {"k": 2} if cls in (TopKSAE, BatchTopKSAE, MPSAE) else {}
    params = {"n_components": 8, "batch_size": 64, "random_state": 0, **extra, **params}
    return cls(**params)


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).normal(size=(300, 6))


def quiet_fit(model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X)


@pytest.mark.parametrize("cls", CLASSES)
def test_the_first_budget_reached_ends_the_fit(cls, X):
    # 300 rows at batch 64: 5 steps per epoch, the last of 44 rows
    assert quiet_fit(make(cls, max_steps=7), X).n_steps_ == 7
    model = quiet_fit(make(cls, max_iter=2), X)
    assert (model.n_steps_, model.n_samples_seen_, model.n_iter_) == (10, 600, 2)
    model = quiet_fit(make(cls, max_samples=700), X)  # 2 epochs (600) + 2 minibatches (128)
    assert (model.n_steps_, model.n_samples_seen_, model.n_iter_) == (12, 728, 3)
    assert quiet_fit(make(cls, max_iter=3, max_steps=12, max_samples=5000), X).n_steps_ == 12


@settings(max_examples=25, deadline=None)
@given(
    n_rows=st.integers(1, 40), batch_size=st.integers(1, 16), epochs=st.none() | st.integers(1, 3),
    steps=st.none() | st.integers(1, 12), samples=st.none() | st.integers(1, 90),
)
def test_horizon_is_the_number_of_steps_the_budget_allows(n_rows, batch_size, epochs, steps, samples):
    """Law: a fit that never stops early runs exactly Budget.horizon steps (the schedule's horizon)."""
    if epochs is None and steps is None and samples is None:
        steps = 5
    X = np.random.default_rng(n_rows).normal(size=(n_rows, 3)) + np.arange(3)
    model = make(n_components=4, k=1, batch_size=batch_size, max_iter=epochs, max_steps=steps,
                 max_samples=samples, early_stopping=False, tol=0.0, n_iter_no_change=10**6)
    quiet_fit(model, X)
    assert model.n_steps_ == Budget(epochs, steps, samples).horizon(n_rows, min(batch_size, n_rows))


def spy_horizons(monkeypatch):
    horizons = []

    def spy(step, total_steps, **kwargs):
        horizons.append(total_steps)
        return learning_rate_factor(step, total_steps, **kwargs)

    monkeypatch.setattr(training, "learning_rate_factor", spy)
    return horizons


def test_schedule_horizon_is_the_budget_in_steps(monkeypatch, X):
    horizons = spy_horizons(monkeypatch)
    quiet_fit(make(max_samples=700), X)
    assert set(horizons) == {12}
    horizons.clear()
    quiet_fit(make(max_iter=4, max_steps=100), X)
    assert set(horizons) == {20}


def test_stream_of_unknown_length_gets_a_schedule_from_max_steps_or_max_samples(monkeypatch, X):
    horizons = spy_horizons(monkeypatch)

    def chunks():
        for start in range(0, 300, 50):
            yield X[start : start + 50]

    quiet_fit(make(max_samples=200), chunks())
    assert set(horizons) == {math.ceil(200 / 64)}
    horizons.clear()
    model = quiet_fit(make(max_steps=3), chunks())
    assert set(horizons) == {3} and model.n_steps_ == 3


def test_stream_without_budget_trains_one_pass_and_says_the_stream_ended(X):
    with pytest.warns(ConvergenceWarning, match="the one-pass stream ran out"):
        model = make(tol=0.0).fit(iter([X[:150], X[150:]]))
    assert model.n_samples_seen_ == 300 and model.n_iter_ == 1


@pytest.mark.parametrize(
    "params, name",
    [({"max_steps": 3}, "max_steps=3"), ({"max_samples": 100}, "max_samples=100"), ({"max_iter": 1}, "max_iter=1")],
)
def test_convergence_warning_names_the_budget_that_ran_out(X, params, name):
    with pytest.warns(ConvergenceWarning, match=rf"^TopKSAE: {name} ran out after \d+ steps before the training loss"):
        make(tol=0.0, **params).fit(X)


def test_default_budget_is_named_when_it_runs_out(monkeypatch, X):
    monkeypatch.setattr(training, "DEFAULT_MAX_STEPS", 4)
    with pytest.warns(ConvergenceWarning, match="the default budget of 4 steps"):
        model = make(tol=0.0).fit(X)
    assert model.n_steps_ == 4


def test_early_stopping_cools_down_then_ends_without_warning(X):
    # the warmup is 5% of 50 = 2.5 steps: windows 1 and 2 are not judged. tol=1: no window improves on the first
    # judged one (step 3), so the plateau is seen at step 4; the cooldown is ceil(4 * 0.2 / 0.8) = 1 step: the fit
    # ends after 5 steps, inside its budget
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = make(tol=1.0, n_iter_no_change=1, log_every=1, max_steps=50).fit(X)
    assert model.n_steps_ == 5


def test_plateau_without_early_stopping_runs_the_budget_without_warning(X):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = make(tol=1.0, n_iter_no_change=1, log_every=1, max_steps=9, early_stopping=False).fit(X)
    assert model.n_steps_ == 9


def test_cooldown_decays_linearly_to_zero_from_the_plateau():
    schedule = Schedule(None, warmup_fraction=0.0, decay_fraction=0.2, scheduled=True)
    assert schedule.factor(7) == 1.0
    schedule.cool_down(8)  # decay_fraction of the whole run: 2 of 10 steps
    assert [schedule.factor(s) for s in (8, 9)] == [1.0, 0.5]
    assert not schedule.finished(9) and schedule.finished(10)


def test_cooldown_never_outlasts_the_horizon_and_only_lowers_the_rate():
    schedule = Schedule(20, warmup_fraction=0.0, decay_fraction=0.5, scheduled=True)
    planned = [schedule.factor(s) for s in range(20)]
    schedule.cool_down(15)
    assert schedule.end == 20
    assert all(schedule.factor(s) <= planned[s] for s in range(15, 20))


def test_early_stopping_ends_small_data_before_the_default_budget(X):
    model = make(n_components=16)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(X)
    assert model.n_steps_ < training.DEFAULT_MAX_STEPS


def test_no_plateau_is_judged_during_the_learning_rate_warmup():
    """While the rate still rises the loss can sit still; early stopping used to end BatchTopK there (28 steps, EV -0.13)."""
    X = np.random.default_rng(0).normal(size=(500, 16))
    model = BatchTopKSAE(n_components=64, k=4, random_state=0).fit(X)
    assert model.n_steps_ > model.warmup_fraction * 20_000  # the default horizon: at most 20,000 steps
    assert model.score(X) > 0.7
