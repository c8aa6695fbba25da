"""A fit that blows up raises TrainingDivergedError and keeps a sane, usable model; data scales never overflow."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skdict import BatchTopKSAE, GatedSAE, JumpReLUSAE, MPSAE, ReLUSAE, TopKSAE, TrainingDivergedError
from skdict.sae import _training
from skdict.sae._step import root_mean_square, sum_of_squares
from skdict.sae._data import InMemoryData

pytestmark = pytest.mark.filterwarnings("ignore:.*ran out after:sklearn.exceptions.ConvergenceWarning")

CLASSES = [TopKSAE, BatchTopKSAE, ReLUSAE, JumpReLUSAE, GatedSAE, MPSAE]


def make(cls, **params):
    extra = {"k": 4} if cls in (TopKSAE, BatchTopKSAE, MPSAE) else {}
    # a budget of 30 epochs (one step each): its warmup is 2 steps, so a too-high rate shows at once
    return cls(n_components=32, random_state=0, **{"max_iter": 30, **extra, **params})


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).normal(size=(200, 16))


def cases():
    for cls in CLASSES:
        for transcoder in (False, True):
            if transcoder and cls is MPSAE:  # tied: no transcoder
                continue
            for learning_rate, max_grad_norm in ((1e3, 1.0), (1e300, None)):
                yield pytest.param(cls, transcoder, learning_rate, max_grad_norm,
                                   id=f"{cls.__name__}-{'transcoder' if transcoder else 'sae'}-lr{learning_rate:g}")


@pytest.mark.parametrize("cls, transcoder, learning_rate, max_grad_norm", list(cases()))
def test_divergence_raises_and_keeps_a_sane_model(X, cls, transcoder, learning_rate, max_grad_norm):
    # lr=1e3 used to return normally with loss 6.9e14 (score -1.4e14); lr=1e300 kept parameters near 1e300
    Y = X[:, :12] if transcoder else None
    est = make(cls, learning_rate=learning_rate, max_grad_norm=max_grad_norm)
    with pytest.raises(TrainingDivergedError, match="Lower learning_rate"):
        est.fit(X, Y)
    for name, value in est._params().items():
        assert np.all(np.isfinite(value)), name
    assert np.all(np.isfinite(est.transform(X)))
    assert np.all(np.isfinite(est.predict(X)))
    start = make(cls)
    start._validate_params()
    start._initialize(start._training_data(X, Y, reset=True))
    # the kept parameters' loss was sane, not merely finite: no worse than the start or than -1
    # (a random transcoder starts at -1.1 here)
    assert est.score(X, Y) > min(-1.0, start.score(X, Y) - 1e-9)
    for moments in (est._adam.m, est._adam.v):  # a later partial_fit resumes from sane statistics
        assert all(np.all(np.isfinite(m)) and np.abs(m).max() < 1e6 for m in moments.values())


def test_the_kept_state_is_one_checkpoint_parameters_moments_and_step_count(X):
    # 200 rows, one step per epoch: the second step's loss is insane, so the state before it
    # was never confirmed and the start of the fit is restored, Adam included.
    est = make(TopKSAE, learning_rate=1e3)
    initial = make(TopKSAE)
    initial._initialize(InMemoryData(X, None))
    with pytest.raises(TrainingDivergedError, match="epoch 2, step 2"):
        est.fit(X)
    np.testing.assert_array_equal(est.components_, initial.components_)
    np.testing.assert_array_equal(est.encoder_, initial.encoder_)
    assert est._adam.t == 0
    assert all(not m.any() for m in est._adam.m.values())
    assert all(not v.any() for v in est._adam.v.values())
    assert est.n_iter_ == 1 and len(est.history_["loss"]) == 1
    # the model trains on from there at a sane rate
    est.set_params(learning_rate=1e-3).partial_fit(X)
    assert est.score(X) > initial.score(X)


def test_checkpoints_every_epoch_and_every_checkpoint_steps(X, monkeypatch):
    calls = []
    original = _training._TrainingGuard.checkpoint
    monkeypatch.setattr(_training, "CHECKPOINT_STEPS", 4)
    monkeypatch.setattr(_training._TrainingGuard, "checkpoint", lambda self: calls.append(1) or original(self))
    # 10 steps per epoch: checkpoints before steps 1, 5, 9 of each epoch
    make(TopKSAE, batch_size=20, max_iter=2).fit(X)
    assert len(calls) == 6


@pytest.mark.filterwarnings("ignore:.*worse than its mean:sklearn.exceptions.ConvergenceWarning")
def test_reference_is_the_larger_of_the_trivial_and_the_first_loss():
    # a wide ReLU SAE starts far worse than b_dec alone (every latent fires): that is a start, not a divergence
    X = np.random.default_rng(1).normal(size=(300, 8))
    est = ReLUSAE(n_components=1024, alpha=0.0, max_iter=3, random_state=0)
    est.fit(X)
    assert est.history_["loss"][0] > 100 * 0.5 * np.sum((X - X.mean(0)) ** 2) / len(X)
    assert est.history_["loss"][-1] < est.history_["loss"][0]


def test_real_mlp_layer_at_a_huge_learning_rate_diverges(mlp_layer):
    # the case: learning_rate=100 on a real MLP layer returned with EV -1.5e12
    est = TopKSAE(n_components=512, k=16, learning_rate=100, random_state=0)
    with pytest.raises(TrainingDivergedError, match=r"more than 100x the loss of the trivial model"):
        est.fit(mlp_layer)
    assert est.score(mlp_layer) > 0


@pytest.mark.parametrize("dtype, scale", [(np.float32, 1e20), (np.float32, 1e-30), (np.float64, 1e140)])  # 1e150: refused (loss beyond float64)
def test_jumprelu_data_scale_does_not_overflow(X, dtype, scale):
    # (X * 1e20) in float32 overflowed the scale estimate: threshold_ = inf, every code zero
    data = (X * scale).astype(dtype)
    est = JumpReLUSAE(n_components=32, random_state=0)
    try:
        est.fit(data)
    except TrainingDivergedError:
        pass  # float32 gradients can overflow at 1e20; the kept model must still be sane
    assert np.all(np.isfinite(est.threshold_)) and np.isfinite(est.bandwidth_)
    assert est._data_scale == pytest.approx(scale * root_mean_square(X - X.mean(0)), rel=0.2)
    codes = est.transform(data)
    assert np.all(np.isfinite(codes)) and np.count_nonzero(codes) > 0


@settings(max_examples=30, deadline=None)
@given(exponent=st.integers(-35, 35), dtype=st.sampled_from([np.float32, np.float64]))
def test_root_mean_square_and_sum_of_squares_scale_exactly(exponent, dtype):
    A = np.random.default_rng(0).normal(size=(50, 7))
    scaled = (A * 10.0**exponent).astype(dtype)
    expected = float(np.sqrt(np.mean(A.astype(dtype).astype(np.float64) ** 2))) * 10.0**exponent
    assert root_mean_square(scaled) == pytest.approx(expected, rel=1e-5)
    assert sum_of_squares(scaled) == pytest.approx(np.sum(scaled.astype(np.float64) ** 2), rel=1e-12)


def test_root_mean_square_beyond_the_range_of_squares():
    A = np.array([[1e300, -1e300], [3e299, 0.0]])
    assert root_mean_square(A) == pytest.approx(math.sqrt((1 + 1 + 0.09) / 4) * 1e300, rel=1e-12)
    assert math.isnan(root_mean_square(np.array([1.0, np.nan])))
