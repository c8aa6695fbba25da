"""FISTADictionaryLearning: ground-truth recovery, the least-squares update, dict_init, resampling, streaming."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning
from sklearn.decomposition import sparse_encode

from skdict import FISTADictionaryLearning, TopKSAE
from skdict.datasets import make_linear_representation_bench
from skdict.metrics import explained_variance, gt_recovery
from skdict.ops.lstsq_dictionary import code_statistics, least_squares_dictionary


@pytest.fixture(scope="module")
def bench():
    """96 features in 48 dims at 98% sparsity (the issue's 256-in-128 at 99% is in benchmarks/)."""
    X, features, _ = make_linear_representation_bench(5000, 96, 48, sparsity=0.98, max_coherence=0.2, random_state=0)
    return X, features


def test_batch_mode_recovers_ground_truth(bench):
    X, features = bench
    model = FISTADictionaryLearning(96, alpha=0.3, positive_code=True, max_iter=50, random_state=0).fit(X)
    # >= 95 of the 96 features: over random_state 0-4 the batch mode recovers 95-96 of them, which one it misses
    # depending on the rounding of the atom normalisation (the issue's >= 99% at its own size, 256 features:
    # benchmarks/dictionary_learning.py, 0.992 in batch mode)
    assert gt_recovery(features, model.components_) >= 0.98
    assert model.n_iter_ < 50  # stopped on tol
    np.testing.assert_allclose(np.linalg.norm(model.components_, axis=1), 1.0, rtol=1e-10)
    objective = model.history_["objective"]
    assert len(objective) == model.n_iter_ and objective[-1] < 0.6 * objective[0]


def test_minibatch_mode_recovers_ground_truth(bench):
    X, features = bench
    model = FISTADictionaryLearning(96, alpha=0.3, positive_code=True, batch_size=500, max_iter=10, random_state=0)
    model.fit(X)
    assert gt_recovery(features, model.components_) >= 0.99
    assert model.n_steps_ == model.n_iter_ * 10


def test_partial_fit_streams_chunks_and_improves(bench):
    X, features = bench
    model = FISTADictionaryLearning(96, alpha=0.3, positive_code=True, batch_size=250, random_state=0)
    model.partial_fit(X[:500])
    first = gt_recovery(features, model.components_)
    for _ in range(3):
        for start in range(500, 5000, 500):
            model.partial_fit(X[start : start + 500])
    assert gt_recovery(features, model.components_) > max(first + 0.5, 0.95)
    assert model.n_steps_ == 2 + 3 * 9 * 2 and model.n_iter_ == 1 + 27


def test_least_squares_update_matches_lstsq():
    rng = np.random.default_rng(0)
    Z, X = rng.standard_normal((40, 6)), rng.standard_normal((40, 5))
    A, B = code_statistics(Z, X)
    np.testing.assert_allclose(least_squares_dictionary(A, B, 0.0), np.linalg.lstsq(Z, X, rcond=None)[0], atol=1e-12)
    # the relative ridge is eps = r tr(A)/k, and the update does not depend on the scale of the codes
    ridge = 0.1
    epsilon = ridge * np.trace(A) / 6
    np.testing.assert_allclose(least_squares_dictionary(A, B, ridge), np.linalg.solve(A + epsilon * np.eye(6), B))
    np.testing.assert_allclose(least_squares_dictionary(9 * A, 3 * B, ridge), least_squares_dictionary(A, B, ridge) / 3)
    Z[:, 2] = 0  # an unused atom comes out as a zero row
    A, B = code_statistics(Z, X)
    assert not least_squares_dictionary(A, B, 1e-6)[2].any()


def test_transform_is_the_lasso_code_of_the_dictionary(bench):
    X, _ = bench
    model = FISTADictionaryLearning(96, alpha=0.3, positive_code=True, max_iter=3, code_tol=1e-10, code_max_iter=5000)
    model.set_params(random_state=0).fit(X[:500])
    codes = model.transform(X[:50])
    oracle = sparse_encode(X[:50], model.components_, algorithm="lasso_cd", alpha=0.3, positive=True, max_iter=5000)
    np.testing.assert_allclose(codes, oracle, atol=1e-5)
    np.testing.assert_allclose(model.inverse_transform(codes), codes @ model.components_)
    assert model.score(X[:50]) == pytest.approx(explained_variance(X[:50], codes @ model.components_))


def test_dict_init_accepts_ground_truth_and_sae_components(bench):
    X, features = bench
    model = FISTADictionaryLearning(alpha=0.3, positive_code=True, dict_init=features * 3.0, max_iter=3).fit(X[:2000])
    assert model.components_.shape == (96, 48)
    assert gt_recovery(features, model.components_, threshold=0.99) == 1.0
    sae = TopKSAE(96, k=3, max_iter=1, random_state=0).fit(X[:1000])
    warm = FISTADictionaryLearning(96, alpha=0.3, dict_init=sae.components_, max_iter=1).fit(X[:1000])
    assert warm.components_.shape == sae.components_.shape


def test_dict_init_with_wrong_shape_says_what_to_pass(bench):
    X, features = bench
    with pytest.raises(ValueError, match=r"dict_init must have shape \(n_components, n_features\) = \(96, 48\)"):
        FISTADictionaryLearning(96, dict_init=features.T).fit(X)
    with pytest.raises(ValueError, match="all-zero atoms"):
        FISTADictionaryLearning(dict_init=np.zeros((4, 48))).fit(X)


def test_unused_atoms_are_resampled_into_the_data_span():
    rng = np.random.default_rng(1)
    basis = np.linalg.qr(rng.standard_normal((10, 10)))[0]
    X = rng.standard_normal((300, 6)) @ basis[:6]  # data in a 6-dim subspace of R^10
    dict_init = np.vstack([basis[:6], basis[6:8]])  # two atoms orthogonal to every sample: never used
    model = FISTADictionaryLearning(alpha=0.5, dict_init=dict_init, max_iter=10, random_state=0).fit(X)
    assert model.history_["n_resampled"][0] == 2
    outside = model.components_ @ basis[6:].T  # components outside the data's span
    np.testing.assert_allclose(outside, 0.0, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(bench, dtype):
    X, _ = bench
    model = FISTADictionaryLearning(20, alpha=0.3, max_iter=3, random_state=0).fit(X[:300].astype(dtype))
    assert model.components_.dtype == dtype and model.transform(X[:10].astype(dtype)).dtype == dtype


def test_same_seed_same_model(bench):
    X, _ = bench
    first = FISTADictionaryLearning(20, alpha=0.3, max_iter=3, batch_size=100, random_state=3).fit(X[:400])
    second = FISTADictionaryLearning(20, alpha=0.3, max_iter=3, batch_size=100, random_state=3).fit(X[:400])
    np.testing.assert_array_equal(first.components_, second.components_)


@pytest.mark.gpu
def test_gpu_matches_numpy(bench):
    import cupy

    X, _ = bench
    kwargs = dict(n_components=20, alpha=0.3, max_iter=3, random_state=0)
    cpu = FISTADictionaryLearning(**kwargs).fit(X[:400])
    gpu = FISTADictionaryLearning(**kwargs).fit(cupy.asarray(X[:400]))
    assert isinstance(gpu.components_, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(gpu.components_), cpu.components_, atol=1e-6)
    codes = gpu.transform(cupy.asarray(X[:20]))
    assert isinstance(codes, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(codes), cpu.transform(X[:20]), atol=1e-5)


@settings(max_examples=15, deadline=None)
@given(exponent=st.integers(-990, 1000), minibatch=st.booleans())
def test_scaling_law_holds_at_every_power_of_two(exponent, minibatch):
    """Lasso law z*(sX, D, s alpha) = s z*(X, D, alpha): scaling X and alpha by s = 2^k keeps the atoms and scales
    the codes, from subnormal-adjacent 2^-990 to 2^1000 (the code step underflowed at 1e-200: EV 0.54 after 2
    alternations; the objective overflowed at 1e155)."""
    X = np.random.default_rng(0).standard_normal((60, 8))
    make = lambda alpha: FISTADictionaryLearning(  # noqa: E731
        12, alpha=alpha, max_iter=3, batch_size=20 if minibatch else None, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("error", RuntimeWarning)
        unit = make(0.1).fit(X)
        scaled = make(math.ldexp(0.1, exponent)).fit(np.ldexp(X, exponent))
        codes = scaled.transform(np.ldexp(X, exponent))
        unit_codes = unit.transform(X)
    np.testing.assert_array_equal(scaled.components_, unit.components_)
    np.testing.assert_array_equal(np.ldexp(codes, -exponent), unit_codes)
    assert scaled.n_iter_ == unit.n_iter_
