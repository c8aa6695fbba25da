"""FISTA / ISTA lasso codes: scikit-learn's lasso_cd as oracle, KKT conditions, laws of the iteration."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.decomposition import sparse_encode

import skdict.ops.fista as fista_module
from skdict.ops.fista import duality_gap, fista, lasso_objective, lipschitz_constant, soft_threshold


def problem(n_samples=12, n_components=10, n_features=8, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n_components, n_features))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.standard_normal((n_samples, n_features))
    return X.astype(dtype), D.astype(dtype)


def kkt_violation(X, D, codes, alpha, positive):
    """Largest violation of the lasso optimality conditions, relative to alpha."""
    correlation = (X - codes @ D) @ D.T  # minus the gradient of the smooth part
    active = codes != 0
    if positive:
        on_support = np.abs(correlation[active] - alpha)
        off_support = np.maximum(correlation[~active] - alpha, 0)
    else:
        on_support = np.abs(correlation[active] - alpha * np.sign(codes[active]))
        off_support = np.maximum(np.abs(correlation[~active]) - alpha, 0)
    return max(on_support.max(initial=0), off_support.max(initial=0)) / alpha


@pytest.mark.parametrize("positive", [False, True])
def test_fista_matches_sklearn_lasso_cd(positive):
    X, D = problem(seed=1)
    alpha = 0.3
    codes, n_iter = fista(X, D, alpha, positive=positive, max_iter=5000, tol=1e-12)
    oracle = sparse_encode(X, D, algorithm="lasso_cd", alpha=alpha, positive=positive, max_iter=10000)
    ours, theirs = lasso_objective(X, D, codes, alpha), lasso_objective(X, D, oracle, alpha)
    np.testing.assert_allclose(ours, theirs, rtol=1e-8)
    np.testing.assert_allclose(codes, oracle, atol=1e-5)
    assert 1 <= n_iter < 5000
    if positive:
        assert codes.min() >= 0
    assert np.count_nonzero(codes) < codes.size  # alpha is large enough to zero some codes


@pytest.mark.parametrize("positive", [False, True])
def test_fista_solution_satisfies_kkt(positive):
    X, D = problem(n_samples=20, n_components=16, n_features=10, seed=2)
    alpha = 0.2
    codes, _ = fista(X, D, alpha, positive=positive, max_iter=10000, tol=1e-13)
    assert kkt_violation(X, D, codes, alpha, positive) < 1e-6
    assert np.count_nonzero(codes) > 0


def test_positive_codes_nonnegative_even_early():
    X, D = problem(seed=3)
    for max_iter in (1, 2, 5, 50):
        codes, _ = fista(X, D, 0.05, positive=True, max_iter=max_iter, tol=0)
        assert codes.min() >= 0


@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 10_000), alpha=st.floats(0.01, 1.0), positive=st.booleans())
def test_ista_objective_never_increases(seed, alpha, positive):
    """ISTA with step 1/L is a majorise-minimise scheme: every iteration lowers the objective."""
    X, D = problem(n_samples=5, n_components=9, n_features=6, seed=seed)
    previous = lasso_objective(X, D, np.zeros((5, 9)), alpha)
    for max_iter in range(1, 15):
        codes, n_iter = fista(X, D, alpha, positive=positive, max_iter=max_iter, tol=0, momentum=False)
        assert n_iter == max_iter
        current = lasso_objective(X, D, codes, alpha)
        assert np.all(current <= previous * (1 + 1e-12) + 1e-12)
        previous = current


def test_fista_objective_approaches_optimum_and_beats_ista():
    """On an ill-conditioned dictionary FISTA's gap after k steps is below ISTA's, and shrinks with k."""
    rng = np.random.default_rng(4)
    D = rng.standard_normal((30, 20)) * np.geomspace(1, 0.02, 20)  # condition number ~ 50 on the columns
    X = rng.standard_normal((10, 20))
    alpha = 0.01
    optimum = lasso_objective(X, D, fista(X, D, alpha, max_iter=20000, tol=1e-12)[0], alpha).sum()
    gaps = []
    for k in (20, 80, 320):
        accelerated = lasso_objective(X, D, fista(X, D, alpha, max_iter=k, tol=0)[0], alpha).sum() - optimum
        plain = lasso_objective(X, D, fista(X, D, alpha, max_iter=k, tol=0, momentum=False)[0], alpha).sum() - optimum
        assert accelerated >= -1e-9 and plain >= -1e-9
        assert accelerated < plain
        gaps.append(accelerated)
    assert gaps[0] > gaps[1] > gaps[2]


def test_fista_needs_fewer_iterations_than_ista_and_restart_helps():
    rng = np.random.default_rng(5)
    D = rng.standard_normal((30, 20)) * np.geomspace(1, 0.05, 20)  # ill-conditioned
    X = rng.standard_normal((10, 20))
    alpha, tol = 0.1, 1e-6
    optimum = lasso_objective(X, D, fista(X, D, alpha, max_iter=20000, tol=1e-13)[0], alpha)
    _, n_ista = fista(X, D, alpha, momentum=False, max_iter=5000, tol=tol)
    assert n_ista == 5000  # ISTA has not met the criterion yet
    n_iters = []
    for restart in (False, True):
        codes, n_iter = fista(X, D, alpha, restart=restart, max_iter=20000, tol=tol)
        objective = lasso_objective(X, D, codes, alpha)
        assert np.all(objective - optimum <= tol * objective)  # the duality gap certifies the accuracy
        n_iters.append(n_iter)
    assert n_iters[1] < n_ista < n_iters[0] < 20000  # plain FISTA converges but oscillates; restart removes that


@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 10_000), alpha=st.floats(0.01, 1.0), positive=st.booleans(), spread=st.floats(0, 3))
def test_duality_gap_bounds_the_suboptimality(seed, alpha, positive, spread):
    X, D = problem(n_samples=6, n_components=9, n_features=5, seed=seed)
    optimum = lasso_objective(X, D, fista(X, D, alpha, positive=positive, max_iter=20000, tol=1e-13)[0], alpha)
    rng = np.random.default_rng(seed + 1)
    codes = rng.standard_normal((6, 9)) * spread
    if positive:
        codes = np.abs(codes)
    gap, primal = duality_gap(X, D, codes, alpha, positive=positive)
    np.testing.assert_allclose(primal, lasso_objective(X, D, codes, alpha), rtol=1e-12)
    assert np.all(gap >= primal - optimum - 1e-9 * (1 + primal))


def test_duality_gap_vanishes_at_the_optimum():
    X, D = problem(seed=17)
    codes, _ = fista(X, D, 0.1, max_iter=20000, tol=1e-14)
    gap, primal = duality_gap(X, D, codes, 0.1)
    assert np.all(gap <= 1e-12 * primal)


def test_warm_start_converges_in_fewer_iterations():
    X, D = problem(n_samples=30, n_components=20, n_features=12, seed=6)
    kwargs = dict(max_iter=10000, tol=1e-9)
    near, _ = fista(X, D, 0.11, **kwargs)
    init = near.copy()
    cold, n_cold = fista(X, D, 0.1, **kwargs)
    warm, n_warm = fista(X, D, 0.1, init=init, **kwargs)
    assert n_warm < n_cold
    np.testing.assert_array_equal(init, near)  # init is not modified
    np.testing.assert_allclose(warm, cold, atol=1e-6)
    # starting at the solution stops after one iteration
    _, n_again = fista(X, D, 0.1, init=cold, max_iter=10000, tol=1e-6)
    assert n_again == 1


def test_codes_of_a_sample_do_not_depend_on_the_other_samples():
    X, D = problem(n_samples=40, n_components=16, n_features=10, seed=18)
    codes, _ = fista(X, D, 0.1, tol=1e-4, max_iter=1000)
    subset = [3, 17, 29]
    codes_subset, _ = fista(X[subset], D, 0.1, tol=1e-4, max_iter=1000)
    np.testing.assert_allclose(codes_subset, codes[subset], rtol=1e-12, atol=1e-14)


def test_gram_and_lipschitz_reuse_give_the_same_codes():
    X, D = problem(seed=7)
    codes, n_iter = fista(X, D, 0.1, tol=1e-10, max_iter=3000)
    reused, n_reused = fista(X, D, 0.1, tol=1e-10, max_iter=3000, gram=D @ D.T, lipschitz=lipschitz_constant(D))
    np.testing.assert_allclose(reused, codes, rtol=1e-12, atol=1e-14)
    assert n_reused == n_iter


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(dtype):
    X, D = problem(seed=8, dtype=dtype)
    codes, _ = fista(X, D, 0.1, max_iter=500, tol=1e-5)
    assert codes.dtype == dtype and codes.shape == (X.shape[0], D.shape[0])
    reference, _ = fista(X.astype(np.float64), D.astype(np.float64), 0.1, max_iter=500, tol=1e-5)
    np.testing.assert_allclose(codes, reference, atol=1e-3)


def test_large_alpha_gives_zero_codes_at_once():
    X, D = problem(seed=9)
    alpha_max = np.abs(X @ D.T).max()  # above this, z = 0 is optimal for every sample
    codes, n_iter = fista(X, D, alpha_max * 1.01)
    assert n_iter == 1 and not codes.any()


def test_zero_alpha_is_least_squares_for_tall_dictionary():
    rng = np.random.default_rng(10)
    D = rng.standard_normal((4, 9))  # 4 atoms in 9 dims: unique least-squares codes
    X = rng.standard_normal((6, 9))
    codes, _ = fista(X, D, 0.0, max_iter=20000, tol=1e-14)
    expected = np.linalg.lstsq(D.T, X.T, rcond=None)[0].T
    np.testing.assert_allclose(codes, expected, atol=1e-8)


def test_zero_dictionary_and_empty_input():
    X, D = problem(seed=11)
    codes, n_iter = fista(X, np.zeros_like(D), 0.1)
    assert n_iter == 0 and codes.shape == (X.shape[0], D.shape[0]) and not codes.any()
    codes, n_iter = fista(X[:0], D, 0.1)
    assert codes.shape == (0, D.shape[0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(alpha=-1.0), "alpha must be"),
        (dict(alpha=float("nan")), "alpha must be"),
        (dict(max_iter=0), "max_iter"),
        (dict(tol=-1.0), "tol"),
        (dict(init=np.zeros((3, 3))), "init must have shape"),
        (dict(gram=np.eye(3)), "gram must be"),
        (dict(lipschitz=-2.0), "lipschitz"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    X, D = problem(seed=12)
    arguments = dict(alpha=0.1) | kwargs
    with pytest.raises(ValueError, match=message):
        fista(X, D, **arguments)


def test_feature_mismatch_names_the_convention():
    X, D = problem(seed=13)
    with pytest.raises(ValueError, match="atoms must be the rows of D"):
        fista(X, D.T, 0.1)


@pytest.mark.parametrize("shape", [(5, 8), (8, 5)])
def test_lipschitz_constant_is_squared_spectral_norm(shape):
    rng = np.random.default_rng(14)
    D = rng.standard_normal(shape)
    assert lipschitz_constant(D) == pytest.approx(np.linalg.norm(D, 2) ** 2, rel=1e-12)
    assert lipschitz_constant(np.zeros(shape)) == 0.0


def test_lipschitz_power_iteration_is_a_safe_upper_estimate(monkeypatch):
    monkeypatch.setattr(fista_module, "_EXACT_EIGVALSH_MAX", 0)
    rng = np.random.default_rng(15)
    D = rng.standard_normal((40, 25))
    exact = np.linalg.norm(D, 2) ** 2
    estimate = lipschitz_constant(D)
    assert exact <= estimate <= exact * fista_module._POWER_SAFETY * (1 + 1e-3)


@settings(deadline=None, max_examples=20)
@given(values=st.lists(st.floats(-5, 5), min_size=1, max_size=20), threshold=st.floats(0, 3))
def test_soft_threshold_is_the_l1_prox(values, threshold):
    V = np.array([values])
    expected = np.sign(V) * np.maximum(np.abs(V) - threshold, 0)
    np.testing.assert_allclose(soft_threshold(V, threshold), expected, atol=1e-15)
    np.testing.assert_allclose(soft_threshold(V, threshold, positive=True), np.maximum(V - threshold, 0), atol=1e-15)
    out = np.empty_like(V)
    assert soft_threshold(V, threshold, out=out) is out
    # prox optimality: each entry minimises 0.5 (u - v)^2 + threshold |u| (checked on a grid)
    grid = np.linspace(-6, 6, 2401)
    for v, u in zip(V[0], soft_threshold(V, threshold)[0], strict=True):
        best = (0.5 * (grid - v) ** 2 + threshold * np.abs(grid)).min()
        assert 0.5 * (u - v) ** 2 + threshold * abs(u) <= best + 1e-12


@pytest.mark.gpu
@pytest.mark.parametrize("positive", [False, True])
def test_fista_on_gpu_matches_numpy(positive):
    import cupy

    X, D = problem(n_samples=40, n_components=24, n_features=16, seed=16)
    codes, n_iter = fista(X, D, 0.1, positive=positive, max_iter=2000, tol=1e-10)
    codes_gpu, n_iter_gpu = fista(cupy.asarray(X), cupy.asarray(D), 0.1, positive=positive, max_iter=2000, tol=1e-10)
    assert isinstance(codes_gpu, cupy.ndarray) and codes_gpu.dtype == np.float64
    np.testing.assert_allclose(cupy.asnumpy(codes_gpu), codes, atol=1e-8)
    assert abs(n_iter_gpu - n_iter) <= 2
    codes32, _ = fista(cupy.asarray(X, dtype=cupy.float32), cupy.asarray(D, dtype=cupy.float32), 0.1, max_iter=300)
    assert codes32.dtype == np.float32


def test_per_row_iteration_budgets_equal_separate_runs():
    """run_fista with max_iter per row: each row as if run alone with its own max_iter."""
    X, D = problem(n_samples=3, seed=17)
    G, L = D @ D.T, lipschitz_constant(D)
    budgets = np.array([1, 5, 30])
    problem_rows = fista_module.SharedGram(X, D, G, L, 0.05)
    codes, info = fista_module.run_fista(problem_rows, np.zeros((3, D.shape[0])), max_iter=budgets, tol=0)
    assert info.iterations.tolist() == budgets.tolist()
    for n, budget in enumerate(budgets):
        alone, _ = fista(X[n : n + 1], D, 0.05, max_iter=int(budget), tol=0, gram=G, lipschitz=L)
        np.testing.assert_allclose(codes[n], alone[0], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("max_iter", [3, 1000])
def test_return_info_reports_each_rows_certificate_and_keeps_the_codes(max_iter):
    """LassoInfo: converged rows have gap <= tol * objective, the others report their true relative gap."""
    X, D = problem(n_samples=12, seed=3)
    tol = 1e-8
    codes, n_iter = fista(X, D, 0.05, max_iter=max_iter, tol=tol)
    same, info = fista(X, D, 0.05, max_iter=max_iter, tol=tol, return_info=True)
    np.testing.assert_array_equal(same, codes)
    assert info.n_iter == n_iter == int(info.iterations.max())
    gap, primal = duality_gap(X, D, codes, 0.05)
    np.testing.assert_allclose(info.relative_gap, gap / primal, rtol=1e-6, atol=1e-15)
    np.testing.assert_array_equal(info.converged, gap <= tol * primal)
    assert info.converged.all() == (max_iter == 1000)
    assert (info.iterations[~info.converged] == max_iter).all()
    if not info.converged.all():
        assert f"{info.n_unconverged} of 12 rows stopped at max_iter={max_iter}" in info.unconverged_message(max_iter, tol)
