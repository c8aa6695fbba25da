"""Adam against a textbook transcription of Kingma & Ba (2015), Algorithm 1."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skdict.ops.adam import Adam


def reference_adam(theta0, grads, lr, *, beta1=0.9, beta2=0.999, eps=1e-8):
    """Textbook Adam: bias-corrected moments, eps added to sqrt(v_hat)."""
    theta = theta0.astype(np.float64).copy()
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    return theta


def gradient_sequence(shape, n_steps, rng):
    """Gradients bounded away from zero (|g| in [0.5, 2]) with random signs."""
    magnitude = rng.uniform(0.5, 2.0, (n_steps,) + shape)
    return magnitude * rng.choice([-1.0, 1.0], (n_steps,) + shape)


def run_adam(params0, grads, lrs, **kwargs):
    params = {name: value.copy() for name, value in params0.items()}
    opt = Adam(params, **kwargs)
    for step in range(len(next(iter(grads.values())))):
        opt.step(params, {name: g[step] for name, g in grads.items()}, lrs)
    return params, opt


N_STEPS = 12


def two_params(rng):
    params0 = {"W": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    grads = {
        "W": gradient_sequence((3, 4), N_STEPS, rng),
        "b": gradient_sequence((4,), N_STEPS, rng),
    }
    return params0, grads


@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.5, 0.9), (0.0, 0.99)])
def test_adam_equals_textbook_with_zero_eps(betas):
    rng = np.random.default_rng(0)
    params0, grads = two_params(rng)
    lrs = {"W": 0.01, "b": 0.003}
    beta1, beta2 = betas
    params, opt = run_adam(params0, grads, lrs, beta1=beta1, beta2=beta2, eps=0.0)
    assert opt.t == N_STEPS
    for name in params0:
        expected = reference_adam(params0[name], grads[name], lrs[name], beta1=beta1, beta2=beta2, eps=0.0)
        np.testing.assert_allclose(params[name], expected, rtol=1e-13, atol=1e-14)


def test_adam_matches_textbook_up_to_eps_placement():
    # The implementation adds eps to sqrt(v) rather than to sqrt(v_hat) (the paper's
    # "efficient" form): in textbook terms its eps is eps / sqrt(1 - beta2^t). Per
    # step the two updates differ by at most lr * |m_hat| / v_hat * eps / sqrt(1 - beta2^t),
    # and |m_hat| / v_hat <= 1 / min|g| = 2 for these gradients: an eps-level gap.
    rng = np.random.default_rng(1)
    params0, grads = two_params(rng)
    lrs = {"W": 0.01, "b": 0.1}
    eps, beta2 = 1e-8, 0.999
    params, _ = run_adam(params0, grads, lrs, eps=eps)
    eps_growth = sum(1 / np.sqrt(1 - beta2**t) for t in range(1, N_STEPS + 1))
    for name in params0:
        expected = reference_adam(params0[name], grads[name], lrs[name], eps=eps)
        moved = np.abs(expected - params0[name]).max()
        assert moved > 1e4 * lrs[name] * eps  # the steps themselves are far from eps-level
        gap = np.abs(params[name] - expected).max()
        assert gap <= 2 * lrs[name] * eps * eps_growth + 1e-15


def test_adam_first_step_has_size_lr():
    # classic property: the first update is -lr * sign(g), whatever |g| (exact for eps=0)
    g = np.array([1e-3, -2.0, 50.0, -0.1, 7.0])
    theta = {"x": np.zeros(5)}
    Adam(theta, eps=0.0).step(theta, {"x": g}, {"x": 0.05})
    np.testing.assert_allclose(theta["x"], -0.05 * np.sign(g), rtol=1e-14)
    theta = {"x": np.zeros(5)}
    Adam(theta).step(theta, {"x": g}, {"x": 0.05})
    # eps = 1e-8 shortens it by the factor |g| / (|g| + eps / sqrt(1 - beta2))
    shrink = np.abs(g) / (np.abs(g) + 1e-8 / np.sqrt(1 - 0.999))
    np.testing.assert_allclose(theta["x"], -0.05 * np.sign(g) * shrink, rtol=1e-12)


def test_adam_per_parameter_learning_rates():
    g = np.array([0.3, -1.0, 2.0])
    params = {"a": np.zeros(3), "b": np.zeros(3), "frozen": np.ones(3)}
    opt = Adam(params, eps=0.0)
    for _ in range(4):
        opt.step(params, {"a": g, "b": g, "frozen": g}, {"a": 1e-3, "b": 1e-1, "frozen": 0.0})
    np.testing.assert_allclose(params["b"], 100.0 * params["a"], rtol=1e-12)
    np.testing.assert_array_equal(params["frozen"], 1.0)
    for name in ("a", "b"):
        lr = {"a": 1e-3, "b": 1e-1}[name]
        np.testing.assert_allclose(params[name], reference_adam(np.zeros(3), [g] * 4, lr, eps=0.0), rtol=1e-13)


def test_adam_updates_in_place_and_keeps_float32():
    rng = np.random.default_rng(2)
    W = rng.standard_normal((3, 2)).astype(np.float32)
    params = {"W": W}
    opt = Adam(params)
    opt.step(params, {"W": rng.standard_normal((3, 2)).astype(np.float32)}, {"W": 0.01})
    assert params["W"] is W
    assert W.dtype == np.float32
    assert opt.m["W"].dtype == np.float32 and opt.v["W"].dtype == np.float32


def test_adam_float32_matches_textbook():
    rng = np.random.default_rng(3)
    theta0 = rng.standard_normal(6)
    grads = gradient_sequence((6,), N_STEPS, rng)
    params = {"x": theta0.astype(np.float32)}
    opt = Adam(params)
    for g in grads:
        opt.step(params, {"x": g.astype(np.float32)}, {"x": 0.01})
    expected = reference_adam(theta0.astype(np.float32), grads.astype(np.float32), 0.01)
    np.testing.assert_allclose(params["x"], expected, rtol=1e-5, atol=1e-6)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_dims=st.integers(1, 20))
def test_adam_minimises_convex_quadratic(seed, n_dims):
    # f(x) = 1/2 sum_i h_i (x_i - c_i)^2 with curvatures spanning two decades
    rng = np.random.default_rng(seed)
    h = rng.uniform(0.1, 10.0, n_dims)
    c = rng.normal(0.0, 3.0, n_dims)
    params = {"x": np.zeros(n_dims)}
    opt = Adam(params)

    def loss():
        return 0.5 * np.sum(h * (params["x"] - c) ** 2)

    initial = loss()
    n_steps = 1000
    for step in range(n_steps):
        opt.step(params, {"x": h * (params["x"] - c)}, {"x": 0.1 * (1 - step / n_steps)})
    assert loss() <= 1e-8 * max(initial, 1.0)
