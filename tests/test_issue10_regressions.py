"""Regressions found by an adversarial pass over the fixes of issue 10 (X = 200x16 N(0,1)).

Each test states the law that should hold; the ones that do not hold yet are
``xfail(strict=True)`` so that fixing the bug turns them into a failure to notice.
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skdict import (
    LISTA,
    MPSAE,
    FISTADictionaryLearning,
    SoftplusAdamDictionaryLearning,
    TopKSAE,
    TrainingDivergedError,
    TripletFeatureLearner,
)
from skdict.datasets import make_triplet_feedback


@pytest.fixture
def X():
    return np.random.default_rng(0).standard_normal((200, 16))


def _fit_quietly(model, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(*args)


def test_dictionary_init_at_huge_scale_says_why_without_runtime_warning(X):
    """The initial dictionary's zero-row test squared X (overflow RuntimeWarning before the clear error)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ValueError, match="rescale X"):
            _fit_quietly(LISTA(8, n_layers=2, max_iter=2, random_state=0), X * 1e200)


@pytest.mark.parametrize("scale, dtype", [(1e20, np.float32), (1e200, np.float64)], ids=["f32-1e20", "f64-1e200"])
def test_fista_dictionary_learning_at_huge_scale_trains_like_unit_data(X, scale, dtype):
    """Was refused ('rescale X') once the objective overflowed; solved on 2^-e X it learns the unit-scale atoms."""
    unit = _fit_quietly(FISTADictionaryLearning(8, alpha=0.1, max_iter=2, random_state=0), X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        huge = _fit_quietly(FISTADictionaryLearning(8, alpha=0.1 * scale, max_iter=2, random_state=0), (X * scale).astype(dtype))
    np.testing.assert_allclose(huge.components_, unit.components_, atol=1e-4 if dtype == np.float32 else 1e-9)


def test_sae_at_1e200_fails_clearly_without_runtime_warning(X):
    """TopKSAE.fit(X * 1e200): ops.geometric_median overflows (RuntimeWarning), then 'the loss became inf'."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            _fit_quietly(TopKSAE(32, k=4, max_iter=2, random_state=0), X * 1e200)
        except (ValueError, TrainingDivergedError) as error:
            assert "scale X" in str(error) or "rescale X" in str(error)


@pytest.mark.parametrize("scale", [2.0**-33, 2.0**-330, 2.0**330])
def test_sae_trains_at_any_representable_scale_like_unit_data(X, scale):
    """Data at 1e-10 stopped early having learned nothing (raw gradients below Adam's epsilon), no warning:
    the engine now steps on standardised gradients, so the fit is the unit-scale fit, rescaled (powers of two:
    exact scaling, so rounding does not make the two fits drift apart)."""
    unit = _fit_quietly(TopKSAE(32, k=4, max_iter=10, random_state=0), X)
    model = _fit_quietly(TopKSAE(32, k=4, max_iter=10, random_state=0), X * scale)
    assert model.score(X * scale) == pytest.approx(unit.score(X), abs=1e-6)
    np.testing.assert_allclose(model.components_, unit.components_, atol=1e-6)


@pytest.mark.parametrize("scale", [1e-200, 1e200])
def test_sae_refuses_data_whose_loss_cannot_be_represented(X, scale):
    """At 1e-200 the loss underflowed to 0, history EV was NaN and the fit returned EV -2e38 with no warning."""
    model = TopKSAE(32, k=4, max_iter=10, random_state=0)
    with pytest.raises(ValueError, match="cannot be represented in float64 at that scale. Rescale X"):
        model.fit(X * scale)
    assert not hasattr(model, "components_")


def test_fista_dictionary_learning_is_scale_equivariant_at_1e_minus_200(X):
    """Lasso law: (X, alpha) -> (sX, s alpha) scales the codes by s and keeps the atoms. At s=1e-200 the fit
    stops after 2 alternations with EV 0.54 and L0 29 (0.994 and 12.6 at s=1), without a warning."""
    scale = 1e-200
    unit = _fit_quietly(FISTADictionaryLearning(32, alpha=0.1, max_iter=3, random_state=0), X)
    tiny = _fit_quietly(FISTADictionaryLearning(32, alpha=0.1 * scale, max_iter=3, random_state=0), X * scale)
    np.testing.assert_allclose(tiny.components_, unit.components_, atol=1e-6)


@pytest.mark.parametrize(
    "name, value", [("learning_rate", np.nan), ("learning_rate", -1.0), ("alpha", np.nan), ("transform_max_iter", 0)]
)
def test_softplus_adam_validates_parameters_read_by_transform(X, name, value):
    """transform runs Adam with learning_rate/alpha/transform_max_iter set after fit: NaN codes, gradient
    ascent or an UnboundLocalError instead of an error naming the parameter."""
    model = _fit_quietly(SoftplusAdamDictionaryLearning(8, max_iter=20, transform_max_iter=20, random_state=0), X)
    model.set_params(**{name: value})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.raises(ValueError, match=name):
            model.transform(X)


def test_softplus_adam_after_divergence_scores_finite(X):
    """After TrainingDivergedError (learning_rate=1e300) transform reruns Adam at 1e300: codes 1e300, score -inf."""
    model = SoftplusAdamDictionaryLearning(8, max_iter=20, transform_max_iter=20, learning_rate=1e300, random_state=0)
    with pytest.raises(TrainingDivergedError):
        model.fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert np.isfinite(model.score(X))


def test_softplus_adam_large_scale_data_trains_or_warns(X):
    """X * 1e10: the fit stops after 2 steps with all-zero codes (EV -0.006, LISTA gets 0.994), no warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = SoftplusAdamDictionaryLearning(32, random_state=0).fit(X * 1e10)
        score = model.score(X * 1e10)
    assert score > 0.5 or any(issubclass(w.category, ConvergenceWarning) for w in caught)


@pytest.mark.parametrize("name, value", [("k", 0), ("k", "a"), ("positive", "yes")])
def test_mpsae_validates_inference_parameters(X, name, value):
    """fit rejects k=0 and positive='yes'; after fit, transform gives all-zero codes for k=0, a TypeError for
    k='a' and accepts positive='yes'."""
    model = _fit_quietly(MPSAE(32, k=4, max_iter=2, random_state=0), X)
    model.set_params(**{name: value})
    with pytest.raises(ValueError, match=name):
        model.transform(X)


def _triplets():
    D = np.random.default_rng(0).standard_normal((2, 6))
    return make_triplet_feedback(D.T @ D, 300, kind="comparison", random_state=0)


def test_triplet_learner_divergence_raises_training_diverged(X):
    """learning_rate=1e300, max_grad_norm=None: overflow RuntimeWarnings, then a ValueError saying the triplets
    carry no information."""
    T, y = _triplets()
    model = TripletFeatureLearner(solver="lowrank", rank=2, learning_rate=1e300, max_grad_norm=None, max_iter=30, random_state=1)
    with pytest.raises(TrainingDivergedError):
        model.fit(T, y)


@pytest.mark.parametrize("scale", [1e200, 1e-300])
def test_triplet_learner_extreme_scale_not_called_identical(scale):
    """T * 1e200 and T * 1e-300 are refused with 'Every triplet has x = y = z', which is false."""
    T, y = _triplets()
    model = TripletFeatureLearner(solver="lowrank", rank=2, max_iter=30, random_state=1)
    try:
        model.fit(T * scale, y)
    except ValueError as error:
        assert "x = y = z" not in str(error)
