"""sparse_encode against oracles: scikit-learn's Lasso / sparse_encode / orthogonal_mp, hand-built pursuits,
numpy one-liners, and the laws of each algorithm."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.decomposition import sparse_encode as sklearn_sparse_encode
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso, orthogonal_mp

import skdict.coding._encode as encode_module
from skdict import sparse_encode
from skdict.coding import SparseCoder
from skdict.ops.fista import fista, lasso_objective, lipschitz_constant

ALGORITHMS = ["fista", "ista", "mp", "omp", "topk", "threshold"]


def problem(n_samples=30, n_features=20, n_components=40, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n_components, n_features))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    true_codes = rng.standard_normal((n_samples, n_components)) * (rng.random((n_samples, n_components)) < 0.1)
    X = true_codes @ D + 0.05 * rng.standard_normal((n_samples, n_features))
    return X.astype(dtype), D.astype(dtype)


def residual_norms(X, D, codes):
    return np.linalg.norm(X - codes @ D, axis=1)


# ----------------------------------------------------------------------------- FISTA / ISTA vs Lasso
def lasso_reference(X, D, alpha, positive=False):
    """Minimisers of 0.5 ||x - zD||^2 + alpha ||z||_1 by scikit-learn's coordinate descent, tight tolerance.

    Lasso minimises 1/(2 n) ||y - A w||^2 + a ||w||_1 over the n = n_features rows of A = D^T:
    the same minimiser as ours for a = alpha / n_features.
    """
    lasso = Lasso(alpha=alpha / D.shape[1], fit_intercept=False, positive=positive, tol=1e-14, max_iter=1_000_000)
    with warnings.catch_warnings():
        # at tol=1e-14 coordinate descent may end a few 1e-12 of duality gap short: far below every tolerance used
        warnings.simplefilter("ignore", ConvergenceWarning)
        return np.stack([lasso.fit(D.T, x).coef_.copy() for x in X])


@pytest.mark.parametrize("positive", [False, True])
def test_fista_reaches_the_sklearn_lasso_objective(positive):
    X, D = problem(seed=1)
    alpha = 0.1
    ours = lasso_objective(X, D, sparse_encode(X, D, alpha=alpha, positive=positive), alpha).sum()
    reference = lasso_objective(X, D, lasso_reference(X, D, alpha, positive), alpha).sum()
    assert abs(ours - reference) <= 1e-3 * reference
    # and scikit-learn's own sparse_encode(lasso_cd), which uses the same alpha convention as ours
    sklearn_codes = sklearn_sparse_encode(X, D, algorithm="lasso_cd", alpha=alpha, positive=positive, max_iter=10_000)
    assert abs(ours - lasso_objective(X, D, sklearn_codes, alpha).sum()) <= 1e-3 * reference
    if positive:
        assert (sparse_encode(X, D, alpha=alpha, positive=True) >= 0).all()


def test_ista_reaches_the_same_objective_with_more_iterations():
    X, D = problem(seed=2)
    alpha = 0.1
    fista_codes, fista_iter = sparse_encode(X, D, alpha=alpha, tol=1e-8, max_iter=20_000, return_n_iter=True)
    ista_codes, ista_iter = sparse_encode(
        X, D, algorithm="ista", alpha=alpha, tol=1e-8, max_iter=20_000, return_n_iter=True
    )
    fista_objective = lasso_objective(X, D, fista_codes, alpha).sum()
    assert abs(lasso_objective(X, D, ista_codes, alpha).sum() - fista_objective) <= 1e-6 * fista_objective
    assert fista_iter < ista_iter


def test_fista_objective_below_ista_after_equal_iterations():
    """On an ill-conditioned batch (correlated atoms), the batch objective of FISTA is below ISTA's at every k."""
    rng = np.random.default_rng(3)
    D = rng.standard_normal((30, 12)) + rng.standard_normal(12)  # correlated atoms: slow ISTA
    X = rng.standard_normal((20, 12))
    alpha = 0.05
    optimum = lasso_objective(X, D, lasso_reference(X, D, alpha), alpha).sum()
    gaps = {}
    for k in (5, 20, 100, 400):
        for algorithm in ("fista", "ista"):
            codes = sparse_encode(X, D, algorithm=algorithm, alpha=alpha, max_iter=k, tol=0)
            gaps[algorithm, k] = lasso_objective(X, D, codes, alpha).sum() - optimum
        assert gaps["fista", k] <= gaps["ista", k]
    assert gaps["fista", 400] < 0.1 * gaps["ista", 400]  # not just below: far below


@settings(deadline=None, max_examples=30)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_features=st.integers(2, 10),
    n_components=st.integers(2, 16),
    alpha=st.floats(0.01, 1.0),
    positive=st.booleans(),
    k=st.integers(1, 60),
)
def test_fista_within_its_rate_bound_which_is_below_istas(seed, n_features, n_components, alpha, positive, k):
    """Beck & Teboulle (2009), Thms 3.1 and 4.4: from z0 = 0, after k iterations
    F(z_FISTA) - F* <= 2 L ||z*||^2 / (k+1)^2 <= L ||z*||^2 / (2k), ISTA's own bound.

    (The plain statement "FISTA's objective <= ISTA's at every k, per sample" is false: momentum
    overshoots on ill-conditioned problems at small k. What holds for every convex problem is that
    FISTA's worst-case guarantee is below ISTA's, and FISTA meets it. The bound is a theorem for
    FISTA without restart, which is what is run here.)
    """
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n_components, n_features)) + rng.uniform(0, 3) * rng.standard_normal(n_features)
    X = rng.standard_normal((4, n_features)) * rng.uniform(0.1, 10)
    solution = lasso_reference(X, D, alpha, positive=positive)
    optimum = lasso_objective(X, D, solution, alpha)
    codes, _ = fista(X, D, alpha, positive=positive, max_iter=k, tol=0, restart=False)
    excess = lasso_objective(X, D, codes, alpha) - optimum
    L = lipschitz_constant(D)
    fista_bound = 2 * L * (solution**2).sum(axis=1) / (k + 1) ** 2
    ista_bound = L * (solution**2).sum(axis=1) / (2 * k)
    assert (fista_bound <= ista_bound * (1 + 1e-12)).all()
    assert (excess <= fista_bound + 1e-8 * np.abs(optimum) + 1e-12).all()


def test_init_warm_start_reduces_iterations():
    X, D = problem(seed=4)
    near = sparse_encode(X, D, alpha=0.11, tol=1e-8, max_iter=5000)
    cold, n_cold = sparse_encode(X, D, alpha=0.1, tol=1e-8, max_iter=5000, return_n_iter=True)
    warm, n_warm = sparse_encode(X, D, alpha=0.1, tol=1e-8, max_iter=5000, init=near, return_n_iter=True)
    again, n_again = sparse_encode(X, D, alpha=0.1, tol=1e-8, max_iter=5000, init=cold, return_n_iter=True)
    assert n_warm < n_cold and n_again < n_warm
    objective = lasso_objective(X, D, cold, 0.1).sum()
    for codes in (warm, again):
        assert abs(lasso_objective(X, D, codes, 0.1).sum() - objective) <= 1e-7 * objective


def test_row_blocks_do_not_change_fista_codes(monkeypatch):
    X, D = problem(n_samples=25, seed=5)
    whole, n_whole = sparse_encode(X, D, alpha=0.1, return_n_iter=True)
    monkeypatch.setattr(encode_module, "_BLOCK_ELEMENTS", 4 * D.shape[0])  # blocks of 4 rows
    blocked, n_blocked = sparse_encode(X, D, alpha=0.1, return_n_iter=True)
    np.testing.assert_allclose(blocked, whole, rtol=1e-12, atol=1e-14)
    assert n_blocked == n_whole


@pytest.mark.parametrize("positive", [False, True])
def test_wide_dictionaries_go_through_working_sets_to_the_same_optimum(positive, monkeypatch):
    """From 128 atoms sparse_encode solves on per-sample working sets; the codes stay certified on all atoms."""
    X, D = problem(n_samples=16, n_features=24, n_components=128, seed=11)
    alpha = 0.05
    import skdict.ops.working_set as working_set_module

    calls = []
    real = working_set_module._Solver.round
    monkeypatch.setattr(working_set_module._Solver, "round", lambda *a, **k: calls.append(1) or real(*a, **k))
    codes = sparse_encode(X, D, alpha=alpha, positive=positive, tol=1e-8, max_iter=100_000)
    assert calls  # restricted rounds ran (not the plain-FISTA fallback)
    reference = lasso_reference(X, D, alpha, positive)
    np.testing.assert_allclose(lasso_objective(X, D, codes, alpha), lasso_objective(X, D, reference, alpha), rtol=2e-8)
    np.testing.assert_allclose(codes, reference, atol=1e-4)
    # ISTA (slow on this 5x overcomplete dictionary) through the same path, to a looser tolerance
    codes = sparse_encode(X, D, algorithm="ista", alpha=alpha, positive=positive, tol=1e-4, max_iter=100_000)
    objective, optimum = lasso_objective(X, D, codes, alpha), lasso_objective(X, D, reference, alpha)
    assert np.all(optimum <= objective * (1 + 1e-12)) and np.all(objective <= optimum * (1 + 1e-4))


def test_row_blocks_do_not_change_working_set_codes(monkeypatch):
    X, D = problem(n_samples=25, n_features=24, n_components=128, seed=12)
    whole, n_whole = sparse_encode(X, D, alpha=0.05, return_n_iter=True)  # default max_iter: some rows stop at it
    monkeypatch.setattr(encode_module, "_BLOCK_ELEMENTS", 4 * D.shape[0])  # blocks of 4 rows
    blocked, n_blocked = sparse_encode(X, D, alpha=0.05, return_n_iter=True)
    np.testing.assert_allclose(blocked, whole, rtol=1e-9, atol=1e-10)
    assert n_blocked == n_whole


# ----------------------------------------------------------------------------- pursuits
def test_omp_equals_sklearn_orthogonal_mp():
    X, D = problem(seed=6)
    D = D * np.random.default_rng(6).uniform(0.5, 2, (D.shape[0], 1))  # OMP does not need unit atoms
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = orthogonal_mp(D.T, X.T, n_nonzero_coefs=5).T
    got = sparse_encode(X, D, algorithm="omp", n_nonzero_coefs=5)
    assert np.abs(got - expected).max() <= 1e-8 * np.abs(expected).max()


def test_pursuit_default_is_a_tenth_of_the_features():
    X, D = problem(n_features=50, n_components=80, seed=7)
    for algorithm in ("mp", "omp", "topk"):
        assert ((sparse_encode(X, D, algorithm=algorithm) != 0).sum(axis=1) <= 5).all()
    assert ((sparse_encode(X, D, algorithm="topk") != 0).sum(axis=1) == 5).all()
    narrow = problem(n_features=50, n_components=3, seed=7)  # capped at n_components
    assert ((sparse_encode(*narrow, algorithm="topk") != 0).sum(axis=1) == 3).all()


def test_hand_built_matching_pursuit():
    """Atoms e1, e2 and 2 * (0.6, 0.8) (not unit); x = (1, 2), worked by hand.

    step 1: correlations with the unit atoms (1, 2, 2.2) -> atom 3, z = 2.2 / 2 = 1.1, r = (-0.32, 0.24)
    step 2: (-0.32, 0.24, 0) -> atom 1, z = -0.32, r = (0, 0.24)
    step 3: (0, 0.24, 0.192) -> atom 2, z = 0.24, r = 0
    positive, step 2: the largest signed correlation is 0.24 -> atom 2, r = (-0.32, 0).
    """
    D = np.array([[1.0, 0.0], [0.0, 1.0], [1.2, 1.6]])
    X = np.array([[1.0, 2.0]])
    expected = {1: [0, 0, 1.1], 2: [-0.32, 0, 1.1], 3: [-0.32, 0.24, 1.1]}
    for k, codes in expected.items():
        np.testing.assert_allclose(sparse_encode(X, D, algorithm="mp", n_nonzero_coefs=k), [codes], atol=1e-12)
    np.testing.assert_allclose(
        sparse_encode(X, D, algorithm="mp", n_nonzero_coefs=2, positive=True), [[0, 0.24, 1.1]], atol=1e-12
    )
    np.testing.assert_allclose(residual_norms(X, D, sparse_encode(X, D, algorithm="mp", n_nonzero_coefs=3)), 0, atol=1e-12)


@settings(deadline=None, max_examples=25)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_features=st.integers(2, 12),
    n_components=st.integers(2, 24),
    positive=st.booleans(),
)
def test_mp_residual_never_grows_and_is_orthogonal_to_the_last_atom(seed, n_features, n_components, positive):
    """The step k atom is where the codes for k and k-1 steps differ; r_k is orthogonal to it."""
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n_components, n_features)) * rng.uniform(0.2, 3.0, (n_components, 1))
    X = rng.standard_normal((5, n_features))
    scale = np.linalg.norm(X, axis=1)
    previous_codes, previous_norms = np.zeros((5, n_components)), scale
    for k in range(1, n_components + 1):
        codes = sparse_encode(X, D, algorithm="mp", n_nonzero_coefs=k, positive=positive)
        residual = X - codes @ D
        norms = np.linalg.norm(residual, axis=1)
        assert (norms <= previous_norms + 1e-12 * scale).all()
        change = codes - previous_codes
        for n in range(5):
            moved = np.flatnonzero(np.abs(change[n]) > 1e-14 * np.abs(codes[n]).max(initial=1.0))
            assert moved.size <= 1  # one atom per step
            if moved.size:
                atom = D[moved[0]] / np.linalg.norm(D[moved[0]])
                assert abs(atom @ residual[n]) <= 1e-10 * scale[n]
        previous_codes, previous_norms = codes, norms


# ----------------------------------------------------------------------------- one-shot codes
@pytest.mark.parametrize("positive", [False, True])
def test_topk_against_numpy(positive):
    X, D = problem(seed=8)
    C = X @ D.T
    score = C if positive else np.abs(C)
    keep = score >= np.sort(score, axis=1)[:, [-4]]  # the 4 largest per row (no ties in random data)
    expected = np.where(keep, np.maximum(C, 0) if positive else C, 0)
    np.testing.assert_allclose(sparse_encode(X, D, algorithm="topk", n_nonzero_coefs=4, positive=positive), expected)


@pytest.mark.parametrize("positive", [False, True])
def test_threshold_against_numpy_and_sklearn(positive):
    X, D = problem(seed=9)
    C = X @ D.T
    expected = np.sign(C) * np.maximum(np.abs(C) - 0.3, 0)
    if positive:
        expected = np.clip(expected, 0, None)
    got = sparse_encode(X, D, algorithm="threshold", alpha=0.3, positive=positive)
    np.testing.assert_allclose(got, expected, atol=1e-15)
    np.testing.assert_allclose(
        got, sklearn_sparse_encode(X, D, algorithm="threshold", alpha=0.3, positive=positive), atol=1e-15
    )


# ----------------------------------------------------------------------------- dtypes, backends, errors
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_float32_in_float32_out(algorithm):
    X, D = problem(seed=10, dtype=np.float32)
    codes = sparse_encode(X, D, algorithm=algorithm, alpha=0.1, n_nonzero_coefs=4)
    assert isinstance(codes, np.ndarray) and codes.dtype == np.float32
    reference = sparse_encode(X.astype(np.float64), D.astype(np.float64), algorithm=algorithm, alpha=0.1, n_nonzero_coefs=4)
    np.testing.assert_allclose(codes, reference, atol=2e-3 * np.abs(reference).max())
    assert sparse_encode(X, D.astype(np.float64), algorithm=algorithm, n_nonzero_coefs=4).dtype == np.float64
    assert sparse_encode(X.astype(np.int64), D, algorithm=algorithm, n_nonzero_coefs=4).dtype == np.float64


def test_lists_are_accepted():
    X, D = problem(n_samples=3, seed=11)
    np.testing.assert_array_equal(
        sparse_encode(X.tolist(), D.tolist(), algorithm="omp", n_nonzero_coefs=2),
        sparse_encode(X, D, algorithm="omp", n_nonzero_coefs=2),
    )


@pytest.mark.parametrize(
    ("X", "D", "kwargs", "message"),
    [
        (np.ones(4), np.ones((3, 4)), {}, "Expected 2D array"),
        (np.ones((2, 4)), np.ones(4), {}, "dictionary must be a 2-D array of shape \\(n_components, n_features\\)"),
        (np.full((2, 4), np.nan), np.ones((3, 4)), {}, "Input X contains NaN"),
        (np.ones((2, 4)), np.full((3, 4), np.inf), {}, "dictionary contains NaN or infinity"),
        (np.ones((0, 4)), np.ones((3, 4)), {}, "X has shape \\(0, 4\\)"),
        (np.ones((2, 4)), np.ones((3, 5)), {}, "X has 4 features \\(shape \\(2, 4\\)\\) but the dictionary has 5"),
        (np.ones((2, 3)), np.ones((3, 5)), {}, "transposed dictionary"),
        (np.ones((2, 4)), np.ones((3, 4)), {"algorithm": "lars"}, "algorithm"),
        (np.ones((2, 4)), np.ones((3, 4)), {"alpha": -1.0}, "alpha"),
        (np.ones((2, 4)), np.ones((3, 4)), {"alpha": np.inf}, "alpha"),
        (np.ones((2, 4)), np.ones((3, 4)), {"algorithm": "omp", "n_nonzero_coefs": 4}, "n_components=3"),
        (np.ones((2, 4)), np.ones((3, 4)), {"algorithm": "topk", "n_nonzero_coefs": 0}, "n_nonzero_coefs"),
        (np.ones((2, 4)), np.ones((3, 4)), {"algorithm": "omp", "positive": True}, "positive=True is not available"),
        (np.ones((2, 4)), np.ones((3, 4)), {"init": np.ones((2, 4))}, "init must have shape \\(n_samples=2, n_components=3\\), got shape \\(2, 4\\)"),
        (np.ones((2, 4)), np.ones((3, 4)), {"algorithm": "mp", "init": np.ones((2, 3))}, "init warm-starts"),
        (np.ones((2, 4)), np.ones((3, 4)), {"max_iter": 0}, "max_iter"),
        (np.ones((2, 4)), np.ones((3, 4)), {"tol": -1e-3}, "tol"),
    ],
)
def test_bad_input_raises_clear_errors(X, D, kwargs, message):
    with pytest.raises(ValueError, match=message):
        sparse_encode(X, D, **kwargs)


def test_sparse_coder_transform_is_sparse_encode():
    X, D = problem(seed=12)
    for algorithm in ALGORITHMS:
        coder = SparseCoder(D, transform_algorithm=algorithm, transform_alpha=0.2, transform_n_nonzero_coefs=3)
        np.testing.assert_array_equal(
            coder.fit(X).transform(X), sparse_encode(X, D, algorithm=algorithm, alpha=0.2, n_nonzero_coefs=3)
        )
