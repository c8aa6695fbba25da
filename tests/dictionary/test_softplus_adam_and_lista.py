"""SoftplusAdamDictionaryLearning and LISTA: behaviour against ISTA/FISTA oracles."""

import numpy as np
import pytest

from skdict import LISTA, SoftplusAdamDictionaryLearning
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
