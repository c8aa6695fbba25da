import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skdict.metrics import match_codes, match_features, matched_cosine, mcc, mean_max_cosine


def _abs_cosines(A, B):
    A = A / np.linalg.norm(A, axis=1, keepdims=True)
    B = B / np.linalg.norm(B, axis=1, keepdims=True)
    return np.abs(A @ B.T)


def _brute_force_assignment(similarity):
    """Best one-to-one total over every injective map of the smaller side into the larger."""
    n_rows, n_cols = similarity.shape
    if n_rows <= n_cols:
        injections = itertools.permutations(range(n_cols), n_rows)
        return max(sum(similarity[i, j] for i, j in enumerate(cols)) for cols in injections)
    return _brute_force_assignment(similarity.T)


def _abs_corr(true_codes, learned_codes):
    n_true = true_codes.shape[1]
    C = np.corrcoef(true_codes.T, learned_codes.T)[:n_true, n_true:]
    return np.abs(np.nan_to_num(C))


@pytest.mark.parametrize("shape", [(4, 4), (4, 6), (5, 3)])
def test_matched_cosine_equals_brute_force(shape):
    rng = np.random.RandomState(sum(shape))
    true, learned = rng.standard_normal((shape[0], 6)), rng.standard_normal((shape[1], 6))
    expected = _brute_force_assignment(_abs_cosines(true, learned)) / shape[0]
    assert matched_cosine(true, learned) == pytest.approx(expected, rel=1e-12)


def test_match_features_pairs_and_values():
    rng = np.random.RandomState(0)
    true = rng.standard_normal((5, 8))
    order = np.array([3, 0, 4, 1, 2])
    learned = -2.0 * true[order] + 1e-3 * rng.standard_normal((5, 8))
    true_index, learned_index, abs_cosine = match_features(true, learned)
    np.testing.assert_array_equal(true_index, np.arange(5))
    np.testing.assert_array_equal(order[learned_index], np.arange(5))
    np.testing.assert_allclose(abs_cosine, _abs_cosines(true, learned)[true_index, learned_index], rtol=1e-12)
    assert np.all(abs_cosine > 0.999)


def test_matching_forbids_sharing_one_learned_atom():
    # Two true atoms close to the same learned atom: max-cosine counts it twice, matching once.
    true = np.array([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0]])
    learned = np.array([[0.9, 0.3, 0.0], [0.0, 0.0, 1.0]])
    best = _abs_cosines(true, learned).max(axis=1).mean()
    assert mean_max_cosine(true, learned) == pytest.approx(best)
    assert matched_cosine(true, learned) == pytest.approx(_abs_cosines(true, learned)[[0, 1], [0, 1]].sum() / 2)
    assert matched_cosine(true, learned) < 0.5 < mean_max_cosine(true, learned)


def test_fewer_learned_than_true_atoms_count_as_zero():
    true = np.eye(4)
    assert matched_cosine(true, np.eye(4)[:3]) == pytest.approx(3 / 4)
    assert match_features(true, np.eye(4)[:3])[0].shape == (3,)


@settings(deadline=None, max_examples=25)
@given(st.integers(0, 2**31 - 1), st.integers(2, 6), st.integers(2, 7))
def test_matched_cosine_invariant_to_learned_order_sign_scale(seed, n_true, n_learned):
    rng = np.random.RandomState(seed)
    true, learned = rng.standard_normal((n_true, 5)), rng.standard_normal((n_learned, 5))
    signs, scales = rng.choice([-1, 1], (n_learned, 1)), rng.uniform(0.1, 10, (n_learned, 1))
    transformed = learned[rng.permutation(n_learned)] * signs * scales
    score = matched_cosine(true, learned)
    assert matched_cosine(true, transformed) == pytest.approx(score, rel=1e-10)
    assert score <= mean_max_cosine(true, learned) + 1e-12


@pytest.mark.parametrize("n_learned", [3, 4, 6])
def test_mcc_equals_brute_force_with_numpy_corrcoef(n_learned):
    rng = np.random.RandomState(n_learned)
    true_codes = rng.exponential(size=(60, 4)) * (rng.random_sample((60, 4)) < 0.5)
    learned = rng.standard_normal((60, n_learned)) + np.hstack([true_codes, true_codes])[:, :n_learned]
    expected = _brute_force_assignment(_abs_corr(true_codes, learned)) / 4
    assert mcc(true_codes, learned) == pytest.approx(expected, rel=1e-12)


def test_mcc_is_one_for_affine_relabelling_and_leaves_constant_true_dims_out():
    rng = np.random.RandomState(1)
    true_codes = rng.exponential(size=(50, 5)) * (rng.random_sample((50, 5)) < 0.4)
    true_codes[:, 2] = 0.0  # never active here: left out
    learned = 3.0 - 2.5 * true_codes[:, [4, 0, 3, 1]]  # permuted, flipped, scaled, shifted
    learned = np.hstack([learned, np.zeros((50, 1))])  # a dead latent
    assert mcc(true_codes, learned) == pytest.approx(1.0, abs=1e-12)
    true_index, learned_index, abs_correlation = match_codes(true_codes, learned)
    np.testing.assert_array_equal(true_index, [0, 1, 3, 4])
    np.testing.assert_array_equal(learned_index, [1, 3, 2, 0])
    np.testing.assert_allclose(abs_correlation, 1.0, atol=1e-12)


def test_constant_column_with_rounding_prone_value_is_left_out():
    true_codes = np.column_stack([np.full(3, 0.1), [0.0, 1.0, 2.0]])  # mean of 0.1s is not exactly 0.1
    assert mcc(true_codes, np.array([[0.0], [1.0], [2.0]])) == pytest.approx(1.0)
    assert match_codes(true_codes, np.array([[0.0], [1.0], [2.0]]))[0].tolist() == [1]


def test_dead_latents_have_zero_correlation():
    true_codes = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0]])
    assert mcc(true_codes, np.zeros((3, 2))) == 0.0


@settings(deadline=None, max_examples=25)
@given(st.integers(0, 2**31 - 1), st.integers(1, 5), st.integers(1, 6))
def test_mcc_invariant_to_permutation_sign_scale_of_learned_dims(seed, n_true, n_learned):
    rng = np.random.RandomState(seed)
    true_codes = rng.exponential(size=(30, n_true)) * (rng.random_sample((30, n_true)) < 0.5)
    true_codes[0] = 1.0  # every true dimension varies
    true_codes[1] = 0.0
    learned = rng.standard_normal((30, n_learned))
    signs = rng.choice([-1.0, 1.0], n_learned)
    affine = learned * signs * rng.uniform(0.1, 10, n_learned) + rng.standard_normal(n_learned)
    transformed = affine[:, rng.permutation(n_learned)]
    score = mcc(true_codes, learned)
    assert 0.0 <= score <= 1.0
    assert mcc(true_codes, transformed) == pytest.approx(score, rel=1e-9, abs=1e-12)
    # Permuting the true dimensions changes nothing either.
    assert mcc(true_codes[:, rng.permutation(n_true)], learned) == pytest.approx(score, rel=1e-9, abs=1e-12)


def test_float32_stays_accurate():
    rng = np.random.RandomState(2)
    true_codes = rng.exponential(size=(200, 6))
    learned = true_codes[:, ::-1] + 0.1 * rng.standard_normal((200, 6))
    single = mcc(true_codes.astype(np.float32), learned.astype(np.float32))
    assert single == pytest.approx(mcc(true_codes, learned), rel=1e-5)


def test_errors():
    with pytest.raises(ValueError, match="No column of true_codes varies"):
        mcc(np.ones((4, 3)), np.random.rand(4, 2))
    with pytest.raises(ValueError, match="same samples"):
        mcc(np.random.rand(5, 2), np.random.rand(4, 2))
    with pytest.raises(ValueError, match="at least 2 row"):
        mcc(np.random.rand(1, 2), np.random.rand(1, 2))
    with pytest.raises(ValueError, match="NaN or infinity"):
        mcc(np.array([[0.0], [np.nan]]), np.random.rand(2, 1))
    with pytest.raises(ValueError, match="same number of columns"):
        matched_cosine(np.eye(3), np.eye(4))


@pytest.mark.gpu
def test_cupy_matches_numpy():
    import cupy

    rng = np.random.RandomState(3)
    true, learned = rng.standard_normal((6, 10)), rng.standard_normal((9, 10))
    true_codes, learned_codes = rng.exponential(size=(40, 6)), rng.standard_normal((40, 9))
    gpu_cosine = matched_cosine(cupy.asarray(true), cupy.asarray(learned))
    assert gpu_cosine == pytest.approx(matched_cosine(true, learned), rel=1e-12)
    gpu_mcc = mcc(cupy.asarray(true_codes), cupy.asarray(learned_codes))
    assert gpu_mcc == pytest.approx(mcc(true_codes, learned_codes), rel=1e-12)
    indices = match_codes(cupy.asarray(true_codes), cupy.asarray(learned_codes))
    assert all(isinstance(a, cupy.ndarray) for a in indices)
    for gpu, cpu in zip(indices, match_codes(true_codes, learned_codes)):
        np.testing.assert_allclose(cupy.asnumpy(gpu), cpu, rtol=1e-12)
