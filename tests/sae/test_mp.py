"""MPSAE: gradient through the unrolled pursuit, inference-time k, the digits headline."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from skdict import MPSAE, TopKSAE
from skdict.metrics import l0
from skdict.sae._data import InMemoryData

#: These fits are deliberately short (a few epochs): running out of max_iter is expected here, not a
#: finding (tests/sae/test_convergence_warning.py checks the warnings themselves).
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

#: (selection, positive): the paper's rule (default), classical MP, non-negative codes.
RULES = [("signed", False), ("absolute", False), ("signed", True)]


def algorithm_1(D, b_pre, x, T):
    """MP-SAE, Algorithm 1 of Costa et al. (2025), line by line: signed argmax, no clipping."""
    r = x - b_pre
    x_hat = b_pre.copy()
    z = np.zeros(D.shape[0])
    for _ in range(T):
        j = int(np.argmax(D @ r))
        z_j = D[j] @ r
        z[j] += z_j
        x_hat = x_hat + z_j * D[j]
        r = r - z_j * D[j]
    return z, x_hat


def reference_loss(components, bias, X, k, selection, positive):
    """Textbook matching pursuit per sample (explicit residual), then the mean half squared error."""
    D = components / np.linalg.norm(components, axis=1, keepdims=True)
    total = 0.0
    for x in X:
        r = x - bias
        for _ in range(k):
            c = D @ r
            j = int(np.argmax(c if selection == "signed" else np.abs(c)))
            value = max(c[j], 0.0) if positive else c[j]
            r = r - value * D[j]
        total += 0.5 * r @ r
    return total / X.shape[0]


@pytest.mark.parametrize("dtype, atol", [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_default_encoder_is_algorithm_1_of_the_paper(dtype, atol):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8)).astype(dtype)
    est = MPSAE(n_components=24, k=5, max_iter=1, random_state=0).fit(X)  # then a fixed dictionary:
    D = rng.normal(size=(24, 8))
    D[:, 0] = np.abs(D[:, 0]) + 1.0  # atoms in a half-space: rows on the other side have no positive correlation
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    b_pre = rng.normal(size=8) * 0.3
    est.components_[...] = D
    est.decoder_bias_[...] = b_pre
    codes, X_hat = est.transform(X), est.predict(X)
    for n in range(X.shape[0]):
        z, x_hat = algorithm_1(D, b_pre, X[n].astype(np.float64), 5)
        np.testing.assert_allclose(codes[n], z, atol=atol)
        np.testing.assert_allclose(X_hat[n], x_hat, atol=atol)
    assert (codes < 0).any()  # some rows had no positive correlation left: Algorithm 1 takes a negative code


def test_selection_rules_differ_and_positive_needs_the_signed_rule():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 6))
    signed = MPSAE(n_components=16, k=4, max_iter=1, random_state=0).fit(X)
    absolute = MPSAE(n_components=16, k=4, selection="absolute", max_iter=1, random_state=0).fit(X)
    assert not np.allclose(signed.transform(X), absolute.transform(X))
    with pytest.raises(ValueError, match="positive=True needs selection='signed'"):
        MPSAE(n_components=16, k=4, selection="absolute", positive=True).fit(X)
    signed.set_params(selection="absolute", positive=True)  # read at inference: checked there too
    with pytest.raises(ValueError, match="positive=True needs selection='signed'"):
        signed.transform(X)
    with pytest.raises(ValueError, match="selection"):
        MPSAE(selection="abs").fit(X)


def test_history_l0_counts_distinct_latents():
    # 8 pursuit steps in 4 dimensions with 8 atoms: atoms repeat, and L0 counts each once
    X = np.random.default_rng(0).normal(size=(512, 4))
    for selection, positive in RULES:
        est = MPSAE(8, k=8, selection=selection, positive=positive, learning_rate=1e-12, max_iter=1,
                    batch_size=512, random_state=0)
        with pytest.warns(Warning):  # max_iter=1 runs out before early stopping
            est.fit(X)
        assert est.history_["l0"][0] == pytest.approx(l0(est.transform(X)), abs=1e-12)
        assert est.history_["l0"][0] < 8


@pytest.mark.parametrize("selection, positive", RULES)
def test_gradients_match_finite_differences_of_a_textbook_pursuit(selection, positive):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 5)) + 0.5
    est = MPSAE(n_components=7, k=3, selection=selection, positive=positive, random_state=0)
    est._initialize(InMemoryData(X, None))
    params = est._params()
    params["decoder_bias_"] += 0.3 * rng.normal(size=5)
    result = est._loss_and_grads(params, X, X, None)
    assert result.loss == pytest.approx(reference_loss(params["components_"], params["decoder_bias_"], X, 3, selection, positive))
    eps = 1e-6
    for name in ("components_", "decoder_bias_"):
        value = params[name]
        numeric = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            saved = value[index]
            value[index] = saved + eps
            up = reference_loss(params["components_"], params["decoder_bias_"], X, 3, selection, positive)
            value[index] = saved - eps
            down = reference_loss(params["components_"], params["decoder_bias_"], X, 3, selection, positive)
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
