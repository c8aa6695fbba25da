import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score, precision_score, recall_score

from skdict.metrics import match_features, support_scores


def _sklearn_oracle(true_codes, learned_codes, true_index, learned_index, tol=0.0):
    """Binary precision/recall/F1 of scikit-learn on the flattened masks, unmatched columns appended.

    Matched pairs are aligned column by column; an unmatched true column is compared
    with an all-silent prediction, and an unmatched learned column with an all-absent truth.
    """
    T, L = np.abs(true_codes) > tol, np.abs(learned_codes) > tol
    lone_true = np.setdiff1d(np.arange(T.shape[1]), true_index)
    lone_learned = np.setdiff1d(np.arange(L.shape[1]), learned_index)
    n = T.shape[0]
    y_true = np.hstack([T[:, true_index], T[:, lone_true], np.zeros((n, lone_learned.size), bool)])
    y_pred = np.hstack([L[:, learned_index], np.zeros((n, lone_true.size), bool), L[:, lone_learned]])
    args = (y_true.ravel(), y_pred.ravel())
    return (
        precision_score(*args, zero_division=0.0),
        recall_score(*args, zero_division=0.0),
        f1_score(*args, zero_division=0.0),
    )


def _codes(rng, n, width, rate):
    return rng.exponential(size=(n, width)) * (rng.random_sample((n, width)) < rate)


def test_hand_example():
    true_codes = np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]])
    learned = np.array([[0.5, 0.1, 0.0], [0.0, 1.0, 1.0]])
    # TP: (0,0), (1,1); learned active 4; true active 3.
    precision, recall, f1 = support_scores(true_codes, learned)
    assert (precision, recall) == (pytest.approx(2 / 4), pytest.approx(2 / 3))
    assert f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    scores = support_scores(true_codes, learned, tol=0.2)  # learned (0,1) = 0.1 no longer counts
    assert scores.precision == pytest.approx(2 / 3) and scores.recall == pytest.approx(2 / 3)


@pytest.mark.parametrize("tol", [0.0, 0.3])
def test_identity_matches_sklearn(tol):
    rng = np.random.RandomState(0)
    true_codes = _codes(rng, 40, 7, 0.3)
    learned = true_codes * (rng.random_sample(true_codes.shape) < 0.7) + _codes(rng, 40, 7, 0.1)
    expected = _sklearn_oracle(true_codes, learned, np.arange(7), np.arange(7), tol)
    np.testing.assert_allclose(support_scores(true_codes, learned, tol=tol), expected, rtol=1e-12)


def test_explicit_pairs_with_unmatched_columns_match_sklearn():
    rng = np.random.RandomState(1)
    true_codes, learned = _codes(rng, 50, 5, 0.3), _codes(rng, 50, 8, 0.3)
    learned[:, [6, 2, 0]] += true_codes[:, [0, 1, 3]]
    pairs = (np.array([0, 1, 3]), np.array([6, 2, 0]))
    expected = _sklearn_oracle(true_codes, learned, *pairs)
    np.testing.assert_allclose(support_scores(true_codes, learned, matching=pairs), expected, rtol=1e-12)


def test_codes_and_feature_matchings_recover_a_shuffled_copy():
    rng = np.random.RandomState(2)
    features = rng.standard_normal((6, 10))
    true_codes = _codes(rng, 80, 6, 0.3)
    order = rng.permutation(6)
    learned_codes, learned_atoms = 2.0 * true_codes[:, order], features[order]
    assert support_scores(true_codes, learned_codes, matching="codes") == (1.0, 1.0, 1.0)
    by_atoms = match_features(features, learned_atoms)[:2]
    assert support_scores(true_codes, learned_codes, matching=by_atoms) == (1.0, 1.0, 1.0)
    assert support_scores(true_codes, learned_codes).f1 < 0.5  # identity is the wrong matching here


@settings(deadline=None, max_examples=25)
@given(st.integers(0, 2**31 - 1), st.integers(1, 6), st.integers(1, 6))
def test_invariant_to_relabelling_learned_columns(seed, n_true, n_learned):
    rng = np.random.RandomState(seed)
    true_codes, learned = _codes(rng, 20, n_true, 0.4), _codes(rng, 20, n_learned, 0.4)
    n_pairs = min(n_true, n_learned)
    true_index = rng.permutation(n_true)[:n_pairs]
    learned_index = rng.permutation(n_learned)[:n_pairs]
    perm = rng.permutation(n_learned)
    inverse = np.argsort(perm)
    scores = support_scores(true_codes, learned, matching=(true_index, learned_index))
    relabelled = support_scores(true_codes, learned[:, perm], matching=(true_index, inverse[learned_index]))
    np.testing.assert_allclose(relabelled, scores, rtol=1e-12)
    np.testing.assert_allclose(scores, _sklearn_oracle(true_codes, learned, true_index, learned_index), rtol=1e-12)


def test_no_active_entries_give_zero():
    assert support_scores(np.zeros((3, 2)), np.zeros((3, 2))) == (0.0, 0.0, 0.0)
    assert support_scores(np.eye(2), np.zeros((2, 2))) == (0.0, 0.0, 0.0)


def test_errors():
    codes = np.eye(3)
    with pytest.raises(ValueError, match="matching='identity'.*same number of columns"):
        support_scores(codes, np.eye(3, 4))
    with pytest.raises(ValueError, match="matching must be 'identity', 'codes'"):
        support_scores(codes, codes, matching="hungarian")
    with pytest.raises(ValueError, match="matching must be"):
        support_scores(codes, codes, matching=(np.arange(3),))
    with pytest.raises(ValueError, match="repeats an index"):
        support_scores(codes, codes, matching=([0, 1], [2, 2]))
    with pytest.raises(ValueError, match=r"indices in \[0, 3\)"):
        support_scores(codes, codes, matching=([0, 3], [0, 1]))
    with pytest.raises(ValueError, match="1-D integer array"):
        support_scores(codes, codes, matching=([0.0, 1.0], [0, 1]))
    with pytest.raises(ValueError, match="same length"):
        support_scores(codes, codes, matching=([0, 1], [0]))
    with pytest.raises(ValueError, match="tol must be"):
        support_scores(codes, codes, tol=-1.0)
    with pytest.raises(ValueError, match="same samples"):
        support_scores(codes, np.eye(4, 3))


@pytest.mark.gpu
def test_cupy_matches_numpy():
    import cupy

    rng = np.random.RandomState(3)
    true_codes, learned = _codes(rng, 30, 5, 0.4), _codes(rng, 30, 5, 0.4)
    for matching in ("identity", "codes"):
        gpu = support_scores(cupy.asarray(true_codes), cupy.asarray(learned), matching=matching)
        np.testing.assert_allclose(gpu, support_scores(true_codes, learned, matching=matching), rtol=1e-12)
    pairs = (cupy.asarray([0, 2]), cupy.asarray([1, 4]))
    gpu = support_scores(cupy.asarray(true_codes), cupy.asarray(learned), matching=pairs)
    np.testing.assert_allclose(gpu, support_scores(true_codes, learned, matching=([0, 2], [1, 4])), rtol=1e-12)
