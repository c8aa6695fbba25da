"""Triplet generators: teaching sets are equalities under Φ with the stated sizes; sampled feedback is sparse and labelled right."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skdict.datasets import make_eigendecomposition_teaching_set, make_sparse_teaching_set, make_triplet_feedback


def _phi(p, r, seed=0):
    D = np.random.default_rng(seed).standard_normal((r, p))
    return D.T @ D


def _distance_gaps(T, Phi):
    """d_Φ(x, y) - d_Φ(x, z), straight from the definition, one triplet at a time."""
    return np.array([(x - y) @ Phi @ (x - y) - (x - z) @ Phi @ (x - z) for x, y, z in T])


@settings(deadline=None, max_examples=15)
@given(st.integers(1, 7), st.integers(1, 7), st.integers(0, 2**31 - 1))
def test_eigendecomposition_set_is_all_equalities_of_the_stated_size(p, r, seed):
    r = min(r, p)
    Phi = _phi(p, r, seed)
    T = make_eigendecomposition_teaching_set(Phi)
    assert T.shape == (r * (r + 1) // 2 + (p - r) - 1, 3, p)
    np.testing.assert_allclose(_distance_gaps(T, Phi), 0, atol=1e-9 * np.abs(Phi).max())
    # No triplet is trivial: each has a vector of nonzero Euclidean norm.
    assert np.all(np.abs(T[:, 1:]).sum(axis=(1, 2)) > 0)


def test_eigendecomposition_set_layout():
    Phi = np.diag([4.0, 1.0, 0.0])
    T = make_eigendecomposition_teaching_set(Phi)
    assert T.shape == (3, 3, 3)  # r = 2: 3 vectors - 1, plus 1 null vector
    np.testing.assert_allclose(np.abs(T[0, 1]), [0, 0, 1])  # the null vector first, as (0, v, 0)
    np.testing.assert_array_equal(T[0, 2], 0)
    np.testing.assert_array_equal(T[:, 0], 0)
    # Then u_2 against u_1, then u_1 + u_2, each rescaled to unit Φ-norm.
    for _, u, v in T[1:]:
        assert u @ Phi @ u == pytest.approx(1) and v @ Phi @ v == pytest.approx(1)
    np.testing.assert_allclose(np.abs(T[1, 2]), [0, 1, 0])
    np.testing.assert_allclose(np.abs(T[2, 2]), [1 / np.sqrt(5), 1 / np.sqrt(5), 0])


@pytest.mark.parametrize("p", [1, 2, 5])
def test_sparse_teaching_set(p):
    Phi = _phi(p, p, seed=p)
    T = make_sparse_teaching_set(Phi)
    assert T.shape == (p * (p + 1) // 2 - 1, 3, p)
    np.testing.assert_allclose(_distance_gaps(T, Phi), 0, atol=1e-9 * np.abs(Phi).max())
    assert np.all(np.count_nonzero(T[:, 2], axis=1) <= 2)  # {e_i} and {e_i + e_j}


def test_sparse_teaching_set_with_a_null_coordinate():
    Phi = np.diag([1.0, 0.0, 2.0])
    T = make_sparse_teaching_set(Phi)
    null = [t for t in T if not t[2].any()]
    assert len(null) == 1 and np.allclose(null[0][1], [0, 1, 0])  # (0, e_2, 0)
    np.testing.assert_allclose(_distance_gaps(T, Phi), 0, atol=1e-12)


def test_sampled_equalities():
    Phi = _phi(8, 3)
    T, y = make_triplet_feedback(Phi, 500, kind="equality", sparsity=0.7, random_state=0)
    assert T.shape == (500, 3, 8) and y.shape == (500,) and not y.any()
    np.testing.assert_array_equal(T[:, 0], 0)
    np.testing.assert_allclose(_distance_gaps(T, Phi), 0, atol=1e-9 * np.abs(Phi).max() * 8)
    u = T[:, 1]
    assert u.min() >= 0 and u.max() <= 1 and np.all(u.any(axis=1))
    # Zeros per coordinate: probability s, conditioned on the vector not being all zero.
    s = 0.7
    expected = (s - s**8) / (1 - s**8)
    assert abs(np.mean(u == 0) - expected) < 0.03


def test_sampled_comparisons_are_labelled_right():
    Phi = _phi(6, 2)
    T, y = make_triplet_feedback(Phi, 400, kind="comparison", sparsity=0.3, random_state=1)
    assert T.min() >= 0 and T.max() <= 1 and np.all(T.any(axis=2))
    np.testing.assert_array_equal(y, -np.sign(_distance_gaps(T, Phi)).astype(int))
    assert set(np.unique(y)) == {-1, 1}


def test_sampled_equalities_with_a_null_vector():
    Phi = np.diag([0.0, 1.0])  # e_1 has Φ-norm 0
    T, _ = make_triplet_feedback(Phi, 300, kind="equality", sparsity=0.5, random_state=0)
    np.testing.assert_allclose(_distance_gaps(T, Phi), 0, atol=1e-12)
    null = ~T[:, 2].any(axis=1)
    assert null.any()
    np.testing.assert_array_equal(T[null, 1, 1], 0)


def test_same_seed_same_feedback():
    Phi = _phi(5, 2)
    first = make_triplet_feedback(Phi, 30, random_state=4)
    second = make_triplet_feedback(Phi, 30, random_state=4)
    np.testing.assert_array_equal(first[0], second[0])


@pytest.mark.parametrize(
    ("Phi", "message"),
    [
        (np.ones((2, 3)), "square"),
        (np.array([[1.0, 2.0], [0.0, 1.0]]), "symmetric"),
        (np.diag([1.0, -1.0]), "positive semidefinite"),
        (np.zeros((3, 3)), "zero"),
        (np.array([[np.nan, 0], [0, 1]]), "NaN"),
    ],
)
def test_bad_feature_matrices(Phi, message):
    for make in (make_eigendecomposition_teaching_set, make_sparse_teaching_set):
        with pytest.raises(ValueError, match=message):
            make(Phi)
    with pytest.raises(ValueError, match=message):
        make_triplet_feedback(Phi, 3)


def test_bad_parameters():
    with pytest.raises(ValueError, match="sparsity"):
        make_triplet_feedback(np.eye(2), 3, sparsity=1.0)
    with pytest.raises(ValueError, match="kind"):
        make_triplet_feedback(np.eye(2), 3, kind="label")
