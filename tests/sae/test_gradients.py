"""Hand-written SAE gradients against central finite differences of a dense reference loss.

The reference below is an independent, dense, loop-free NumPy transcription of each
architecture's loss (no CodeMatrix, no sampled dots): if the sparse engine and the
reference disagree on the loss value, or the engine's gradient disagrees with the
reference's finite differences, one of them is wrong.
"""

import numpy as np
import pytest

from skdict import BatchTopKSAE, JumpReLUSAE, MatryoshkaSAE, ReLUSAE, TopKSAE
from skdict.sae._step import loss_and_grads
from skdict.sae._data import InMemoryData

N_ROWS, D_IN, D_OUT, N_LATENTS = 6, 5, 4, 7


def dense_codes(est, A, training=True):
    """Dense z = sigma(a) of each architecture, written independently of the engine."""
    if isinstance(est, BatchTopKSAE) and getattr(est, "activation", "batchtopk") == "batchtopk":
        flat = A.ravel()
        keep = np.zeros(flat.shape, bool)
        keep[np.argsort(flat)[::-1][: est.k_ * A.shape[0]]] = True
        return np.where(keep.reshape(A.shape) & (A > 0), A, 0.0)
    if isinstance(est, (TopKSAE, MatryoshkaSAE)):  # a Matryoshka SAE with activation="topk"
        order = np.argsort(A, axis=1)[:, ::-1][:, : est.k_]
        mask = np.zeros(A.shape, bool)
        np.put_along_axis(mask, order, True, axis=1)
        return np.where(mask & (A > 0), A, 0.0)
    if isinstance(est, JumpReLUSAE):
        return np.where(A > est.threshold_, A, 0.0)
    return np.maximum(A, 0.0)


def reference_loss(est, params, X, Y, tied, dead_mask=None, frozen_residual=None):
    centre = params["decoder_bias_"] if tied else est.input_center_
    A = (X - centre) @ params["encoder_"].T + params["encoder_bias_"]
    Z = dense_codes(est, A)
    residual = Z @ params["components_"] + params["decoder_bias_"] - Y
    B = X.shape[0]
    loss = 0.5 * np.sum(residual**2) / B
    for width in getattr(est, "matryoshka_widths_", ())[:-1]:  # Matryoshka: each inner prefix reconstructs Y too
        inner = Z[:, :width] @ params["components_"][:width] + params["decoder_bias_"] - Y
        loss += 0.5 * np.sum(inner**2) / B
    if isinstance(est, ReLUSAE):
        weights = np.ones(Z.shape[1])
        if est.layer_sizes is not None:  # crosscoder: summed per-layer decoder norms
            edges = np.cumsum([0, *est.layer_sizes])
            W = params["components_"]
            weights = sum(np.linalg.norm(W[:, a:b], axis=1) for a, b in zip(edges[:-1], edges[1:]))
        loss += est.alpha * (Z * weights).sum() / B
    if isinstance(est, JumpReLUSAE):
        loss += est.alpha * np.count_nonzero(Z) / B
    if dead_mask is not None and dead_mask.any():
        masked = np.where(dead_mask, A, -np.inf)
        k_aux = min(est._resolve_k_aux(), int(dead_mask.sum()))
        order = np.argsort(masked, axis=1)[:, ::-1][:, :k_aux]
        sel = np.zeros(A.shape, bool)
        np.put_along_axis(sel, order, True, axis=1)
        Z_aux = np.where(sel & (A > 0), A, 0.0)
        e = -(frozen_residual if frozen_residual is not None else residual)
        loss += est.aux_coef * 0.5 * np.sum((Z_aux @ params["components_"] - e) ** 2) / B
    return loss, residual


def make_estimator(cls, rng, transcoder, **params):
    kwargs = {"n_components": N_LATENTS, "random_state": 0, **params}
    if cls in (TopKSAE, BatchTopKSAE, MatryoshkaSAE):
        kwargs["k"] = 3
    if cls is ReLUSAE:
        kwargs["alpha"] = 0.3
    if cls is JumpReLUSAE:
        kwargs.update(alpha=0.2, bandwidth=1e-4, threshold_init=0.05)
    est = cls(**kwargs)
    X = rng.normal(size=(N_ROWS, D_IN))
    Y = rng.normal(size=(N_ROWS, D_OUT)) if transcoder else None
    est._initialize(InMemoryData(X, Y))
    # Move away from the symmetric initialisation so every term is exercised.
    for name, value in est._params().items():
        value += 0.3 * rng.normal(size=value.shape)
    if cls is JumpReLUSAE:
        est.threshold_[...] = np.abs(est.threshold_)
    return est, X, (X if Y is None else Y)


def finite_difference(fn, value, eps=1e-6):
    grad = np.zeros_like(value)
    for idx in np.ndindex(value.shape):
        saved = value[idx]
        value[idx] = saved + eps
        up = fn()
        value[idx] = saved - eps
        down = fn()
        value[idx] = saved
        grad[idx] = (up - down) / (2 * eps)
    return grad


ESTIMATORS = [TopKSAE, BatchTopKSAE, ReLUSAE, JumpReLUSAE]
#: Matryoshka's nested prefixes (1, 2, 7) of the 7 latents, with either activation.
MATRYOSHKA = [(MatryoshkaSAE, {"activation": "batchtopk"}), (MatryoshkaSAE, {"activation": "topk"})]


@pytest.mark.parametrize("transcoder", [False, True], ids=["sae", "transcoder"])
@pytest.mark.parametrize("cls, params", [(cls, {}) for cls in ESTIMATORS] + MATRYOSHKA)
def test_gradients_match_finite_differences(cls, params, transcoder):
    rng = np.random.default_rng(1)
    est, X, Y = make_estimator(cls, rng, transcoder, **params)
    tied = not transcoder
    params = est._params()
    result = loss_and_grads(est, params, X, Y, centre=est._centre(), tied=tied)
    ref_loss, _ = reference_loss(est, params, X, Y, tied)
    assert result.loss == pytest.approx(ref_loss, rel=1e-12)
    assert result.n_active == np.count_nonzero(dense_codes(est, (X - est._centre()) @ est.encoder_.T + est.encoder_bias_))
    for name in ("encoder_", "encoder_bias_", "components_", "decoder_bias_"):
        numeric = finite_difference(lambda: reference_loss(est, params, X, Y, tied)[0], params[name])
        np.testing.assert_allclose(result.grads[name], numeric, rtol=1e-6, atol=1e-8, err_msg=name)


@pytest.mark.parametrize("transcoder", [False, True], ids=["sae", "transcoder"])
@pytest.mark.parametrize("cls, params", [(TopKSAE, {}), (BatchTopKSAE, {})] + MATRYOSHKA)
def test_auxk_gradients_match_finite_differences_with_detached_residual(cls, params, transcoder):
    rng = np.random.default_rng(2)
    est, X, Y = make_estimator(cls, rng, transcoder, **params)
    tied = not transcoder
    params = est._params()
    dead_mask = np.zeros(N_LATENTS, bool)
    dead_mask[[1, 4, 5]] = True
    result = loss_and_grads(est, params, X, Y, centre=est._centre(), tied=tied, dead_mask=dead_mask)
    _, residual = reference_loss(est, params, X, Y, tied)
    frozen = residual.copy()

    def total():
        return reference_loss(est, params, X, Y, tied, dead_mask=dead_mask, frozen_residual=frozen)[0]

    assert result.loss == pytest.approx(total(), rel=1e-12)
    without_aux = loss_and_grads(est, params, X, Y, centre=est._centre(), tied=tied).loss
    assert result.loss > without_aux  # the auxiliary term is really there
    for name in ("encoder_", "encoder_bias_", "components_", "decoder_bias_"):
        numeric = finite_difference(total, params[name])
        np.testing.assert_allclose(result.grads[name], numeric, rtol=1e-6, atol=1e-8, err_msg=name)


def test_jumprelu_threshold_gradient_is_the_straight_through_estimate():
    """dL/dθ_j = Σ_n (−1/ε) K((a_nj − θ_j)/ε) (θ_j ∂L/∂z_nj + λ/B), computed by hand."""
    rng = np.random.default_rng(3)
    est, X, Y = make_estimator(JumpReLUSAE, rng, transcoder=False)
    params = est._params()
    A = (X - est.decoder_bias_) @ est.encoder_.T + est.encoder_bias_
    # Put some pre-activations inside the window on both sides of θ, others outside.
    est.bandwidth_ = 0.05
    est.threshold_[...] = A[0] + np.array([0.01, -0.01, 0.2, -0.2, 0.0001, 0.3, -0.024])
    Z = np.where(A > est.threshold_, A, 0.0)
    residual = Z @ est.components_ + est.decoder_bias_ - Y
    B = X.shape[0]
    dL_dz = (residual / B) @ est.components_.T  # dense, by hand
    u = (A - est.threshold_) / est.bandwidth_
    kernel = (np.abs(u) < 0.5).astype(float)
    expected = np.sum(-(kernel / est.bandwidth_) * (est.threshold_ * dL_dz + est.alpha / B), axis=0)
    assert np.count_nonzero(kernel) >= 4  # the window really catches pairs
    result = loss_and_grads(est, params, X, Y, centre=est._centre(), tied=True)
    np.testing.assert_allclose(result.grads["threshold_"], expected, rtol=1e-10, atol=1e-12)
    # Per pair: the reconstruction part is exactly -(θ/ε)·K·dL/dz.
    only_reconstruction = np.sum(-(est.threshold_ / est.bandwidth_) * kernel * dL_dz, axis=0)
    est.alpha = 0.0
    result = loss_and_grads(est, params, X, Y, centre=est._centre(), tied=True)
    np.testing.assert_allclose(result.grads["threshold_"], only_reconstruction, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("transcoder", [False, True], ids=["sae", "transcoder"])
def test_crosscoder_l1_weighted_by_layer_norms_matches_finite_differences(transcoder):
    rng = np.random.default_rng(4)
    est, X, Y = make_estimator(ReLUSAE, rng, transcoder)
    est.layer_sizes = (1, 2, 1) if transcoder else (2, 3)
    est._check_hyperparameters(N_LATENTS)
    tied = not transcoder
    params = est._params()
    result = loss_and_grads(est, params, X, Y, centre=est._centre(), tied=tied)
    assert result.loss == pytest.approx(reference_loss(est, params, X, Y, tied)[0], rel=1e-12)
    for name in ("encoder_", "encoder_bias_", "components_", "decoder_bias_"):
        numeric = finite_difference(lambda: reference_loss(est, params, X, Y, tied)[0], params[name])
        np.testing.assert_allclose(result.grads[name], numeric, rtol=1e-6, atol=1e-8, err_msg=name)
