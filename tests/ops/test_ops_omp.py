"""Batched OMP against scikit-learn's orthogonal_mp, and the laws of orthogonal pursuit."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import orthogonal_mp

import skdict.ops.omp as omp_module
from skdict.ops.omp import orthogonal_matching_pursuit


def problem(n_samples=40, n_features=30, n_components=60, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n_components, n_features)) * rng.uniform(0.5, 2.0, (n_components, 1))
    X = rng.standard_normal((n_samples, n_features))
    return X.astype(dtype), D.astype(dtype)


def sklearn_codes(X, D, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "ended prematurely" on exact fits
        return np.atleast_2d(orthogonal_mp(D.T, X.T, **kwargs).T)


def relative_error(got, expected):
    return np.abs(got - expected).max() / np.abs(expected).max()


@pytest.mark.parametrize("k", [1, 2, 7, 20, 30])
def test_equals_sklearn_orthogonal_mp(k):
    X, D = problem()
    result = orthogonal_matching_pursuit(X, D, k)
    assert result.indices.shape == (40, k) and result.values.shape == (40, k)
    np.testing.assert_array_equal(result.n_active, k)
    assert relative_error(result.codes().to_dense(), sklearn_codes(X, D, n_nonzero_coefs=k)) < 1e-8


@pytest.mark.parametrize("tol", [0.5, 5.0, 30.0])
def test_residual_tolerance_equals_sklearn(tol):
    X, D = problem(seed=1)
    result = orthogonal_matching_pursuit(X, D, 30, tol=tol)
    expected = sklearn_codes(X, D, tol=tol)
    assert relative_error(result.codes().to_dense(), expected) < 1e-8
    np.testing.assert_array_equal(result.n_active, (expected != 0).sum(axis=1))
    assert len(set(result.n_active.tolist())) > 1  # rows really stop at different steps


def test_exact_representation_stops_early_with_exact_codes():
    _, D = problem(n_samples=1, seed=2)
    D /= np.linalg.norm(D, axis=1, keepdims=True)  # unit atoms: x = 0.5 d_11 picks d_11 first
    X = np.stack([2.0 * D[3] - D[7], 0.5 * D[11], np.zeros(D.shape[1])])
    result = orthogonal_matching_pursuit(X, D, 6)
    np.testing.assert_array_equal(result.n_active, [2, 1, 0])
    codes = result.codes().to_dense()
    expected = np.zeros((3, D.shape[0]))
    expected[0, [3, 7]] = [2.0, -1.0]
    expected[1, 11] = 0.5
    np.testing.assert_allclose(codes, expected, atol=1e-12)
    np.testing.assert_allclose(codes, sklearn_codes(X, D, n_nonzero_coefs=6), atol=1e-12)


def test_dependent_atoms_never_chosen_twice_and_no_nan():
    rng = np.random.default_rng(3)
    base = rng.standard_normal((4, 10))
    D = np.vstack([base, base[0], 2.0 * base[1], base[0] + base[2]])  # dependent copies
    X = rng.standard_normal((25, 10))
    result = orthogonal_matching_pursuit(X, D, 7)
    codes = result.codes().to_dense()
    assert np.isfinite(codes).all()
    assert (result.n_active <= 4).all()  # the atoms span only 4 dimensions
    # with k >= rank, OMP returns the least-squares projection onto the span
    projection = X @ np.linalg.pinv(base) @ base
    np.testing.assert_allclose(codes @ D, projection, atol=1e-10)


@pytest.mark.parametrize("k", [3, 12])
def test_float32_preserved_and_close_to_float64(k):
    X, D = problem(seed=4, dtype=np.float32)
    result = orthogonal_matching_pursuit(X, D, k)
    assert result.values.dtype == np.float32
    reference = orthogonal_matching_pursuit(X.astype(np.float64), D.astype(np.float64), k)
    np.testing.assert_array_equal(np.sort(result.indices, axis=1), np.sort(reference.indices, axis=1))
    assert relative_error(result.codes().to_dense(), reference.codes().to_dense()) < 1e-4


def test_row_blocks_give_the_same_codes(monkeypatch):
    X, D = problem(n_samples=23, seed=5)
    whole = orthogonal_matching_pursuit(X, D, 5, tol=2.0)
    monkeypatch.setattr(omp_module, "_BLOCK_ELEMENTS", 4 * (D.shape[0] + 25))  # blocks of 4 rows
    blocked = orthogonal_matching_pursuit(X, D, 5, tol=2.0)
    np.testing.assert_array_equal(blocked.indices, whole.indices)
    np.testing.assert_array_equal(blocked.n_active, whole.n_active)
    np.testing.assert_allclose(blocked.values, whole.values, rtol=1e-12, atol=1e-14)


def test_precomputed_gram_is_used():
    X, D = problem(seed=6)
    result = orthogonal_matching_pursuit(X, D, 6, gram=D @ D.T)
    np.testing.assert_allclose(result.codes().to_dense(), orthogonal_matching_pursuit(X, D, 6).codes().to_dense())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"k": 0}, "k must be in"), ({"k": 61}, "k must be in"), ({"k": 3, "tol": -1.0}, "tol must be None")],
)
def test_bad_arguments(kwargs, message):
    X, D = problem()
    with pytest.raises(ValueError, match=message):
        orthogonal_matching_pursuit(X, D, **kwargs)


@settings(deadline=None, max_examples=25)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_features=st.integers(3, 12),
    n_components=st.integers(3, 20),
    k=st.integers(1, 12),
)
def test_residual_orthogonal_to_chosen_atoms_and_not_growing(seed, n_features, n_components, k):
    """Least squares on the support: r is orthogonal to every chosen atom, and ||r|| never grows with k."""
    k = min(k, n_components)
    X, D = problem(n_samples=6, n_features=n_features, n_components=n_components, seed=seed)
    previous = np.linalg.norm(X, axis=1)
    for steps in range(1, k + 1):
        result = orthogonal_matching_pursuit(X, D, steps)
        residual = X - result.codes().dot(D)
        norms = np.linalg.norm(residual, axis=1)
        assert (norms <= previous + 1e-10 * np.linalg.norm(X, axis=1)).all()
        previous = norms
        chosen = D[result.indices]  # (n, steps, n_features)
        dots = np.einsum("ntf,nf->nt", chosen, residual)
        assert np.abs(dots).max() <= 1e-8 * np.linalg.norm(X, axis=1).max() * np.linalg.norm(D, axis=1).max()
