"""build_fitted: weights in, a fitted estimator out that computes what the trained one computes.

And the training-state completion: a model given weights from outside (built, or set by hand) trains on.
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skdict import BatchTopKSAE, JumpReLUSAE, MPSAE, ReLUSAE, TopKSAE
from skdict.io._build import build_fitted

RNG = np.random.default_rng(0)
X = (RNG.normal(size=(300, 8)) @ RNG.normal(size=(8, 8))).astype(np.float32)
Y = (X @ RNG.normal(size=(8, 5))).astype(np.float32)

#: One fitted model of every SAE class, a transcoder and a crosscoder: (name, estimator, target).
CASES = [
    ("topk", TopKSAE(24, k=3), None),
    ("topk-transcoder", TopKSAE(24, k=3), Y),
    ("batchtopk", BatchTopKSAE(24, k=3), None),
    ("jumprelu", JumpReLUSAE(24, alpha=0.01), None),
    ("relu", ReLUSAE(24, alpha=0.01), None),
    ("relu-crosscoder", ReLUSAE(24, alpha=0.01, layer_sizes=(4, 4)), None),
    ("mp", MPSAE(24, k=3), None),
]


def _fitted(estimator, target, max_steps=15):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.set_params(max_steps=max_steps, batch_size=64, random_state=0).fit(X, target)


def _weights(model):
    """The arrays a file would hold: the declared parameters (and a transcoder's input centre)."""
    names = model._parameter_names + model._extra_parameters + (("input_center_",) if model.is_transcoder_ else ())
    return {name: np.array(getattr(model, name)) for name in names}


def _inference_scalars(model):
    """Scalars estimated at fit, not derivable from the weights (BatchTopK's inference threshold)."""
    return {"threshold_": model.threshold_} if isinstance(model, BatchTopKSAE) else {}


@pytest.fixture(scope="module", params=CASES, ids=[case[0] for case in CASES])
def trained(request):
    _, estimator, target = request.param
    return _fitted(estimator, target), target


def test_built_model_computes_what_the_trained_one_computes(trained):
    model, target = trained
    built = build_fitted(type(model), model.get_params(), _weights(model), _inference_scalars(model))
    codes = model.transform(X)
    np.testing.assert_array_equal(built.transform(X), codes)
    np.testing.assert_array_equal(built.encode(X), codes)
    np.testing.assert_array_equal(built.inverse_transform(codes), model.inverse_transform(codes))
    np.testing.assert_array_equal(built.decode(codes), model.decode(codes))
    np.testing.assert_array_equal(built.predict(X), model.predict(X))
    assert built.score(X, target) == model.score(X, target)
    for name in ("n_features_in_", "n_targets_", "is_transcoder_", "k_", "layer_sizes_"):
        assert getattr(built, name, None) == getattr(model, name, None), name
    assert built.get_params() == model.get_params()


def test_encode_decode_are_transform_and_inverse_transform(trained):
    model, _ = trained
    codes = model.transform(X)
    np.testing.assert_array_equal(model.encode(X), codes)
    np.testing.assert_array_equal(model.decode(codes), model.inverse_transform(codes))


def test_built_model_trains_on_with_partial_fit_and_warm_start(trained):
    """Old code: AttributeError 'n_iter_' (no training state). Now a fresh Adam; the loss goes down."""
    model, target = trained
    for continue_training in ("partial_fit", "warm_start"):
        built = build_fitted(type(model), model.get_params(), _weights(model), _inference_scalars(model))
        if continue_training == "partial_fit":
            for _ in range(15):
                built.partial_fit(X, target)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                built.set_params(warm_start=True, max_steps=30, learning_rate=1e-2).fit(X, target)
        losses = built.history_["loss"]
        assert built.n_steps_ > 0 and len(losses) >= 2
        assert losses[-1] < losses[0], (continue_training, losses)
        assert built._adam.t == built.n_steps_  # a fresh Adam, counted from the first step after building


def test_weights_set_by_hand_train_on():
    """Parameters assigned as attributes of an unfitted SAE: partial_fit derives the rest and trains."""
    model = _fitted(TopKSAE(24, k=3), None)
    for continue_training in ("partial_fit", "warm_start"):
        by_hand = TopKSAE(n_components=24, k=3, batch_size=64, learning_rate=1e-2, random_state=0)
        for name, value in _weights(model).items():
            setattr(by_hand, name, value)
        if continue_training == "partial_fit":
            for _ in range(10):
                by_hand.partial_fit(X)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                by_hand.set_params(warm_start=True, max_steps=20).fit(X)
        assert by_hand.n_features_in_ == 8 and by_hand.k_ == 3 and not by_hand.is_transcoder_
        assert by_hand.history_["loss"][-1] < by_hand.history_["loss"][0]


def test_completion_estimates_the_data_scales_as_initialisation_does():
    """Data scales of a completed model: the per-coordinate RMS of X - b_dec (all 300 rows are the sample)."""
    model = _fitted(TopKSAE(24, k=3), None, max_steps=1)
    built = build_fitted(TopKSAE, model.get_params(), _weights(model))
    built._complete_training_state(model._training_data(X, None, reset=False))
    expected = np.sqrt(np.mean((X.astype(np.float64) - built.decoder_bias_) ** 2))
    assert built._data_scale == pytest.approx(expected, rel=1e-5)
    assert built._lr_scales == {"encoder_bias_": built._data_scale, "decoder_bias_": built._data_scale}
    assert built.n_iter_ == built.n_steps_ == built.n_samples_seen_ == 0
    assert not built._samples_since_fired.any() and built._adam.t == 0


def test_jumprelu_bandwidth_is_derived_when_training_starts():
    model = _fitted(JumpReLUSAE(24, alpha=0.01, bandwidth=0.05), None)
    built = build_fitted(JumpReLUSAE, model.get_params(), _weights(model))
    built.partial_fit(X)
    assert built.bandwidth_ == 0.05


@pytest.mark.parametrize(
    ("name", "shape"),
    [("encoder_", (23, 8)), ("encoder_bias_", (23,)), ("decoder_bias_", (8, 1)), ("threshold_", (24, 2))],
)
def test_ill_shaped_tensor_is_named_with_both_shapes(name, shape):
    model = _fitted(JumpReLUSAE(24, alpha=0.01), None, max_steps=1)
    weights = _weights(model)
    weights[name] = np.zeros(shape, dtype=np.float32)
    with pytest.raises(ValueError, match=rf"{name} is of shape \({shape[0]}, ?{shape[1] if len(shape) > 1 else ''}\).*expected shape"):
        build_fitted(JumpReLUSAE, model.get_params(), weights)


def test_missing_tensor_and_wrong_width_are_named():
    model = _fitted(TopKSAE(24, k=3), None, max_steps=1)
    weights = {**_weights(model), "encoder_": np.zeros((24, 7), dtype=np.float32)}
    with pytest.raises(ValueError, match=r"components_ is of shape \(24, 8\), expected shape \(24, 7\)"):
        build_fitted(TopKSAE, model.get_params(), weights, {"is_transcoder_": False})  # an SAE reads what it writes
    weights = _weights(model)
    del weights["decoder_bias_"]
    with pytest.raises(ValueError, match=r"decoder_bias_ is missing, expected shape \(8,\)"):
        build_fitted(TopKSAE, model.get_params(), weights)
    with pytest.raises(ValueError, match=r"n_components=30 but components_ has shape \(24, 8\)"):
        build_fitted(TopKSAE, {**model.get_params(), "n_components": 30}, _weights(model))
    with pytest.raises(ValueError, match="k=40 is larger than n_components=24"):
        build_fitted(TopKSAE, {**model.get_params(), "k": 40}, _weights(model))
    transcoder = _fitted(TopKSAE(24, k=3), Y, max_steps=1)
    weights = _weights(transcoder)
    del weights["input_center_"]
    with pytest.raises(ValueError, match=r"input_center_ is missing, expected shape \(8,\)"):
        build_fitted(TopKSAE, transcoder.get_params(), weights, {"is_transcoder_": True})


def test_one_dtype_float32_kept_others_become_float64():
    model = _fitted(TopKSAE(24, k=3), None, max_steps=1)
    built = build_fitted(TopKSAE, model.get_params(), _weights(model))
    assert {getattr(built, name).dtype for name in _weights(model)} == {np.dtype(np.float32)}
    half = {name: value.astype(np.float16) for name, value in _weights(model).items()}
    built = build_fitted(TopKSAE, model.get_params(), half)
    assert {getattr(built, name).dtype for name in half} == {np.dtype(np.float64)}
    with pytest.raises(ValueError, match="device must be None, 'cpu' or 'cuda'"):
        build_fitted(TopKSAE, model.get_params(), _weights(model), device="gpu")


def test_n_components_none_takes_the_width_of_the_weights():
    """An imported SAE of 24 latents on 8 features is not refused by the 8 x n_features default."""
    model = _fitted(TopKSAE(24, k=3), None, max_steps=1)
    built = build_fitted(TopKSAE, {**model.get_params(), "n_components": None}, _weights(model))
    assert built.n_components == 24
    built.partial_fit(X)


@pytest.mark.parametrize("damage, message", [
    (lambda m: setattr(m, "encoder_", m.encoder_.astype(np.int32)), "encoder_ has dtype int32"),
    (lambda m: setattr(m, "encoder_", m.encoder_.astype(np.float16)), "encoder_ has dtype float16"),
    (lambda m: m.components_.__setitem__((0, 0), np.nan), "components_ holds 1 NaN"),
])
def test_weights_set_by_hand_are_checked_before_training_on(damage, message):
    """Old: an int32 encoder_ broke the first Adam step (UFuncTypeError), a float16 one trained on as float16, and a
    NaN weight was reported as a divergence ('lower learning_rate') although it was bad from the start."""
    X = np.random.default_rng(0).normal(size=(200, 6))
    fitted = TopKSAE(n_components=12, k=2, max_steps=5, random_state=0).fit(X)
    model = TopKSAE(n_components=12, k=2, random_state=0)
    for name in ("encoder_", "encoder_bias_", "components_", "decoder_bias_"):
        setattr(model, name, getattr(fitted, name).copy())
    damage(model)
    with pytest.raises(ValueError, match=message):
        model.partial_fit(X)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_batchtopk_built_without_its_threshold_says_so():
    """Old: AttributeError 'BatchTopKSAE' object has no attribute 'threshold_' from deep inside transform."""
    from sklearn.exceptions import NotFittedError

    X = np.random.default_rng(0).normal(size=(200, 6))
    fitted = BatchTopKSAE(n_components=12, k=2, max_steps=5, random_state=0).fit(X)
    arrays = {name: getattr(fitted, name) for name in ("encoder_", "encoder_bias_", "components_", "decoder_bias_")}
    model = build_fitted(BatchTopKSAE, fitted.get_params(), arrays)
    with pytest.raises(NotFittedError, match="no inference threshold_.*fitted=\\{'threshold_'"):
        model.transform(X)
    model.partial_fit(X)  # estimates it at the current parameters
    assert np.isfinite(model.threshold_) and model.transform(X).shape == (200, 12)
