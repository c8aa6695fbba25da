"""Finite-difference checks (float64, tiny sizes) of the hand-written gradients of the dictionary learners."""

import numpy as np
import pytest

from skdict.dictionary.lista import lista_backward, lista_forward
from skdict.dictionary.softplus_adam import softplus_lasso_loss_and_grads


def numerical_gradient(loss, value, eps=1e-6):
    grad = np.zeros_like(value)
    for index in np.ndindex(value.shape):
        saved = value[index]
        value[index] = saved + eps
        up = loss()
        value[index] = saved - eps
        down = loss()
        value[index] = saved
        grad[index] = (up - down) / (2 * eps)
    return grad


def test_softplus_lasso_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 4))
    pre_codes = rng.standard_normal((5, 6))
    D = rng.standard_normal((6, 4))
    alpha = 0.3
    _, grad_codes, grad_D = softplus_lasso_loss_and_grads(X, pre_codes, D, alpha)
    loss = lambda: softplus_lasso_loss_and_grads(X, pre_codes, D, alpha)[0]  # noqa: E731
    np.testing.assert_allclose(grad_codes, numerical_gradient(loss, pre_codes), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(grad_D, numerical_gradient(loss, D), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("positive", [False, True])
def test_lista_gradients_match_finite_differences(positive):
    rng = np.random.default_rng(1)
    n_samples, n_features, n_components, n_layers = 6, 4, 5, 3
    X = rng.standard_normal((n_samples, n_features))
    params = {
        "W_e": rng.standard_normal((n_features, n_components)) * 0.5,
        "S": rng.standard_normal((n_layers - 1, n_components, n_components)) * 0.3,
        "theta": rng.uniform(0.05, 0.3, (n_layers, n_components)),
    }
    target = rng.standard_normal((n_samples, n_components))

    def loss():
        codes = lista_forward(X, params, positive=positive)[0]
        return 0.5 * np.sum((codes - target) ** 2)

    codes, pre, layer_codes = lista_forward(X, params, positive=positive)
    # no pre-threshold sits within the finite-difference step of a kink
    assert min(np.min(np.abs(np.abs(v) - t)) for v, t in zip(pre, params["theta"], strict=True)) > 1e-4
    assert np.count_nonzero(codes) > 0
    grads = lista_backward(X, params, pre, layer_codes, codes - target, positive=positive)
    for name in ("W_e", "S", "theta"):
        np.testing.assert_allclose(grads[name], numerical_gradient(loss, params[name]), rtol=1e-5, atol=1e-7)
