"""MPSAE: gradient through the unrolled pursuit, inference-time k, the digits headline."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from skdict import MPSAE, TopKSAE


def reference_loss(components, bias, X, k, positive):
    """Textbook matching pursuit per sample (explicit residual), then the mean half squared error."""
    D = components / np.linalg.norm(components, axis=1, keepdims=True)
    total = 0.0
    for x in X:
        r = x - bias
        for _ in range(k):
            c = D @ r
            j = int(np.argmax(c if positive else np.abs(c)))
            value = max(c[j], 0.0) if positive else c[j]
            r = r - value * D[j]
        total += 0.5 * r @ r
    return total / X.shape[0]


@pytest.mark.parametrize("positive", [False, True])
def test_gradients_match_finite_differences_of_a_textbook_pursuit(positive):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 5)) + 0.5
    est = MPSAE(n_components=7, k=3, positive=positive, random_state=0)
    est._initialize(X, None)
    params = est._params()
    params["decoder_bias_"] += 0.3 * rng.normal(size=5)
    result = est._loss_and_grads(params, X, X, None)
    assert result.loss == pytest.approx(reference_loss(params["components_"], params["decoder_bias_"], X, 3, positive))
    eps = 1e-6
    for name in ("components_", "decoder_bias_"):
        value = params[name]
        numeric = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            saved = value[index]
            value[index] = saved + eps
            up = reference_loss(params["components_"], params["decoder_bias_"], X, 3, positive)
            value[index] = saved - eps
            down = reference_loss(params["components_"], params["decoder_bias_"], X, 3, positive)
            value[index] = saved
            numeric[index] = (up - down) / (2 * eps)
        np.testing.assert_allclose(result.grads[name], numeric, rtol=1e-5, atol=1e-8, err_msg=name)


@pytest.fixture(scope="module")
def digits():
    return load_digits().data / 16.0


def test_error_never_grows_with_inference_k(digits):
    est = MPSAE(n_components=128, k=8, max_iter=5, random_state=0).fit(digits)
    errors = []
    for k in (1, 2, 4, 8, 16, 32):
        est.set_params(k=k)
        errors.append(np.sum((digits - est.predict(digits)) ** 2, axis=1))
        assert (np.count_nonzero(est.transform(digits), axis=1) <= k).all()
    for fewer, more in zip(errors, errors[1:]):
        assert (more <= fewer + 1e-9).all()
    assert est.k_ == 8


def test_beats_topk_on_digits_at_equal_k_and_width(digits):
    # the MP-SAE paper's headline, at a size that runs in seconds
    for k in (4, 8):
        mp = MPSAE(n_components=256, k=k, max_iter=15, random_state=0).fit(digits)
        topk = TopKSAE(n_components=256, k=k, max_iter=15, random_state=0).fit(digits)
        assert mp.score(digits) >= topk.score(digits)


def test_positive_codes_are_non_negative(digits):
    est = MPSAE(n_components=64, k=6, positive=True, max_iter=3, random_state=0).fit(digits)
    codes = est.transform(digits)
    assert (codes >= 0).all() and (codes > 0).any()


def test_tied_dictionary_has_no_encoder_and_no_transcoder(digits):
    est = MPSAE(n_components=32, k=2, max_iter=1, random_state=0).fit(digits)
    assert not hasattr(est, "encoder_")
    with pytest.raises(ValueError, match="tied dictionary.*cannot be a transcoder"):
        MPSAE(n_components=32, k=2).fit(digits, digits[:, :10])


def test_inference_k_larger_than_n_components_is_rejected(digits):
    est = MPSAE(n_components=16, k=2, max_iter=1, random_state=0).fit(digits)
    est.set_params(k=17)
    with pytest.raises(ValueError, match="k=17 is larger than n_components=16"):
        est.transform(digits)
