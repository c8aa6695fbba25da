import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skdict.metrics import gt_recovery, mean_max_cosine, mutual_coherence
from skdict.metrics._dictionary import _best_cosines, _max_abs_cosine, _unit_rows


def _random_atoms(rng, n, d):
    return rng.standard_normal((n, d))


def test_permuted_flipped_noisy_copy_is_recovered():
    rng = np.random.RandomState(0)
    true = _random_atoms(rng, 40, 64)
    learned = true[rng.permutation(40)] * rng.choice([-1.0, 1.0], size=(40, 1)) * rng.uniform(0.5, 3, (40, 1))
    learned = learned + 0.01 * rng.standard_normal(learned.shape)
    learned = np.vstack([learned, _random_atoms(rng, 10, 64)])  # extra atoms do not hurt
    assert gt_recovery(true, learned) == 1.0
    assert mean_max_cosine(true, learned) > 0.99


def test_random_atoms_are_not_recovered():
    rng = np.random.RandomState(1)
    true, learned = _random_atoms(rng, 50, 256), _random_atoms(rng, 100, 256)
    assert gt_recovery(true, learned) == 0.0
    assert mean_max_cosine(true, learned) < 0.35


def test_partial_recovery_and_threshold():
    rng = np.random.RandomState(2)
    true = np.linalg.qr(rng.standard_normal((32, 4)))[0].T  # 4 orthonormal rows
    learned = true.copy()
    learned[0] = 0.9 * true[0] + np.sqrt(1 - 0.81) * true[1]  # |cos| = 0.9 with atom 0
    learned[1] = true[2]  # atom 1 lost, atom 2 twice
    assert gt_recovery(true, learned) == pytest.approx(2 / 4)
    assert gt_recovery(true, learned, threshold=0.85) == pytest.approx(3 / 4)
    assert mean_max_cosine(true, learned) == pytest.approx((0.9 + np.sqrt(0.19) + 1 + 1) / 4)


def test_zero_row_has_cosine_zero():
    true = np.array([[1.0, 0.0], [0.0, 0.0]])
    learned = np.array([[0.0, 0.0], [2.0, 0.0]])
    assert gt_recovery(true, learned) == 0.5
    assert mean_max_cosine(true, learned) == 0.5
    assert mutual_coherence(np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 3.0]])) == pytest.approx(np.sqrt(0.5))


def test_unit_rows_is_scale_safe():
    D = np.array([[3.0, 4.0], [0.0, 0.0], [3e-300, 4e-300], [3e300, -4e300]])
    np.testing.assert_allclose(_unit_rows(D), [[0.6, 0.8], [0, 0], [0.6, 0.8], [0.6, -0.8]], rtol=1e-15)


def test_blocked_cosines_match_full(monkeypatch):
    import skdict.metrics._dictionary as module

    rng = np.random.RandomState(3)
    A, B = _unit_rows(rng.standard_normal((37, 5))), _unit_rows(rng.standard_normal((11, 5)))
    full = np.abs(A @ B.T).max(axis=1)
    gram = np.abs(A @ A.T)
    np.fill_diagonal(gram, 0)
    monkeypatch.setattr(module, "_BLOCK_ELEMENTS", 30)  # blocks of 2 rows
    np.testing.assert_allclose(_max_abs_cosine(A, B), full, rtol=1e-15)
    np.testing.assert_allclose(_max_abs_cosine(A, A, exclude_diagonal=True), gram.max(axis=1), rtol=1e-15)


def test_mutual_coherence_orthonormal_and_duplicate():
    rng = np.random.RandomState(4)
    Q = np.linalg.qr(rng.standard_normal((20, 20)))[0]
    assert mutual_coherence(Q) == pytest.approx(0.0, abs=1e-12)
    D = np.vstack([Q[:5], -2.5 * Q[3]])
    assert mutual_coherence(D) == pytest.approx(1.0, abs=1e-12)


def test_mutual_coherence_direct():
    rng = np.random.RandomState(5)
    D = rng.standard_normal((30, 10))
    U = D / np.linalg.norm(D, axis=1, keepdims=True)
    G = np.abs(U @ U.T)
    np.fill_diagonal(G, 0)
    assert mutual_coherence(D) == pytest.approx(G.max(), rel=1e-14)


def test_validation_messages():
    with pytest.raises(ValueError, match=r"true_features\.shape=\(3, 4\) and learned\.shape=\(5, 6\)"):
        gt_recovery(np.ones((3, 4)), np.ones((5, 6)))
    with pytest.raises(ValueError, match="learned must be a 2-D array"):
        mean_max_cosine(np.ones((3, 4)), np.ones(4))
    with pytest.raises(ValueError, match="true_features contains NaN"):
        gt_recovery(np.array([[np.inf, 1.0]]), np.ones((2, 2)))
    with pytest.raises(ValueError, match="threshold must be a float in"):
        gt_recovery(np.ones((2, 2)), np.ones((2, 2)), threshold=1.5)
    with pytest.raises(ValueError, match="D needs at least 2 row"):
        mutual_coherence(np.ones((1, 3)))


finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False)


@st.composite
def dictionaries(draw):
    n_true = draw(st.integers(1, 6))
    n_learned = draw(st.integers(1, 8))
    n_dims = draw(st.integers(1, 5))
    true = draw(arrays(np.float64, (n_true, n_dims), elements=finite))
    learned = draw(arrays(np.float64, (n_learned, n_dims), elements=finite))
    permutation = np.array(draw(st.permutations(range(n_learned))))
    signs = np.array(draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=n_learned, max_size=n_learned)))
    scales = np.array(draw(st.lists(st.floats(1e-3, 1e3), min_size=n_learned, max_size=n_learned)))
    threshold = draw(st.floats(0, 1))
    return true, learned, permutation, signs[:, None] * scales[:, None], threshold


@settings(max_examples=200, deadline=None)
@given(dictionaries())
def test_recovery_invariant_to_order_sign_and_scale_of_learned(case):
    true, learned, permutation, factors, threshold = case
    transformed = learned[permutation] * factors
    # A subnormal row times a factor below one can underflow to the zero row.
    assume(np.array_equal(transformed.any(axis=1), learned[permutation].any(axis=1)))
    # Rescaling moves a cosine by an ulp; a cosine sitting on the threshold may then cross it.
    assume(np.all(np.abs(_best_cosines(true, learned) - threshold) > 1e-9))
    assert gt_recovery(true, transformed, threshold) == gt_recovery(true, learned, threshold)
    assert mean_max_cosine(true, transformed) == pytest.approx(mean_max_cosine(true, learned), abs=1e-12)
    assert 0.0 <= mean_max_cosine(true, learned) <= 1.0
