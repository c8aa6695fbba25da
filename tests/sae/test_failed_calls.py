"""A call that raises leaves a fitted model as it was; every array argument is validated."""

import numpy as np
import pytest

from skdict import AnchoredSAE, BatchTopKSAE, GatedSAE, JumpReLUSAE, MPSAE, ReLUSAE, TopKSAE, TrainingDivergedError

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # short fits on purpose

CLASSES = [TopKSAE, BatchTopKSAE, ReLUSAE, JumpReLUSAE, GatedSAE, MPSAE]
K_CLASSES = [TopKSAE, BatchTopKSAE, MPSAE]


def make(cls, **params):
    extra = {"k": 4} if cls in K_CLASSES else {}
    return cls(**{"n_components": 32, "max_iter": 2, "random_state": 0, **extra, **params})


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).normal(size=(200, 16))


def snapshot(est):
    """Every attribute (arrays copied), to compare a model before and after a failed call."""
    return {name: value.copy() if isinstance(value, np.ndarray) else value for name, value in vars(est).items()}


def assert_unchanged(est, before, X, codes):
    assert vars(est).keys() == before.keys()
    for name, value in before.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(getattr(est, name), value, err_msg=name)
        elif isinstance(value, (bool, int, float, str, type(None))):
            assert getattr(est, name) == value, name
    np.testing.assert_array_equal(est.transform(X), codes)


@pytest.mark.parametrize("cls", K_CLASSES)
@pytest.mark.parametrize("transcoder", [True, False], ids=["transcoder", "sae"])
def test_a_refit_with_a_bad_k_leaves_the_fitted_model_as_it_was(X, cls, transcoder):
    # the case: the k error came after is_transcoder_/n_targets_ were overwritten,
    # so set_params(k=4).transform(X) then failed with a NoneType error
    est = make(cls).fit(X)
    before, codes = snapshot(est), est.transform(X)
    with pytest.raises(ValueError, match="k=100|transcoder"):
        est.set_params(k=100).fit(X, X[:, :12] if transcoder else None)
    est.set_params(k=4)
    assert_unchanged(est, before, X, codes)


@pytest.mark.parametrize("cls", CLASSES)
def test_any_failure_inside_fit_or_partial_fit_restores_the_model(X, cls, monkeypatch):
    # a failure found late (after initialisation and training) in a full refit
    est = make(cls).fit(X)
    before, codes = snapshot(est), est.transform(X)

    def broken(self, data):
        raise RuntimeError("late failure")

    monkeypatch.setattr(cls, "_after_fit", broken)
    with pytest.raises(RuntimeError, match="late failure"):
        est.fit(X[:150] * 3)
    assert_unchanged(est, before, X, codes)
    monkeypatch.undo()
    with pytest.raises(ValueError):
        est.partial_fit(X[:, :10])  # wrong width
    with pytest.raises(ValueError, match="3-D|2-D"):
        est.fit(X, np.zeros((200, 3, 4)))  # a 3-D Y is never read as no Y
    assert_unchanged(est, before, X, codes)


def test_a_failed_first_fit_leaves_the_model_unfitted(X):
    est = make(TopKSAE, k=100)
    with pytest.raises(ValueError, match="k=100"):
        est.fit(X)
    assert not [name for name in vars(est) if name.endswith("_") and not name.startswith("_")]


@pytest.mark.parametrize("cls", [TopKSAE, ReLUSAE, JumpReLUSAE])
def test_a_3d_target_raises_instead_of_training_an_sae(X, cls):
    with pytest.raises(ValueError, match=r"Y must be a 2-D.*got 3-D"):
        make(cls).fit(X, X[:, :12].reshape(200, 3, 4))


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize(
    "bad, message",
    [(np.nan, "NaN or infinity"), (np.inf, "NaN or infinity"), (1j, "complex")],
    ids=["nan", "inf", "complex"],
)
def test_inverse_transform_rejects_non_finite_and_complex_codes(X, cls, bad, message):
    est = make(cls).fit(X)
    codes = est.transform(X[:5])
    codes = codes.astype(complex) if isinstance(bad, complex) else codes
    codes[0, 0] = bad if not isinstance(bad, complex) else codes[0, 0] + bad
    with pytest.raises(ValueError, match=rf"X \(the codes\).*{message}"):
        est.inverse_transform(codes)


def test_inverse_transform_of_valid_codes_is_unchanged(X):
    est = make(TopKSAE).fit(X)
    codes = est.transform(X)
    np.testing.assert_allclose(est.inverse_transform(codes), codes @ est.components_ + est.decoder_bias_)
    np.testing.assert_allclose(est.inverse_transform(codes.tolist()), est.inverse_transform(codes))


def test_anchored_sae_keeps_the_diverged_model(X):
    model = AnchoredSAE(make(TopKSAE, learning_rate=1e3, max_iter=30), anchors=X[:2])
    with pytest.raises(TrainingDivergedError):
        model.fit(X)
    assert model.estimator_._regularizer is None
    assert model.n_anchors_ == 2
    assert np.all(np.isfinite(model.transform(X)))
    assert model.score(X) > 0


def test_anchored_sae_that_fails_validation_stays_as_it_was(X):
    model = AnchoredSAE(make(TopKSAE), anchors=X[:2]).fit(X)
    inner, codes = model.estimator_, model.transform(X)
    with pytest.raises(ValueError, match="anchors"):
        model.fit(X[:, :10])  # anchors of 16 features for 10-feature data
    with pytest.raises(ValueError, match="k=100"):
        model.set_params(estimator=make(TopKSAE, k=100)).fit(X)
    assert model.estimator_ is inner and model.n_features_in_ == 16
    np.testing.assert_array_equal(model.transform(X), codes)
