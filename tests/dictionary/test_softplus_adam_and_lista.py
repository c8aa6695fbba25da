"""SoftplusAdamDictionaryLearning and LISTA: behaviour against ISTA/FISTA oracles."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

from skdict import LISTA, SoftplusAdamDictionaryLearning
from skdict.dictionary.softplus_adam import softplus, softplus_lasso_losses
from skdict.datasets import make_linear_representation_bench
from skdict.dictionary.lista import lista_forward
from skdict.metrics import gt_recovery
from skdict.ops.fista import fista


@pytest.fixture(scope="module")
def bench():
    X, features, _ = make_linear_representation_bench(1500, 32, 16, sparsity=0.95, max_coherence=0.4, random_state=0)
    return X, features


def test_softplus_adam_lowers_the_loss_and_finds_features(bench):
    X, features = bench
    model = SoftplusAdamDictionaryLearning(32, alpha=0.05, max_iter=1000, random_state=0).fit(X)
    loss = model.history_["loss"]
    assert loss[-1] < 0.3 * loss[0]
    np.testing.assert_allclose(np.linalg.norm(model.components_, axis=1), 1.0, rtol=1e-6)
    codes = model.transform(X[:100])
    assert codes.min() > 0  # softplus codes are positive
    start = SoftplusAdamDictionaryLearning(32, max_iter=1, random_state=0).fit(X)
    assert gt_recovery(features, start.components_, 0.9) < 0.5
    assert gt_recovery(features, model.components_, 0.9) >= 0.9
    # transform optimises each sample on its own: a subset gets the same codes
    np.testing.assert_allclose(model.transform(X[:10]), codes[:10], rtol=1e-10)


@pytest.mark.parametrize("positive", [False, True])
def test_lista_starts_as_ista(bench, positive):
    X, features = bench
    model = LISTA(32, n_layers=5, dictionary=features, alpha=0.1, positive=positive, max_iter=1)
    model.fit(X[:10])
    G, L = model._initialize(X[:10], model.components_)  # back to the ISTA weights
    ista, n_iter = fista(X, features, 0.1, positive=positive, max_iter=5, tol=0, momentum=False)
    assert n_iter == 5
    np.testing.assert_allclose(lista_forward(X, model._params(), positive=positive)[0], ista, atol=1e-12)


def test_lista_beats_ista_with_the_same_number_of_layers(bench):
    X, features = bench
    train, test = X[:1200], X[1200:]
    alpha, n_layers = 0.1, 4
    model = LISTA(32, n_layers=n_layers, dictionary=features, alpha=alpha, learning_rate=3e-3, max_iter=30, random_state=0)
    model.fit(train)
    target, _ = fista(test, features, alpha, max_iter=2000, tol=1e-10)
    ista, _ = fista(test, features, alpha, max_iter=n_layers, tol=0, momentum=False)
    lista_error = np.mean((model.transform(test) - target) ** 2)
    ista_error = np.mean((ista - target) ** 2)
    assert lista_error < 0.5 * ista_error
    assert model.history_["loss"][-1] < model.history_["loss"][0]


def test_lista_learns_its_dictionary_when_none_is_given(bench):
    X, _ = bench
    model = LISTA(8, n_layers=2, alpha=0.1, max_iter=2, random_state=0).fit(X[:300])
    assert model.components_.shape == (8, 16)
    assert model.mutual_weights_.shape == (1, 8, 8) and model.thresholds_.shape == (2, 8)
    with pytest.raises(ValueError, match="dictionary must have shape"):
        LISTA(8, dictionary=np.ones((16, 8))).fit(X[:300])


@settings(max_examples=15, deadline=None)
@given(exponent=st.one_of(st.integers(-990, -9), st.integers(9, 1000)))
def test_softplus_adam_scaling_law_beyond_unit_scale(exponent):
    """Beyond RMS 2^+-8 the fit runs on 2^-e X with 2^-e alpha: fit(2^k X, 2^k alpha) learns the atoms of unit-RMS
    data and its codes are 2^k times theirs (at 1e10 it stopped after 2 steps with all-zero codes, EV -0.006)."""
    X = np.random.default_rng(0).standard_normal((40, 6))  # RMS ~ 1: trained as given
    make = lambda alpha: SoftplusAdamDictionaryLearning(8, alpha=alpha, max_iter=20, transform_max_iter=10, random_state=0)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("error", RuntimeWarning)
        unit = make(0.1).fit(X)
        scaled = make(math.ldexp(0.1, exponent)).fit(np.ldexp(X, exponent))
        np.testing.assert_array_equal(scaled.components_, unit.components_)
        np.testing.assert_array_equal(np.ldexp(scaled.transform(np.ldexp(X, exponent)), -exponent), unit.transform(X))


def test_softplus_adam_transform_keeps_each_rows_best_iterate(bench):
    """With a learning_rate that makes Adam diverge, each row's codes are no worse than the start's
    (softplus(-3) everywhere), finite, and a ConvergenceWarning names learning_rate (codes were 1e300)."""
    X, _ = bench
    model = SoftplusAdamDictionaryLearning(16, max_iter=20, transform_max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    model.set_params(learning_rate=1e300)
    with pytest.warns(ConvergenceWarning, match="lower learning_rate"):
        codes = model.transform(X[:50])
    start = np.full_like(codes, softplus(-3.0))
    D, alpha = model.components_, model.alpha
    assert np.all(np.isfinite(codes))
    assert np.all(softplus_lasso_losses(X[:50], codes, D, alpha) <= softplus_lasso_losses(X[:50], start, D, alpha))


@pytest.mark.parametrize(
    "make, name, value",
    [
        (lambda: LISTA(8, n_layers=2, max_iter=2, random_state=0), "positive", "yes"),
        (lambda: SoftplusAdamDictionaryLearning(8, max_iter=5, transform_max_iter=5, random_state=0), "tol", -1.0),
    ],
)
def test_transform_validates_the_parameters_it_reads(bench, make, name, value):
    """set_params after fit is checked where transform reads the parameter (LISTA took positive='yes' as True)."""
    X, _ = bench
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = make().fit(X[:200])
    model.set_params(**{name: value})
    with pytest.raises(ValueError, match=f"'{name}' parameter"):
        model.transform(X[:10])
