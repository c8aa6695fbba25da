"""Working-set FISTA: scikit-learn's Lasso as oracle, the certified full duality gap, plain FISTA as reference."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso

import skdict.ops.working_set as working_set_module
from skdict.ops.fista import duality_gap, fista, lasso_objective, lipschitz_constant
from skdict.ops.working_set import GramBlocks, next_size, size_classes, working_set_fista

# Working sets from 2 atoms up to all of them: forces the growth rounds on small problems.
GROWING = dict(initial_size=2, dense_above=1.0)


def problem(n_samples=20, n_components=60, n_features=20, n_active=8, seed=0, dtype=np.float64):
    """Unit atoms; every sample a combination of ``n_active`` atoms plus 5% noise."""
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n_components, n_features))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    codes = np.zeros((n_samples, n_components))
    for n in range(n_samples):
        codes[n, rng.choice(n_components, n_active, replace=False)] = rng.standard_normal(n_active)
    X = codes @ D + 0.05 * rng.standard_normal((n_samples, n_features))
    return X.astype(dtype), D.astype(dtype)


def lasso_reference(X, D, alpha, positive):
    """scikit-learn's coordinate descent at a tight tolerance (its alpha is ours / n_features)."""
    lasso = Lasso(alpha=alpha / D.shape[1], fit_intercept=False, positive=positive, tol=1e-14, max_iter=1_000_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return np.stack([lasso.fit(D.T.astype(np.float64), x).coef_.copy() for x in X.astype(np.float64)])


def assert_certified(X, D, codes, alpha, positive, tol):
    gap, primal = duality_gap(X.astype(np.float64), D.astype(np.float64), codes.astype(np.float64), alpha,
                              positive=positive)
    assert np.all(gap <= tol * primal * (1 + 1e-6) + 1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("positive", [False, True])
def test_matches_sklearn_lasso_where_the_working_set_must_grow(positive, dtype):
    X, D = problem(seed=1, dtype=dtype)
    # float32 rounding floors the gap near 3e-5 here, for plain FISTA too
    alpha, tol = 0.02, (1e-9 if dtype == np.float64 else 1e-4)
    oracle = lasso_reference(X, D, alpha, positive)
    # the optimal supports exceed the first working set (8 atoms): every such row had to grow
    assert (np.count_nonzero(oracle, axis=1) > 8).sum() >= 3
    codes, n_iter = working_set_fista(X, D, alpha, positive=positive, tol=tol, max_iter=20_000, **GROWING)
    assert codes.dtype == dtype and 1 <= n_iter < 20_000
    ours = lasso_objective(X.astype(np.float64), D.astype(np.float64), codes.astype(np.float64), alpha)
    theirs = lasso_objective(X.astype(np.float64), D.astype(np.float64), oracle, alpha)
    assert np.all(ours <= theirs * (1 + 2 * tol) + 1e-12)
    assert_certified(X, D, codes, alpha, positive, 2 * tol if dtype == np.float32 else tol)
    if dtype == np.float64:
        np.testing.assert_allclose(codes, oracle, atol=1e-4)
    if positive:
        assert codes.min() >= 0


@pytest.mark.parametrize("momentum", [True, False])
def test_agrees_with_plain_fista_within_the_tolerance(momentum):
    X, D = problem(n_samples=30, seed=2)
    alpha, tol = 0.05, 1e-6
    plain, _ = fista(X, D, alpha, tol=tol, max_iter=50_000, momentum=momentum)
    ours, _ = working_set_fista(X, D, alpha, tol=tol, max_iter=50_000, momentum=momentum, **GROWING)
    plain_objective, ours_objective = lasso_objective(X, D, plain, alpha), lasso_objective(X, D, ours, alpha)
    np.testing.assert_allclose(ours_objective, plain_objective, rtol=2 * tol)
    assert_certified(X, D, ours, alpha, False, tol)


@settings(deadline=None, max_examples=12)
@given(
    seed=st.integers(0, 10_000),
    alpha=st.floats(0.005, 0.5),
    positive=st.booleans(),
    initial_size=st.integers(1, 40),
    dense_above=st.sampled_from([0.2, 0.5, 1.0]),
    tol=st.sampled_from([1e-3, 1e-6]),
)
def test_every_row_is_certified_on_all_atoms(seed, alpha, positive, initial_size, dense_above, tol):
    """Whatever the sizes, every returned row has a full relative duality gap <= tol (the stopping guarantee)."""
    X, D = problem(n_samples=12, n_components=48, n_features=16, n_active=6, seed=seed)
    codes, n_iter = working_set_fista(X, D, alpha, positive=positive, tol=tol, max_iter=100_000,
                                      initial_size=initial_size, dense_above=dense_above)
    assert n_iter < 100_000
    assert_certified(X, D, codes, alpha, positive, tol)


def test_dense_finish_for_rows_whose_working_set_grows_too_large():
    """dense_above = 1/4 of 64 atoms caps working sets at 16; supports above that are finished by plain FISTA."""
    X, D = problem(n_samples=16, n_components=64, n_features=32, n_active=20, seed=3)
    alpha = 0.01
    oracle = lasso_reference(X, D, alpha, False)
    assert (np.count_nonzero(oracle, axis=1) > 16).any()
    codes, _ = working_set_fista(X, D, alpha, tol=1e-9, max_iter=100_000, initial_size=4, dense_above=0.25)
    assert_certified(X, D, codes, alpha, False, 1e-9)
    np.testing.assert_allclose(codes, oracle, atol=1e-4)


def test_working_set_of_all_atoms_is_the_full_problem():
    """p >= m: the first working set is every atom (padded to a power of two, then cut at m)."""
    X, D = problem(n_samples=10, n_components=10, n_features=6, n_active=3, seed=4)
    assert size_classes(np.array([16]), 10).tolist() == [10]
    codes, _ = working_set_fista(X, D, 0.05, tol=1e-10, max_iter=50_000, initial_size=16, dense_above=1.0)
    np.testing.assert_allclose(codes, lasso_reference(X, D, 0.05, False), atol=1e-5)


def test_small_dictionaries_and_uncertifiable_settings_use_plain_fista():
    X, D = problem(n_samples=15, n_components=60, seed=5)
    plain, n_plain = fista(X, D, 0.05, tol=1e-6, max_iter=3000)
    ours, n_ours = working_set_fista(X, D, 0.05, tol=1e-6, max_iter=3000)  # 16 atoms > 60 / 8: plain
    np.testing.assert_array_equal(ours, plain)
    assert n_ours == n_plain
    for kwargs in (dict(tol=0, max_iter=40), dict(tol=1e-6, max_iter=40)):
        alpha = 0.0 if kwargs["tol"] else 0.05  # alpha = 0 (least squares) and tol = 0: nothing to certify
        plain, _ = fista(X, D, alpha, **kwargs)
        ours, _ = working_set_fista(X, D, alpha, **kwargs, **GROWING)
        np.testing.assert_array_equal(ours, plain)


def test_all_zero_solution_returns_at_once():
    X, D = problem(seed=6)
    alpha = 1.01 * np.abs(X @ D.T).max()
    codes, n_iter = working_set_fista(X, D, alpha, tol=1e-8, **GROWING)
    assert n_iter == 0 and not codes.any()
    # positive: only the largest positive correlation matters
    alpha = 1.01 * (X @ D.T).max()
    codes, n_iter = working_set_fista(X, D, alpha, positive=True, tol=1e-8, **GROWING)
    assert n_iter == 0 and not codes.any()


def test_warm_start():
    X, D = problem(n_samples=25, seed=7)
    near, _ = working_set_fista(X, D, 0.03, tol=1e-10, max_iter=50_000, **GROWING)
    cold, n_cold = working_set_fista(X, D, 0.025, tol=1e-10, max_iter=50_000, **GROWING)
    warm, n_warm = working_set_fista(X, D, 0.025, tol=1e-10, max_iter=50_000, init=near, **GROWING)
    assert n_warm < n_cold
    np.testing.assert_allclose(lasso_objective(X, D, warm, 0.025), lasso_objective(X, D, cold, 0.025), rtol=1e-9)
    # a start that is already certified is returned as it is, without an iteration
    again, n_again = working_set_fista(X, D, 0.025, tol=1e-10, max_iter=50_000, init=cold, **GROWING)
    assert n_again == 0
    np.testing.assert_array_equal(again, cold)


def test_max_iter_bounds_the_iterations_of_every_row():
    X, D = problem(seed=8)
    for max_iter in (1, 7, 30):
        _, n_iter = working_set_fista(X, D, 0.01, tol=1e-14, max_iter=max_iter, **GROWING)
        assert 1 <= n_iter <= max_iter


def test_a_row_without_violators_is_not_stalled_by_round_restarts():
    # ill-conditioned restricted problems (more atoms in W than features): cutting their solve into restarted
    # 500-iteration rounds stalled row 18 at a gap 14000x tol; it must be certified well within max_iter
    X, D = problem(n_samples=20, seed=5)
    codes, n_iter = working_set_fista(X, D, 0.02, tol=1e-9, max_iter=20_000, initial_size=2, dense_above=1.0)
    assert n_iter < 20_000
    assert_certified(X, D, codes, 0.02, False, 1e-9)


def test_positive_codes_from_a_signed_warm_start_are_feasible():
    X, D = problem(n_samples=12, seed=6)
    signed, _ = fista(X, D, 0.05, tol=1e-10, max_iter=20_000)
    assert signed.min() < 0
    codes, _ = working_set_fista(X, D, 0.05, positive=True, init=signed, tol=1e-6, max_iter=20_000,
                                 initial_size=2, dense_above=1.0)
    assert codes.min() >= 0
    assert_certified(X, D, codes, 0.05, True, 1e-6)


def test_gram_blocks_are_the_restricted_lasso():
    """Gradient step and gap of GramBlocks equal those of the lasso on the dictionary D[W_n], row by row."""
    X, D = problem(n_samples=6, n_components=30, n_features=12, seed=9)
    rng = np.random.default_rng(0)
    W = np.stack([np.sort(rng.choice(30, 7, replace=False)) for _ in range(6)])
    u = rng.standard_normal((6, 7)) * (rng.random((6, 7)) < 0.6)
    G, L, alpha = D @ D.T, lipschitz_constant(D), 0.1
    blocks = GramBlocks(G, X @ D.T, W, np.sum(X * X, axis=1), alpha, L)
    stepped = np.empty_like(u)
    blocks.gradient_step(u, stepped)
    gap, primal = blocks.gap(u)
    for n in range(6):
        D_n = D[W[n]]
        L_n = 1.0 / blocks.step[n, 0]
        assert np.linalg.eigvalsh(D_n @ D_n.T)[-1] <= L_n * (1 + 1e-12) and L_n <= L * (1 + 1e-12)
        gradient = (u[n] @ D_n - X[n]) @ D_n.T
        np.testing.assert_allclose(stepped[n], u[n] - gradient / L_n, rtol=1e-12, atol=1e-12)
        gap_n, primal_n = duality_gap(X[n : n + 1], D_n, u[n : n + 1], alpha)
        np.testing.assert_allclose([gap[n], primal[n]], [gap_n[0], primal_n[0]], rtol=1e-10, atol=1e-12)


def test_next_size_adds_violators_at_most_doubling():
    codes = np.array([[1.0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0], [1.0, 2.0, 0, 0, 0, 0]])
    violation = np.array([[0.5, 2.0, 0.05, 3.0, 0.2, 0.0], [2.0, 2.0, 2.0, 2.0, 2.0, 0.0], [0, 0, 0, 0, 0, 0]])
    need, n_violators = next_size(codes, violation, alpha=0.1, minimum=2)
    assert n_violators.tolist() == [3, 5, 0]
    assert need.tolist() == [1 + 2, 0 + 2, 2 + 0]
    assert size_classes(np.array([1, 9, 16, 17, 300]), 64).tolist() == [8, 16, 16, 32, 64]


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(initial_size=0), "initial_size"), (dict(dense_above=0.0), "dense_above"), (dict(tol=-1), "tol")],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    X, D = problem()
    with pytest.raises(ValueError, match=message):
        working_set_fista(X, D, 0.1, **kwargs)


def test_row_blocks_of_gram_blocks_do_not_change_the_codes(monkeypatch):
    X, D = problem(n_samples=30, seed=10)
    whole, _ = working_set_fista(X, D, 0.02, tol=1e-8, max_iter=20_000, **GROWING)
    monkeypatch.setattr(working_set_module, "_BLOCK_ELEMENTS", 3 * 16 * 16)  # 3 rows of 16 atoms at a time
    blocked, _ = working_set_fista(X, D, 0.02, tol=1e-8, max_iter=20_000, **GROWING)
    np.testing.assert_allclose(blocked, whole, rtol=1e-9, atol=1e-10)


@pytest.mark.gpu
@pytest.mark.parametrize("positive", [False, True])
def test_working_set_on_gpu_matches_numpy(positive):
    import cupy

    X, D = problem(n_samples=40, n_components=64, n_features=24, seed=11)
    codes, _ = working_set_fista(X, D, 0.03, positive=positive, tol=1e-10, max_iter=20_000, **GROWING)
    codes_gpu, _ = working_set_fista(cupy.asarray(X), cupy.asarray(D), 0.03, positive=positive, tol=1e-10,
                                     max_iter=20_000, **GROWING)
    assert isinstance(codes_gpu, cupy.ndarray) and codes_gpu.dtype == np.float64
    np.testing.assert_allclose(cupy.asnumpy(codes_gpu), codes, atol=1e-7)
    X32, D32 = cupy.asarray(X, dtype=cupy.float32), cupy.asarray(D, dtype=cupy.float32)
    codes32, _ = working_set_fista(X32, D32, 0.03, positive=positive, tol=1e-4, max_iter=20_000, **GROWING)
    assert codes32.dtype == np.float32
    np.testing.assert_allclose(cupy.asnumpy(codes32), codes, atol=1e-3)


@pytest.mark.parametrize("max_iter", [4, 5000])
def test_return_info_matches_the_full_gap_of_the_returned_codes(max_iter):
    """Working sets: the certificate and relative gap of every row, from the full duality gap."""
    X, D = problem(n_samples=15, seed=4)
    tol = 1e-7
    codes, n_iter = working_set_fista(X, D, 0.1, max_iter=max_iter, tol=tol, **GROWING)
    same, info = working_set_fista(X, D, 0.1, max_iter=max_iter, tol=tol, return_info=True, **GROWING)
    np.testing.assert_array_equal(same, codes)
    assert info.n_iter == n_iter
    gap, primal = duality_gap(X, D, codes, 0.1)
    np.testing.assert_allclose(info.relative_gap, gap / primal, rtol=1e-5, atol=1e-12)
    assert info.converged.all() == (max_iter == 5000)
    np.testing.assert_array_equal(info.converged, info.relative_gap <= tol)
    assert (info.iterations[~info.converged] >= max_iter).all()
