"""The low-rank solver: hand-written gradient against finite differences, the scale pin, and recovery."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skdict import TripletFeatureLearner
from skdict.datasets import make_triplet_feedback
from skdict.metrics import feature_matrix_pcc
from skdict.triplets._comparisons import triplet_differences
from skdict.triplets._lowrank_solver import LowRankSolver, lowrank_objective


def _mixed_problem(seed, n=12, p=5, r=3, margin=0.3):
    """Random triplets, half equalities and half labelled, with no hinge within 1e-3 of its kink."""
    rng = np.random.default_rng(seed)
    T = rng.standard_normal((n, 3, p))
    U = rng.standard_normal((p, r))
    labels = rng.choice([-1.0, 0.0, 1.0], size=n)
    A, B, inverse_scale = triplet_differences(T)
    s = (np.sum((B @ U) ** 2, axis=1) - np.sum((A @ U) ** 2, axis=1)) * inverse_scale
    near_kink = (labels != 0) & (np.abs(margin - labels * s) < 1e-3)
    labels[near_kink] = 0.0
    return U, A, B, inverse_scale, labels


@settings(deadline=None, max_examples=10)
@given(st.integers(0, 2**31 - 1), st.sampled_from([0.0, 1e-2, 1.0]))
def test_gradient_matches_finite_differences(seed, alpha):
    margin = 0.3
    U, A, B, inverse_scale, labels = _mixed_problem(seed, margin=margin)
    loss, grad = lowrank_objective(U, A, B, inverse_scale, labels, margin=margin, alpha=alpha)
    eps = 1e-6
    numeric = np.zeros_like(U)
    for index in np.ndindex(*U.shape):
        shift = np.zeros_like(U)
        shift[index] = eps
        plus = lowrank_objective(U + shift, A, B, inverse_scale, labels, margin=margin, alpha=alpha)[0]
        minus = lowrank_objective(U - shift, A, B, inverse_scale, labels, margin=margin, alpha=alpha)[0]
        numeric[index] = (plus - minus) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)


def test_objective_by_hand():
    # One equality and one labelled triplet in 1-D with U = [[u]]: s = u^2 (b^2 - a^2) / (a^2 + b^2).
    A = np.array([[1.0], [1.0]])
    B = np.array([[2.0], [3.0]])
    inverse_scale = 1 / (A[:, 0] ** 2 + B[:, 0] ** 2)
    labels = np.array([0.0, -1.0])
    u = 0.5
    s = u**2 * (B[:, 0] ** 2 - A[:, 0] ** 2) * inverse_scale
    expected = (s[0] ** 2 + max(0.0, 0.1 + s[1])) / 2 + 0.2 / 1 * u**4
    loss, _ = lowrank_objective(np.array([[u]]), A, B, inverse_scale, labels, margin=0.1, alpha=0.2)
    assert loss == pytest.approx(expected)


@settings(deadline=None, max_examples=10)
@given(st.integers(0, 2**31 - 1))
def test_objective_is_invariant_to_rotations_of_the_factor(seed):
    U, A, B, inverse_scale, labels = _mixed_problem(seed)
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((U.shape[1],) * 2))
    loss, grad = lowrank_objective(U, A, B, inverse_scale, labels, margin=0.3, alpha=0.1)
    loss_q, grad_q = lowrank_objective(U @ Q, A, B, inverse_scale, labels, margin=0.3, alpha=0.1)
    assert loss_q == pytest.approx(loss, rel=1e-10)
    np.testing.assert_allclose(grad_q, grad @ Q, atol=1e-10)


def test_scale_pin_holds_after_solving():
    rng = np.random.default_rng(0)
    p = 6
    T = rng.random((50, 3, p))
    A, B, inverse_scale = triplet_differences(T)
    solver = LowRankSolver(
        rank=2, alpha=1e-4, margin=0.01, learning_rate=0.05, batch_size=16, max_iter=5,
        tol=0.0, n_iter_no_change=100, max_grad_norm=1.0, verbose=0,
    )
    U = solver.initial_factor(p, np.float64, np, np.random.RandomState(0))
    assert np.sum(U * U) == pytest.approx(p)
    U, n_iter, losses = solver.solve(A, B, inverse_scale, np.zeros(50), U, np.random.RandomState(0))
    assert np.sum(U * U) == pytest.approx(p)
    assert n_iter == 5 and len(losses) == 5


def test_lowrank_recovers_phi_from_sampled_sparse_equalities():
    # The "must show": p = 64, rank 8, 3 p (p + 1) / 2 sampled sparse equalities, PCC >= 0.95.
    rng = np.random.default_rng(0)
    p, r = 64, 8
    D = rng.standard_normal((r, p))
    Phi = D.T @ D
    T, y = make_triplet_feedback(Phi, 3 * p * (p + 1) // 2, kind="equality", sparsity=0.5, random_state=0)
    est = TripletFeatureLearner(solver="lowrank", rank=r, random_state=1).fit(T, y)  # a seed unrelated to the data's
    assert est.solver_ == "lowrank" and est.rank_ == r
    assert feature_matrix_pcc(Phi, est.feature_matrix_) >= 0.95
    assert est.loss_curve_[-1] < est.loss_curve_[0]


def test_lowrank_is_deterministic_given_the_seed():
    rng = np.random.default_rng(1)
    D = rng.standard_normal((2, 6))
    T, y = make_triplet_feedback(D.T @ D, 200, kind="comparison", random_state=1)
    first = TripletFeatureLearner(solver="lowrank", rank=2, max_iter=5, random_state=3).fit(T, y)
    second = TripletFeatureLearner(solver="lowrank", rank=2, max_iter=5, random_state=3).fit(T, y)
    np.testing.assert_array_equal(first.feature_matrix_, second.feature_matrix_)


@settings(max_examples=25, deadline=None)
@given(exponent=st.integers(-1000, 1000), spread=st.integers(0, 300))
def test_contrasts_are_scale_blind_at_every_power_of_two(exponent, spread):
    """s(tx, ty, tz) = s(x, y, z): triplets at 2^k (and differences 2^-spread of the values) keep their contrasts under
    Phi = I; at 1e200 / 1e-300 the squared norms over/underflowed and every triplet was called x = y = z."""
    rng = np.random.default_rng(0)
    T = rng.standard_normal((20, 3, 5))
    T[:, 1:] = T[:, :1] + np.ldexp(rng.standard_normal((20, 2, 5)), -spread)  # y, z close to x
    A, B, inverse_scale = triplet_differences(T)
    contrasts = (np.sum(B * B, axis=1) - np.sum(A * A, axis=1)) * inverse_scale
    scaled = np.ldexp(T, exponent)
    if not np.all(np.isfinite(scaled)) or np.any((scaled != 0) & (np.abs(scaled) < np.finfo(float).tiny)):
        return  # beyond the float range, or subnormal (precision already lost in the input)
    A, B, inverse_scale = triplet_differences(scaled)
    np.testing.assert_allclose((np.sum(B * B, axis=1) - np.sum(A * A, axis=1)) * inverse_scale, contrasts, atol=1e-12)


def test_divergence_keeps_the_last_sane_factor():
    """learning_rate=1e300 without clipping: TrainingDivergedError (was overflow warnings, then 'x = y = z'),
    and the model keeps a finite, unit-norm feature matrix."""
    from skdict import TrainingDivergedError

    D = np.random.default_rng(0).standard_normal((2, 6))
    T, y = make_triplet_feedback(D.T @ D, 200, kind="comparison", random_state=0)
    model = TripletFeatureLearner(solver="lowrank", rank=2, learning_rate=1e300, max_grad_norm=None, max_iter=5, random_state=1)
    with pytest.raises(TrainingDivergedError, match="Lower learning_rate"):
        model.fit(T, y)
    assert np.all(np.isfinite(model.feature_matrix_))
    np.testing.assert_allclose(np.linalg.norm(model.feature_matrix_), 1.0)
