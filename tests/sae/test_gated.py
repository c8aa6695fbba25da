"""GatedSAE (Rajamanoharan et al., 2024): gradients against finite differences, its forward pass, its units, io."""

import numpy as np
import pytest

from skdict import AnchoredSAE, GatedSAE, ReLUSAE
from skdict.sae._data import InMemoryData

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # short fits

N_ROWS, D_IN, D_OUT, N_LATENTS = 6, 5, 4, 7
NAMES = ("encoder_", "encoder_bias_", "r_mag_", "b_mag_", "components_", "decoder_bias_")


def dense_forward(params, X, centre):
    """pi_gate, pi_mag and z, dense, written from the paper's equations (no pairs, no CodeMatrix)."""
    X_centred = X - centre
    pi_gate = X_centred @ params["encoder_"].T + params["encoder_bias_"]
    W_mag = np.exp(params["r_mag_"])[:, None] * params["encoder_"]
    pi_mag = X_centred @ W_mag.T + params["b_mag_"]
    return pi_gate, pi_mag, (pi_gate > 0) * np.maximum(pi_mag, 0)


def reference_loss(alpha, params, X, Y, centre, frozen):
    """The loss with the auxiliary reconstruction decoded through ``frozen = (W_dec, b_dec)``, held constant."""
    pi_gate, _, Z = dense_forward(params, X, centre)
    D, b_dec = params["components_"], params["decoder_bias_"]
    B = X.shape[0]
    reconstruction = 0.5 * np.sum((Z @ D + b_dec - Y) ** 2) / B
    gate_acts = np.maximum(pi_gate, 0)
    l1 = alpha * np.sum(gate_acts * np.linalg.norm(D, axis=1)) / B
    aux = 0.5 * np.sum((gate_acts @ frozen[0] + frozen[1] - Y) ** 2) / B
    return reconstruction + l1 + aux


def finite_difference(fn, value, eps=1e-6):
    """Central differences of ``fn()`` in each entry of ``value`` (moved in place, then restored)."""

    def moved(index, step):
        saved = value[index]
        value[index] = saved + step
        try:
            return fn()
        finally:
            value[index] = saved

    slopes = [(moved(index, eps) - moved(index, -eps)) / (2 * eps) for index in np.ndindex(value.shape)]
    return np.reshape(slopes, value.shape)


def make_estimator(transcoder, seed=1, alpha=0.3):
    rng = np.random.default_rng(seed)
    est = GatedSAE(N_LATENTS, alpha=alpha, random_state=0)
    X = rng.normal(size=(N_ROWS, D_IN))
    Y = rng.normal(size=(N_ROWS, D_OUT)) if transcoder else None
    est._initialize(InMemoryData(X, Y))
    for value in est._params().values():  # away from the symmetric initialisation: every term is exercised
        value += 0.3 * rng.normal(size=value.shape)
    return est, X, (X if Y is None else Y)


@pytest.mark.parametrize("transcoder", [False, True], ids=["sae", "transcoder"])
def test_gradients_match_finite_differences_with_a_frozen_auxiliary_decoder(transcoder):
    est, X, Y = make_estimator(transcoder)
    params = est._params()
    result = est._loss_and_grads(params, X, Y, None)
    frozen = (params["components_"].copy(), params["decoder_bias_"].copy())

    def total():
        return reference_loss(est.alpha, params, X, Y, est._centre(), frozen)

    assert result.loss == pytest.approx(total(), rel=1e-12)
    pi_gate, pi_mag, Z = dense_forward(params, X, est._centre())
    assert result.n_active == np.count_nonzero(Z)
    assert 0 < np.count_nonzero(Z) < np.count_nonzero(pi_gate > 0)  # some open gates have a zero magnitude
    for name in NAMES:
        numeric = finite_difference(total, params[name])
        np.testing.assert_allclose(result.grads[name], numeric, rtol=1e-6, atol=1e-8, err_msg=name)


def test_the_auxiliary_decoder_is_frozen_and_the_gate_learns_from_the_penalty_and_aux_only():
    """Unfrozen aux gives another decoder gradient; with alpha=0 and no aux, b_gate gets no gradient at all."""
    est, X, Y = make_estimator(transcoder=False)
    params = est._params()
    result = est._loss_and_grads(params, X, Y, None)

    def unfrozen():
        return reference_loss(est.alpha, params, X, Y, est._centre(), (params["components_"], params["decoder_bias_"]))

    assert not np.allclose(result.grads["components_"], finite_difference(unfrozen, params["components_"]), atol=1e-4)
    # The reconstruction alone: the Heaviside gate passes nothing to b_gate (only through pi_mag to W).
    pi_gate, _, Z = dense_forward(params, X, est._centre())
    B = X.shape[0]

    def reconstruction_only():
        return 0.5 * np.sum((dense_forward(params, X, est._centre())[2] @ params["components_"]
                             + params["decoder_bias_"] - Y) ** 2) / B

    assert np.all(finite_difference(reconstruction_only, params["encoder_bias_"]) == 0)
    gate_part = result.grads["encoder_bias_"]
    gate_acts = np.maximum(pi_gate, 0)
    expected = ((gate_acts @ params["components_"] + params["decoder_bias_"] - Y) / B @ params["components_"].T
                + est.alpha * np.linalg.norm(params["components_"], axis=1) / B) * (pi_gate > 0)
    np.testing.assert_allclose(gate_part, expected.sum(axis=0), rtol=1e-10, atol=1e-12)


def test_with_equal_paths_the_loss_is_relusae_s_plus_the_auxiliary_term():
    """r_mag = 0, b_mag = b_gate: the gated codes are ReLU codes, and alpha means what ReLUSAE's alpha means."""
    est, X, Y = make_estimator(transcoder=False)
    est.r_mag_[...] = 0.0
    est.b_mag_[...] = est.encoder_bias_
    est.components_ /= np.linalg.norm(est.components_, axis=1, keepdims=True)  # unit atoms, as training keeps them
    relu = ReLUSAE(N_LATENTS, alpha=est.alpha, random_state=0)
    relu._initialize(InMemoryData(X, None))
    params = est._params()
    for name, value in relu._params().items():
        value[...] = params[name]
    relu_loss = relu._loss_and_grads(relu._params(), X, Y, None).loss
    pi_gate, _, Z = dense_forward(params, X, est._centre())
    np.testing.assert_array_equal(Z, np.maximum(pi_gate, 0))
    aux = 0.5 * np.sum((Z @ est.components_ + est.decoder_bias_ - X) ** 2) / X.shape[0]
    assert est._loss_and_grads(params, X, Y, None).loss == pytest.approx(relu_loss + aux, rel=1e-12)


@pytest.fixture(scope="module")
def fitted():
    X = np.random.default_rng(0).normal(size=(300, 8))
    return GatedSAE(32, alpha=0.05, max_steps=60, batch_size=64, random_state=0).fit(X), X


def test_transform_and_predict_follow_the_paper_s_equations(fitted):
    sae, X = fitted
    *_, Z = dense_forward(sae._params(), X, sae.decoder_bias_)
    codes = sae.transform(X)
    np.testing.assert_allclose(codes, Z, rtol=1e-10, atol=1e-12)
    assert 0 < np.count_nonzero(codes) < codes.size
    np.testing.assert_allclose(sae.predict(X), Z @ sae.components_ + sae.decoder_bias_, rtol=1e-10, atol=1e-10)
    codes32 = sae.transform(X.astype(np.float32))
    assert codes32.dtype == np.float32
    np.testing.assert_allclose(codes32, Z, atol=1e-4)
    assert np.any(sae.r_mag_ != 0) and np.any(sae.b_mag_ != 0)  # both magnitude parameters trained


def test_transcoder_fits_and_reconstructs_its_target():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6))
    Y = X @ rng.normal(size=(6, 5))
    sae = GatedSAE(24, alpha=0.01, max_steps=300, batch_size=64, random_state=0).fit(X, Y)
    assert sae.is_transcoder_ and sae.components_.shape == (24, 5)
    assert sae.score(X, Y) > 0.8


def test_larger_alpha_gives_sparser_codes_like_relusae():
    X = np.random.default_rng(0).normal(size=(400, 8))

    def l0(cls, alpha):
        model = cls(32, alpha=alpha, max_steps=200, batch_size=64, random_state=0).fit(X)
        return float((model.transform(X) != 0).sum(axis=1).mean())

    assert l0(GatedSAE, 0.5) < l0(GatedSAE, 0.02)


def test_anchored_gated_sae_keeps_its_anchors():
    rng = np.random.default_rng(0)
    anchors = np.linalg.qr(rng.normal(size=(8, 8)))[0][:3]
    X = np.maximum(rng.normal(size=(400, 8)), 0) @ np.linalg.qr(rng.normal(size=(8, 8)))[0]
    model = AnchoredSAE(GatedSAE(24, alpha=0.02, max_steps=100, batch_size=64, random_state=0), anchors,
                        anchor_weight=10.0).fit(X)
    assert isinstance(model.estimator_, GatedSAE)
    cosines = np.sum(model.components_[:3] * anchors, axis=1)
    assert np.all(cosines > 0.99), cosines


# ------------------------------------------------------------------------------ SAELens's "gated" architecture
def saelens_gated_forward(tensors, X, apply_b_dec):
    """SAELens's GatedSAE.encode/decode in NumPy (W_enc is (d_in, d_sae) there)."""
    x = X - tensors["b_dec"] if apply_b_dec else X
    gate = x @ tensors["W_enc"] + tensors["b_gate"] > 0
    z = gate * np.maximum(x @ (tensors["W_enc"] * np.exp(tensors["r_mag"])) + tensors["b_mag"], 0)
    return z, z @ tensors["W_dec"] + tensors["b_dec"]


@pytest.mark.parametrize("apply_b_dec", [True, False])
def test_any_saelens_gated_weights_load_with_the_same_reconstructions(apply_b_dec):
    """Non-unit decoder rows fold into W_gate, b_gate and b_mag (codes scale by the norms); x_hat is SAELens's."""
    from skdict.io._saelens import from_saelens

    rng = np.random.default_rng(3)
    d_in, d_sae = 6, 20
    norms = rng.uniform(0.2, 5.0, size=d_sae)
    atoms = rng.normal(size=(d_sae, d_in))
    tensors = {
        "W_enc": rng.normal(size=(d_in, d_sae)), "b_gate": rng.normal(size=d_sae),
        "r_mag": 0.5 * rng.normal(size=d_sae), "b_mag": rng.normal(size=d_sae),
        "W_dec": atoms / np.linalg.norm(atoms, axis=1, keepdims=True) * norms[:, None], "b_dec": rng.normal(size=d_in),
    }
    cfg = {"architecture": "gated", "d_in": d_in, "d_sae": d_sae, "apply_b_dec_to_input": apply_b_dec,
           "metadata": {"sae_lens_version": "6.54.12"}}
    X = rng.normal(size=(50, d_in))
    codes, recon = saelens_gated_forward(tensors, X, apply_b_dec)
    model = from_saelens(cfg, tensors)
    assert type(model) is GatedSAE
    assert 0 < np.count_nonzero(codes) < codes.size
    np.testing.assert_allclose(model.transform(X), codes * norms, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(model.predict(X), recon, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(model.components_, axis=1), 1.0)


def test_export_writes_saelens_gated_tensors_and_refuses_a_gated_transcoder(tmp_path, fitted):
    from skdict.io._saelens import export_saelens, load_saelens, read_saelens

    sae, X = fitted
    cfg, tensors = read_saelens(export_saelens(sae, tmp_path / "sae"))
    assert cfg["architecture"] == "gated" and sorted(tensors) == ["W_dec", "W_enc", "b_dec", "b_gate", "b_mag", "r_mag"]
    codes, recon = saelens_gated_forward(tensors, X, cfg["apply_b_dec_to_input"])
    np.testing.assert_allclose(sae.transform(X), codes, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(load_saelens(tmp_path / "sae").transform(X), sae.transform(X))
    rng = np.random.default_rng(0)
    transcoder = GatedSAE(8, max_steps=5, random_state=0).fit(X, rng.normal(size=(X.shape[0], 3)))
    with pytest.raises(TypeError, match="no gated transcoder"):
        export_saelens(transcoder, tmp_path / "transcoder")


def test_a_gated_sae_written_by_sae_lens_loads_with_its_codes(tmp_path):
    """The real sae-lens (the peer environment): GatedSAE.save_model, then load_saelens, same codes."""
    sae_lens = pytest.importorskip("sae_lens")
    import torch

    from skdict.io._saelens import load_saelens

    torch.manual_seed(0)
    sae = sae_lens.GatedSAE(sae_lens.GatedSAEConfig(d_in=6, d_sae=20, dtype="float32", device="cpu"))
    with torch.no_grad():
        for parameter in sae.parameters():
            parameter.copy_(torch.randn_like(parameter))
    sae.save_model(tmp_path)
    X = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    with torch.no_grad():
        codes = sae.encode(torch.from_numpy(X))
        recon = sae.decode(codes).numpy()
    model = load_saelens(tmp_path)
    norms = np.linalg.norm(sae.W_dec.detach().numpy(), axis=1)
    np.testing.assert_allclose(model.transform(X), codes.numpy() * norms, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(model.predict(X), recon, rtol=1e-4, atol=1e-4)


def test_gated_reconstructs_better_than_relusae_at_no_more_latents_on_the_bench():
    """The paper's Pareto claim at a tiny scale (benchmarks/gated_vs_relu.py has the whole sweep): on held-out rows
    of the Linear Representation Bench, GatedSAE is at least as sparse as ReLUSAE and explains more variance."""
    from skdict.datasets import make_linear_representation_bench

    X, _, _ = make_linear_representation_bench(1500, 32, 28, random_state=0)
    X_train, X_test = X[:1000], X[1000:]
    common = dict(max_iter=8, batch_size=128, learning_rate=4e-3, random_state=0)
    relu = ReLUSAE(128, alpha=0.2, **common).fit(X_train)
    gated = GatedSAE(128, alpha=0.4, **common).fit(X_train)
    l0_relu, l0_gated = ((m.transform(X_test) != 0).sum(axis=1).mean() for m in (relu, gated))
    assert l0_gated <= 1.1 * l0_relu, (l0_gated, l0_relu)
    assert gated.score(X_test) > relu.score(X_test) + 0.01, (gated.score(X_test), relu.score(X_test))


@pytest.mark.gpu
def test_cupy_training_and_inference_match_numpy():
    cupy = pytest.importorskip("cupy")
    X = np.random.default_rng(0).normal(size=(300, 12))
    cpu = GatedSAE(48, max_iter=2, random_state=0).fit(X)
    gpu = GatedSAE(48, max_iter=2, random_state=0).fit(cupy.asarray(X))
    assert isinstance(gpu.r_mag_, cupy.ndarray) and isinstance(gpu.b_mag_, cupy.ndarray)
    for name in NAMES:
        np.testing.assert_allclose(cupy.asnumpy(getattr(gpu, name)), getattr(cpu, name), rtol=1e-5, atol=1e-6, err_msg=name)
    codes = gpu.transform(cupy.asarray(X))
    assert isinstance(codes, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(codes), cpu.transform(X), rtol=1e-4, atol=1e-5)
    assert gpu.score(cupy.asarray(X)) == pytest.approx(cpu.score(X), abs=1e-5)

