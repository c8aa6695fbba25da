"""The triplet contrasts: three ways of computing them agree, and their signs follow the labels."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skdict.triplets._comparisons import (
    comparison_rows,
    contrasts_from_factor,
    contrasts_from_matrix,
    triplet_differences,
)


def _random_problem(seed, n=7, p=5, r=3):
    rng = np.random.default_rng(seed)
    T = rng.standard_normal((n, 3, p))
    U = rng.standard_normal((p, r))
    return T, U


@settings(deadline=None, max_examples=15)
@given(st.integers(0, 2**31 - 1))
def test_matrix_factor_and_rows_agree(seed):
    T, U = _random_problem(seed)
    A, B, inverse_scale = triplet_differences(T)
    Phi = U @ U.T
    from_matrix = contrasts_from_matrix(A, B, inverse_scale, Phi)
    from_factor, AU, BU = contrasts_from_factor(A, B, inverse_scale, U)
    from_rows = comparison_rows(A, B, inverse_scale) @ Phi.reshape(-1)
    np.testing.assert_allclose(from_factor, from_matrix, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(from_rows, from_matrix, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(AU, A @ U)
    np.testing.assert_allclose(BU, B @ U)


def test_contrast_definition_by_hand():
    # x = 0, y = (1, 0), z = (0, 2); Phi = diag(3, 1): d(x, y) = 3, d(x, z) = 4, w = 1 + 4.
    T = np.array([[[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]]])
    A, B, inverse_scale = triplet_differences(T)
    s = contrasts_from_matrix(A, B, inverse_scale, np.diag([3.0, 1.0]))
    assert s[0] == pytest.approx((4.0 - 3.0) / 5.0)  # positive: x is closer to y


def test_degenerate_triplet_has_zero_contrast():
    T = np.ones((2, 3, 4))
    T[1, 2] = 0.0
    A, B, inverse_scale = triplet_differences(T)
    assert inverse_scale[0] == 0 and inverse_scale[1] == pytest.approx(1 / 4)
    s = contrasts_from_matrix(A, B, inverse_scale, np.eye(4))
    assert s[0] == 0 and np.isfinite(s).all()


@settings(deadline=None, max_examples=15)
@given(st.integers(0, 2**31 - 1), st.floats(1e-3, 1e3))
def test_contrast_is_blind_to_the_triplet_scale(seed, c):
    T, U = _random_problem(seed)
    A, B, inverse_scale = triplet_differences(T)
    A2, B2, inverse_scale2 = triplet_differences(c * T)
    s = contrasts_from_factor(A, B, inverse_scale, U)[0]
    s2 = contrasts_from_factor(A2, B2, inverse_scale2, U)[0]
    np.testing.assert_allclose(s2, s, rtol=1e-9, atol=1e-12)


def test_identity_contrasts_lie_in_unit_interval():
    T, _ = _random_problem(0, n=200)
    A, B, inverse_scale = triplet_differences(T)
    s = contrasts_from_matrix(A, B, inverse_scale, np.eye(T.shape[2]))
    assert np.all(np.abs(s) <= 1 + 1e-12)
