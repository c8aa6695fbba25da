"""skdict.inspection against closed forms and solver oracles."""

import numpy as np
import pytest

from skdict import ReLUSAE, TopKSAE
from skdict.datasets import make_linear_representation_bench
from skdict.inspection import (
    antipodal_pairs,
    encoder_warm_start_savings,
    frozen_decoder_codes,
    stationarity_gaps,
    support_refit,
    wide_dictionary_solution,
)
from skdict.ops.fista import fista


def orthogonal_samples(n, d, seed=0):
    Q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, n)))
    return Q.T * np.random.default_rng(seed + 1).uniform(0.5, 3.0, (n, 1))


def test_wide_dictionary_limit_is_stationary_and_is_what_fista_finds():
    X = orthogonal_samples(6, 10)
    alpha = 0.7
    D, codes = wide_dictionary_solution(X, alpha)
    np.testing.assert_allclose(np.diag(codes), np.maximum(np.linalg.norm(X, axis=1) - alpha, 0))
    gaps = stationarity_gaps(X, D, codes, alpha)
    assert gaps.code_gap < 1e-12 and gaps.off_support_violation == 0.0 and gaps.atom_gap < 1e-12
    solved, _ = fista(X, D, alpha, positive=True, tol=1e-12, max_iter=2000)
    np.testing.assert_allclose(solved, codes, atol=1e-9)


def test_gaps_vanish_at_optimal_codes_and_not_at_perturbed_ones():
    rng = np.random.default_rng(0)
    D = rng.normal(size=(12, 8))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.normal(size=(40, 8))
    codes, _ = fista(X, D, 0.3, tol=1e-14, max_iter=20000)
    gaps = stationarity_gaps(X, D, codes, 0.3)
    assert gaps.code_gap < 1e-5 and gaps.off_support_violation < 1e-7
    worse = stationarity_gaps(X, D, codes * 0.8, 0.3)
    assert worse.code_gap > 100 * max(gaps.code_gap, 1e-9)
    # a random dictionary is not stationary in its atoms; a single atom-data pair is
    assert gaps.atom_gap > 0.05
    x = np.array([[3.0, 4.0]])
    single = stationarity_gaps(x, np.array([[0.6, 0.8]]), np.array([[4.0]]), 1.0)
    assert single.atom_gap == pytest.approx(0.0, abs=1e-12) and single.code_gap == pytest.approx(0.0, abs=1e-12)


def test_antipodal_pairs_found():
    rng = np.random.default_rng(1)
    D = rng.normal(size=(6, 5))
    D[4] = -2.0 * D[1]
    D[5] = -D[2] + 1e-4 * rng.normal(size=5)
    pairs = antipodal_pairs(D)
    assert {tuple(p) for p in pairs.tolist()} == {(1, 4), (2, 5)}
    assert antipodal_pairs(D, threshold=-1.01).shape == (0, 2)


@pytest.fixture(scope="module")
def fitted_relu():
    X, features, _ = make_linear_representation_bench(3000, n_features=32, n_dims=24, max_coherence=0.25, random_state=0)
    model = ReLUSAE(n_components=64, alpha=0.1, max_iter=10, learning_rate=4e-3, batch_size=128, random_state=0).fit(X)
    return X, model


def test_frozen_decoder_codes_beat_the_amortised_encoder(fitted_relu):
    X, model = fitted_relu
    centred = X - model.decoder_bias_
    codes, D = frozen_decoder_codes(model, X, 0.1)
    np.testing.assert_array_equal(D, model.components_)
    objective = lambda Z: 0.5 * np.sum((centred - Z @ D) ** 2) + 0.1 * np.abs(Z).sum()  # noqa: E731
    assert objective(codes) <= objective(model.transform(X))
    assert (codes >= 0).all()
    unit_codes, unit_D = frozen_decoder_codes(model, X, 0.1, atom_norms="unit")
    np.testing.assert_allclose(np.linalg.norm(unit_D, axis=1), 1.0)
    doubled_codes, doubled_D = frozen_decoder_codes(model, X, 0.1, atom_norms=np.full(64, 2.0))
    np.testing.assert_allclose(np.linalg.norm(doubled_D, axis=1), 2.0)
    with pytest.raises(ValueError, match="atom_norms must hold 64 positive finite norms"):
        frozen_decoder_codes(model, X, 0.1, atom_norms=np.ones(3))


def test_support_refit_is_least_squares_on_the_support():
    X, features, _ = make_linear_representation_bench(500, n_features=32, n_dims=24, max_coherence=0.25, random_state=2)
    model = TopKSAE(n_components=48, k=3, max_iter=3, random_state=0).fit(X)
    refit = support_refit(model, X)
    sae_codes = model.transform(X)
    np.testing.assert_array_equal(refit != 0, (sae_codes != 0) & (refit != 0))
    centred = X - model.decoder_bias_
    for n in range(0, 500, 50):  # per-sample oracle
        support = np.flatnonzero(sae_codes[n])
        if support.size:
            values, *_ = np.linalg.lstsq(model.components_[support].T, centred[n], rcond=None)
            np.testing.assert_allclose(refit[n, support], values, rtol=1e-8, atol=1e-10)
    refit_error = np.sum((centred - refit @ model.components_) ** 2, axis=1)
    # duplicated atoms firing together: still the least-squares fit, no LinAlgError
    model.components_[1] = model.components_[0]
    model.encoder_[1] = model.encoder_[0]
    doubled = support_refit(model, X)
    assert np.isfinite(doubled).all()
    supports = model.transform(X) != 0
    both = np.flatnonzero(supports[:, 0] & supports[:, 1])
    assert both.size
    for n in both[:20]:  # the error of the least-squares fit on a rank-deficient support
        atoms = model.components_[supports[n]]
        values, *_ = np.linalg.lstsq(atoms.T, centred[n], rcond=None)
        best = np.sum((centred[n] - values @ atoms) ** 2)
        assert np.sum((centred[n] - doubled[n] @ model.components_) ** 2) == pytest.approx(best, rel=1e-6, abs=1e-10)
    sae_error = np.sum((centred - sae_codes @ model.components_) ** 2, axis=1)
    assert (refit_error <= sae_error + 1e-10).all()


def test_warm_start_from_sae_codes(fitted_relu):
    X, model = fitted_relu
    report = encoder_warm_start_savings(model, X[:500], 0.1)
    # both runs reach the same optimum, below the SAE's own codes; whether the SAE's codes
    # save iterations is what the function measures (here they do not for the slowest sample)
    assert report.warm_objective <= report.sae_objective and report.cold_objective <= report.sae_objective
    assert report.cold_objective == pytest.approx(report.warm_objective, rel=1e-6)
    assert report.saved_fraction == pytest.approx(1 - report.warm_iterations / report.cold_iterations)


def test_warm_start_at_the_optimum_stops_at_the_first_check(fitted_relu):
    X, model = fitted_relu
    centred = X[:200] - model.decoder_bias_
    optimum, _ = fista(centred, model.components_, 0.1, positive=True, tol=1e-10, max_iter=5000)
    _, n_iter = fista(centred, model.components_, 0.1, positive=True, tol=1e-6, init=optimum)
    assert n_iter == 1


def test_learning_dynamics_record_one_entry_per_epoch():
    from skdict.inspection import track_learning_dynamics
    from skdict.metrics import mean_max_cosine

    X, features, _ = make_linear_representation_bench(3000, n_features=32, n_dims=24, max_coherence=0.25, random_state=3)
    sae = TopKSAE(n_components=96, k=2, max_iter=6, learning_rate=4e-3, batch_size=128, random_state=0)
    model, dynamics = track_learning_dynamics(sae, X, true_features=features)
    assert len(dynamics.mean_max_cosine) == len(dynamics.gt_recovery) == model.n_iter_ == len(dynamics.loss)
    assert dynamics.mean_max_cosine[-1] == pytest.approx(mean_max_cosine(features, model.components_))
    assert dynamics.mean_max_cosine[-1] > dynamics.mean_max_cosine[0]
    assert model.callback is None and sae.callback is None
