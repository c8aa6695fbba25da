"""Dictionary learners end honestly: certified or warned codes, ConvergenceWarning, divergence raised, inputs validated."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso

from skdict import LISTA, FISTADictionaryLearning, SoftplusAdamDictionaryLearning
from skdict.exceptions import TrainingDivergedError
from skdict.ops.fista import lasso_objective


@pytest.fixture(scope="module")
def coherent():
    """32 atoms in 16 dims made of near-duplicate pairs: FISTA needs ~800 iterations to a relative gap of 1e-4."""
    rng = np.random.default_rng(0)
    base = rng.standard_normal((16, 16))
    D = np.repeat(base, 2, axis=0) + 0.2 * rng.standard_normal((32, 16))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = 0.3 * rng.standard_normal((50, 16)) @ base + 0.1 * rng.standard_normal((50, 16))
    return X, D


def fitted_on(D, X, **params):
    """A FISTADictionaryLearning whose dictionary is exactly ``D`` (fit once, then the atoms are set)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = FISTADictionaryLearning(D.shape[0], alpha=0.1, dict_init=D, max_iter=1, **params).fit(X)
    model.components_ = D.copy()
    return model


def test_transform_codes_solve_the_lasso_to_code_tol(coherent):
    X, D = coherent
    model = fitted_on(D, X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # the default budget suffices: no warning
        codes = model.transform(X)
    # scikit-learn's Lasso minimises (1/2n)||x - D^T z||^2 + a||z||_1 over n = n_features rows: a = alpha / n_features
    lasso = Lasso(alpha=0.1 / 16, fit_intercept=False, tol=1e-14, max_iter=1_000_000)
    oracle = np.array([lasso.fit(D.T, x).coef_ for x in X])
    optimum = lasso_objective(X, D, oracle, 0.1)
    # the objective is certified to code_tol=1e-4 relative; the former fixed 200 iterations left 43 of 50 rows
    # 7e-4 above the optimum
    assert np.all(lasso_objective(X, D, codes, 0.1) <= optimum * (1 + 1e-4) + 1e-12)
    tight = fitted_on(D, X, code_tol=1e-12, code_max_iter=20_000).transform(X)
    np.testing.assert_allclose(tight, oracle, atol=1e-5)


def test_transform_out_of_budget_warns(coherent):
    X, D = coherent
    model = fitted_on(D, X, code_max_iter=5)
    with pytest.warns(ConvergenceWarning, match=r"codes of \d+ of 50 samples are not converged.*raise code_max_iter"):
        model.transform(X)
    with pytest.warns(ConvergenceWarning, match="raise code_max_iter"):
        model.score(X)


@pytest.mark.parametrize("batch_size", [None, 25])
def test_fista_fit_out_of_budget_warns(coherent, batch_size):
    X, D = coherent
    model = FISTADictionaryLearning(32, alpha=0.1, dict_init=D, max_iter=2, tol=0, batch_size=batch_size)
    with pytest.warns(ConvergenceWarning, match=r"max_iter=2 (alternations|epochs) ended") as record:
        model.fit(X)
    assert not any("code step" in str(w.message) for w in record)
    with pytest.warns(ConvergenceWarning, match=r"last code step of fit left \d+ of 50 samples uncertified"):
        model.set_params(code_max_iter=3).fit(X)


def test_fista_fit_that_converges_does_not_warn(coherent):
    X, _ = coherent
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = FISTADictionaryLearning(8, alpha=0.1, max_iter=200, tol=1e-3, random_state=0).fit(X)
    assert model.n_iter_ < 200


def test_lista_and_softplus_adam_warn_when_max_iter_ends_before_tol():
    X = np.random.default_rng(0).standard_normal((100, 8))
    atoms = np.random.default_rng(1).standard_normal((12, 8))
    with pytest.warns(ConvergenceWarning, match="LISTA: max_iter=2 epochs ended"):
        LISTA(12, n_layers=2, dictionary=atoms, max_iter=2, tol=0, random_state=0).fit(X)
    model = SoftplusAdamDictionaryLearning(8, max_iter=3, transform_max_iter=3, random_state=0)
    with pytest.warns(ConvergenceWarning, match="SoftplusAdamDictionaryLearning: max_iter=3 steps ended"):
        model.fit(X)
    with pytest.warns(ConvergenceWarning, match=r"codes of 100 of 100 samples.*raise transform_max_iter"):
        model.transform(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        LISTA(12, n_layers=2, dictionary=atoms, max_iter=50, tol=0.5, random_state=0).fit(X)
        model.set_params(tol=1.0).transform(X)  # tol met: no warning


@pytest.fixture(scope="module")
def gaussian():
    return np.random.default_rng(0).standard_normal((200, 16))


@pytest.mark.parametrize(
    "model",
    [
        LISTA(32, n_layers=4, max_iter=20, learning_rate=10, random_state=0),
        LISTA(32, n_layers=4, max_iter=20, learning_rate=1e3, random_state=0),
        SoftplusAdamDictionaryLearning(32, learning_rate=10, max_iter=50, random_state=0),
        SoftplusAdamDictionaryLearning(32, learning_rate=1e3, max_iter=50, random_state=0),
    ],
    ids=["lista-10", "lista-1e3", "softplus-10", "softplus-1e3"],
)
def test_divergence_raises_and_keeps_sane_parameters(gaussian, model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the inner dictionary learner of LISTA
        with pytest.raises(TrainingDivergedError, match=r"diverged at .*Lower learning_rate"):
            model.fit(gaussian)
        codes = model.transform(gaussian)
        assert np.all(np.isfinite(codes))
        assert np.isfinite(model.score(gaussian)) and model.score(gaussian) > -1.0
    np.testing.assert_allclose(np.linalg.norm(model.components_, axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("dictionary", [None, "given"])
def test_lista_with_an_overflowing_sample_raises(gaussian, dictionary):
    X = gaussian.copy()
    X[0, 0] = 1e300
    D = None if dictionary is None else np.random.default_rng(1).standard_normal((32, 16))
    with pytest.raises(ValueError, match=r"LISTA: max \|X\| = 1e\+300 is too far from unit scale: .* overflow.*rescale X"):
        LISTA(32, n_layers=4, dictionary=D, max_iter=3, random_state=0).fit(X)


@pytest.mark.parametrize("Estimator", [FISTADictionaryLearning, SoftplusAdamDictionaryLearning, LISTA])
def test_complex_dictionary_and_bad_codes_raise(gaussian, Estimator):
    name = "dictionary" if Estimator is LISTA else "dict_init"
    atoms = np.random.default_rng(1).standard_normal((8, 16)) * (1 + 1j)
    with pytest.raises(ValueError, match=f"{name} is complex"):
        Estimator(8, max_iter=1, **{name: atoms}).fit(gaussian)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = Estimator(8, max_iter=1, random_state=0).fit(gaussian)
    codes = np.ones((3, 8))
    with pytest.raises(ValueError, match="complex"):
        model.inverse_transform(codes * 1j)
    for bad in (np.nan, np.inf):
        codes[1, 2] = bad
        with pytest.raises(ValueError, match="NaN or infinity"):
            model.inverse_transform(codes)
    with pytest.raises(ValueError, match=r"shape \(n_samples, n_components=8\)"):
        model.inverse_transform(np.ones((3, 7)))
