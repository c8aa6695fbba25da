"""learning_rate_factor: linear warmup, constant, linear decay."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skdict.ops.schedule import learning_rate_factor


def factors(total, warmup, decay):
    return np.array(
        [learning_rate_factor(s, total, warmup_fraction=warmup, decay_fraction=decay) for s in range(total)]
    )


def test_warmup_is_linear_and_reaches_one():
    f = factors(100, 0.1, 0.0)  # 10 warmup steps
    np.testing.assert_allclose(f[:10], np.arange(1, 11) / 10, rtol=1e-15)
    np.testing.assert_allclose(np.diff(f[:10]), 0.1, rtol=1e-12)
    assert f[9] == 1.0
    np.testing.assert_array_equal(f[10:], 1.0)


def test_decay_is_linear_and_positive_at_the_last_step():
    f = factors(100, 0.0, 0.25)  # 25 decay steps: 75..99
    np.testing.assert_array_equal(f[:76], 1.0)  # step 75 is the decay's first, still 1
    np.testing.assert_allclose(f[75:], (100 - np.arange(75, 100)) / 25, rtol=1e-15)
    np.testing.assert_allclose(np.diff(f[75:]), -1 / 25, rtol=1e-12)
    assert f[-1] == pytest.approx(1 / 25)
    assert f[-1] > 0


def test_warmup_then_constant_then_decay():
    f = factors(50, 0.2, 0.4)  # 10 warmup, 30..49 decay
    np.testing.assert_allclose(f[:10], np.arange(1, 11) / 10)
    np.testing.assert_array_equal(f[10:31], 1.0)
    np.testing.assert_allclose(f[30:], (50 - np.arange(30, 50)) / 20)


@pytest.mark.parametrize("step", [0, 1, 10, 10**6])
def test_unknown_horizon_gives_one(step):
    assert learning_rate_factor(step, None, warmup_fraction=0.1, decay_fraction=0.2) == 1.0


@pytest.mark.parametrize("total", [1, 2, 7, 1000])
def test_zero_fractions_give_constant_one(total):
    np.testing.assert_array_equal(factors(total, 0.0, 0.0), 1.0)


@settings(max_examples=200, deadline=None)
@given(
    total=st.integers(1, 400),
    warmup=st.floats(0.0, 1.0),
    decay=st.floats(0.0, 1.0),
    data=st.data(),
)
def test_factor_in_unit_interval(total, warmup, decay, data):
    step = data.draw(st.integers(0, total - 1), label="step")
    f = learning_rate_factor(step, total, warmup_fraction=warmup, decay_fraction=decay)
    assert 0.0 < f <= 1.0


@settings(max_examples=50, deadline=None)
@given(total=st.integers(1, 300), warmup=st.floats(0.0, 0.5), decay=st.floats(0.0, 0.5))
def test_factor_rises_then_falls(total, warmup, decay):
    # with both fractions <= 1/2 the windows cannot overlap: the factor rises to
    # exactly 1, stays, then falls
    f = factors(total, warmup, decay)
    peak = int(np.argmax(f))
    assert np.all(np.diff(f[: peak + 1]) >= 0)
    assert np.all(np.diff(f[peak:]) <= 0)
    assert f.max() == 1.0


@pytest.mark.parametrize("total, fraction, n_steps", [(100, 0.07, 7), (100, 0.29, 29), (1000, 0.57, 570)])
def test_step_counts_are_not_skewed_by_float_rounding(total, fraction, n_steps):
    # 0.07 * 100 == 7.000000000000001 and 0.57 * 100 == 56.99999999999999 in floating point
    f = factors(total, fraction, 0.0)
    assert f[n_steps - 1] == 1.0 and f[n_steps - 2] < 1.0
    f = factors(total, 0.0, fraction)
    assert f[total - n_steps] == 1.0 and f[total - n_steps + 1] < 1.0
