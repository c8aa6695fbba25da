"""Streaming moments: merged batches give the two-pass total variance, at any magnitude."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from skdict.ops.moments import RunningMoments, batch_moments


def _two_pass_total_variance(Y):
    Y = Y.astype(np.float64)
    return float(np.sum((Y - Y.mean(axis=0)) ** 2))


@settings(max_examples=60, deadline=None)
@given(
    n_rows=st.integers(1, 120),
    n_features=st.integers(1, 6),
    cuts=st.lists(st.integers(1, 119), max_size=6),
    offset=st.sampled_from([0.0, 1e6, -3e8]),
    seed=st.integers(0, 2**16),
)
def test_merged_batches_equal_the_two_pass_formula(n_rows, n_features, cuts, offset, seed):
    Y = np.random.default_rng(seed).normal(size=(n_rows, n_features)) + offset
    edges = sorted({0, n_rows, *[c for c in cuts if c < n_rows]})
    moments = RunningMoments()
    for a, b in zip(edges[:-1], edges[1:]):
        moments.update(Y[a:b])
    expected = _two_pass_total_variance(Y)
    assert moments.n == n_rows
    np.testing.assert_allclose(moments.mean, Y.mean(axis=0), rtol=1e-12, atol=1e-9 * (1 + abs(offset)))
    # a large offset costs float64 digits in the data itself (Y = N(0,1) + 3e8 keeps ~8 of them)
    np.testing.assert_allclose(moments.total_variance, expected, rtol=1e-9 + 1e-16 * offset**2, atol=1e-9)


def test_float32_near_its_largest_values_does_not_overflow():
    Y = (np.random.default_rng(0).normal(size=(50, 3)) * 1e37).astype(np.float32)
    moments = RunningMoments().update(Y[:20]).update(Y[20:])
    np.testing.assert_allclose(moments.total_variance, _two_pass_total_variance(Y), rtol=1e-6)
    assert np.isfinite(moments.total_variance)


def test_constant_rows_have_zero_variance_and_no_rows_have_none():
    assert RunningMoments().update(np.full((5, 2), 7.0)).total_variance == 0.0
    assert RunningMoments().total_variance == 0.0
