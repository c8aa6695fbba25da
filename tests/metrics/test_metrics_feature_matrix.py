"""PCC between feature matrices, against scipy.stats.pearsonr, and its scorer."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import pearsonr

from skdict.metrics import feature_matrix_pcc, make_feature_matrix_scorer


def _psd(p, seed):
    D = np.random.default_rng(seed).standard_normal((p, p))
    return D.T @ D


@settings(deadline=None, max_examples=20)
@given(st.integers(2, 8), st.integers(0, 2**31 - 1), st.floats(1e-3, 1e3))
def test_pcc_matches_pearsonr_and_ignores_scale(p, seed, c):
    A, B = _psd(p, seed), _psd(p, seed + 1)
    rows, cols = np.triu_indices(p)
    expected = pearsonr(A[rows, cols], B[rows, cols]).statistic
    assert feature_matrix_pcc(A, B) == pytest.approx(expected, abs=1e-12)
    assert feature_matrix_pcc(A, c * B) == pytest.approx(expected, abs=1e-12)
    assert feature_matrix_pcc(A, A) == pytest.approx(1.0)


def test_pcc_uses_the_upper_triangle_only():
    A = np.array([[1.0, 2.0], [2.0, 5.0]])
    B = np.array([[1.0, 2.0], [-100.0, 5.0]])  # the lower triangle is ignored
    assert feature_matrix_pcc(A, B) == pytest.approx(1.0)


def test_pcc_errors():
    with pytest.raises(ValueError, match="square"):
        feature_matrix_pcc(np.eye(2), np.ones((2, 3)))
    with pytest.raises(ValueError, match="same shape"):
        feature_matrix_pcc(np.eye(2), np.eye(3))
    with pytest.raises(ValueError, match="all equal"):
        feature_matrix_pcc(np.eye(2), np.ones((2, 2)))


def test_scorer_reads_feature_matrix():
    A = _psd(4, 0)

    class Fitted:
        feature_matrix_ = 3 * A

    scorer = make_feature_matrix_scorer(A)
    assert scorer(Fitted(), None) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="square"):
        make_feature_matrix_scorer(np.ones((2, 3)))
