"""target_l0: the penalty SAEs steer their sparsity coefficient to a wanted L0 (skdict.sae._l0_target)."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

import skdict.io
from skdict import GatedSAE, JumpReLUSAE, ReLUSAE
from skdict.metrics import l0
from skdict.sae._l0_target import (
    CONTROL_GAIN, ERROR_SMOOTHING, PROPORTIONAL_GAIN, SETTLED_TOLERANCE, WINDUP_BAND, L0Controller,
)
from skdict.sae._training import Plateau, Window, _plateau_after
from skdict._array import to_numpy

CLASSES = [ReLUSAE, JumpReLUSAE, GatedSAE]
#: A small fit that reaches its target in well under a second of steps: 900 rows, batch 64, 48 latents.
FAST = {"n_components": 48, "batch_size": 64, "learning_rate": 1e-2, "random_state": 0}


# ---------------------------------------------------------------- the criterion, small
@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("target", [3.0, 8.0])
def test_the_l0_of_the_fitted_codes_is_within_10_percent_of_the_target(X, cls, target):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # reached: no warning
        model = cls(**FAST, target_l0=target).fit(X)
    assert abs(l0(model.transform(X)) / target - 1) <= 0.10
    assert model.alpha_ != model.alpha  # it was steered
    assert model.history_["alpha"][-1] == model.alpha_


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("cls", CLASSES)
def test_without_a_target_alpha_is_used_as_given_and_history_keeps_the_shared_schema(X, cls):
    model = cls(**FAST, alpha=0.05, max_steps=30).fit(X)
    assert model.alpha_ == 0.05
    assert "alpha" not in model.history_
    # a warm start re-reads alpha, as it re-reads k; one that sets a target records alpha from then on
    model.set_params(alpha=0.2, warm_start=True).fit(X)
    assert model.alpha_ == 0.2 and "alpha" not in model.history_
    n_before = len(model.history_["loss"])
    model.set_params(target_l0=4).fit(X)
    alphas = model.history_["alpha"]
    assert len(alphas) == len(model.history_["loss"]) and np.isnan(alphas[:n_before]).all()
    assert alphas[-1] == model.alpha_ != 0.2


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_the_loss_uses_the_steered_alpha_with_a_target_and_alpha_without(X):
    """The penalty's weight is alpha_ with target_l0 (a hand-set alpha_ of 0 drops it), alpha without."""
    Xd = X.astype(np.float64)
    model = ReLUSAE(**FAST, target_l0=4, max_steps=5).fit(Xd)

    def penalty():
        result = model._loss_and_grads(model._params(), Xd, Xd, model._dead_mask())
        return result.loss - 0.5 * result.squared_error / Xd.shape[0]

    l1 = np.abs(model.transform(Xd)).sum(axis=1).mean()
    assert penalty() == pytest.approx(model.alpha_ * l1, rel=1e-6)
    model.alpha_ = 0.0
    assert penalty() == 0.0
    model.set_params(target_l0=None, alpha=0.3)
    assert penalty() == pytest.approx(0.3 * l1, rel=1e-6)


# ---------------------------------------------------------------- the controller's law
class _Model:
    """What the controller reads of a model: the coefficient, the target, the rate, its last smoothed error."""

    def __init__(self, alpha, target, learning_rate=1e-3, last_error=0.0, unit=None):
        self.alpha, self.alpha_, self.target_l0, self.learning_rate = alpha, alpha, target, learning_rate
        self._l0_error, self._signed_coefficient, self._unit = last_error, unit is not None, unit

    def _coefficient_unit(self):
        return self._unit


@settings(max_examples=40, deadline=None)
@given(
    n_active=st.integers(0, 100_000), n_rows=st.integers(1, 512), target=st.floats(0.5, 64),
    lr_factor=st.floats(0, 1), alpha=st.floats(1e-6, 1e3), last_error=st.floats(-1, 1),
    unit=st.one_of(st.none(), st.floats(1e-3, 1e3)),
)
def test_each_step_is_the_pi_law(n_active, n_rows, target, lr_factor, alpha, last_error, unit):
    """Delta = (kappa eta e [unless b < |e_bar| shrinks] + k_p (e_bar - e_bar_prev)) f, e the clipped relative
    L0 error, e_bar its running mean; log alpha moves by Delta (alpha stays positive), a signed one by unit * Delta."""
    model = _Model(alpha, target, last_error=last_error, unit=unit)
    L0Controller(model).step(n_active, n_rows, lr_factor)
    error = max(-1.0, min(1.0, n_active / (n_rows * target) - 1))
    smoothed = ERROR_SMOOTHING * last_error + (1 - ERROR_SMOOTHING) * error
    integral = 0.0 if WINDUP_BAND < abs(smoothed) < abs(last_error) else CONTROL_GAIN * model.learning_rate * error
    delta = (integral + PROPORTIONAL_GAIN * (smoothed - last_error)) * lr_factor
    assert model._l0_error == pytest.approx(smoothed, abs=1e-15)
    if unit is None:
        assert model.alpha_ > 0
        assert math.log(model.alpha_ / alpha) == pytest.approx(delta, abs=1e-12)
    else:
        assert model.alpha_ - alpha == pytest.approx(unit * delta, rel=1e-9, abs=1e-12 * alpha)


@settings(max_examples=30, deadline=None)
@given(n_active=st.integers(0, 100_000), n_rows=st.integers(1, 512), target=st.floats(0.5, 64))
def test_from_rest_alpha_rises_when_too_many_latents_fire_and_falls_when_too_few(n_active, n_rows, target):
    error = max(-1.0, min(1.0, n_active / (n_rows * target) - 1))
    model = _Model(0.1, target, last_error=0.0)
    L0Controller(model).step(n_active, n_rows, 1.0)
    assert np.sign(round(math.log(model.alpha_ / 0.1), 15)) == np.sign(round(error, 15))


def test_the_signed_unit_is_the_trivial_loss_shared_over_the_target_latents(X):
    """u = s_out^2 d_out / (2 l0*), s_out the per-coordinate RMS of X about its geometric median."""
    model = JumpReLUSAE(**FAST, target_l0=4, max_steps=1).fit(X)
    rms = np.sqrt(np.mean((X.astype(np.float64) - model.decoder_bias_) ** 2))
    assert model._coefficient_unit() == pytest.approx(0.5 * rms**2 * X.shape[1] / 4, rel=0.05)  # from a sample
    assert not ReLUSAE._signed_coefficient and JumpReLUSAE._signed_coefficient


def _window(loss_error, l0, rows=100):
    window = Window()
    window.error, window.active, window.rows, window.loss = 2 * loss_error * rows, l0 * rows, rows, 123.0
    return window


def test_early_stopping_waits_for_the_l0_to_settle_then_compares_the_reconstruction_loss():
    control = L0Controller(_Model(0.1, 10.0))
    plateau = Plateau(tol=1e-4, patience=2)
    off = 1 + 2 * SETTLED_TOLERANCE
    for _ in range(10):  # a constant loss, but L0 off target: the controller is still moving
        assert not _plateau_after(plateau, _window(1.0, 10.0 * off), control)
    assert not _plateau_after(plateau, _window(1.0, 10.0), control)  # settled: the first window is the best
    assert not _plateau_after(plateau, _window(1.0, 10.0), control)
    assert _plateau_after(plateau, _window(1.0, 10.0), control)  # two windows without progress
    # the reconstruction loss decides, not the total loss (which moves with alpha_)
    plateau = Plateau(tol=1e-4, patience=1)
    assert not _plateau_after(plateau, _window(1.0, 10.0), control)
    assert not _plateau_after(plateau, _window(0.5, 10.0), control)
    # brought to the target: 4% fewer latents at 1/0.96 the loss is no progress, the same loss is
    plateau = Plateau(tol=1e-4, patience=1)
    _plateau_after(plateau, _window(0.5, 10.0), control)
    assert _plateau_after(plateau, _window(0.5 / 0.96, 9.6), control)
    plateau = Plateau(tol=1e-4, patience=1)
    _plateau_after(plateau, _window(0.5, 10.0), control)
    assert not _plateau_after(plateau, _window(0.5, 9.6), control)
    # the L0 averaged over the last steps must be on target too
    control.model._l0_error = 2 * SETTLED_TOLERANCE
    plateau = Plateau(tol=1e-4, patience=1)
    for _ in range(5):
        assert not _plateau_after(plateau, _window(1.0, 10.0), control)


# ---------------------------------------------------------------- validation and warnings
@pytest.mark.parametrize("cls", CLASSES)
def test_a_target_above_n_components_is_refused_by_name(X, cls):
    with pytest.raises(ValueError, match="target_l0=60 exceeds n_components=48"):
        cls(**FAST, target_l0=60).fit(X)


def test_a_zero_l1_weight_cannot_be_steered_but_a_zero_l0_weight_can(X):
    """The L1 weight moves in log space (alpha > 0 to start); JumpReLU's signed L0 weight moves additively."""
    with pytest.raises(ValueError, match="alpha=0 with target_l0=4"):
        ReLUSAE(**FAST, alpha=0.0, target_l0=4).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert JumpReLUSAE(**FAST, alpha=0.0, target_l0=4, max_steps=20).fit(X).alpha_ != 0


def test_a_target_not_reached_in_the_budget_warns_naming_it(X):
    with pytest.warns(ConvergenceWarning, match=r"off target_l0=2.*alpha_ reached"):
        ReLUSAE(**{**FAST, "learning_rate": 1e-3}, target_l0=2, max_steps=20).fit(X)


# ---------------------------------------------------------------- the state survives
class Killed(BaseException):
    """Stands for a kill of the process, raised by the controller after a number of steps."""


def kill_after(monkeypatch, n_steps):
    original, done = L0Controller.step, [0]

    def step(self, *args):
        original(self, *args)
        done[0] += 1
        if done[0] == n_steps:
            raise Killed

    monkeypatch.setattr(L0Controller, "step", step)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("cls", CLASSES)
def test_a_killed_fit_resumes_with_the_controller_where_it_was(monkeypatch, tmp_path, X, cls):
    """The checkpoint (before step 37) holds alpha_; the resumed fit ends where an uninterrupted one does."""
    params = {**FAST, "target_l0": 4, "max_steps": 60, "checkpoint_dir": str(tmp_path), "checkpoint_every": 4}
    uninterrupted = cls(**{**params, "checkpoint_dir": None}).fit(X)
    with monkeypatch.context() as patch:
        kill_after(patch, 38)
        with pytest.raises(Killed):
            cls(**params).fit(X)
    resumed = cls(**params).fit(X)
    assert resumed.alpha_ == uninterrupted.alpha_ != 0.1
    np.testing.assert_equal(resumed.history_, uninterrupted.history_)
    for name, value in uninterrupted._params().items():
        np.testing.assert_array_equal(to_numpy(getattr(resumed, name)), to_numpy(value), err_msg=name)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("cls", CLASSES)
def test_save_and_load_keep_the_coefficient_and_training_continues_from_it(tmp_path, X, cls):
    model = cls(**FAST, target_l0=4, max_steps=40).fit(X)
    skdict.io.save(model, tmp_path / "model")
    loaded = skdict.io.load(tmp_path / "model")
    assert loaded.alpha_ == model.alpha_ and loaded.history_["alpha"] == model.history_["alpha"]
    loaded.partial_fit(X)
    model.partial_fit(X)
    assert loaded.alpha_ == model.alpha_  # the controller went on from the saved alpha_, not from alpha
