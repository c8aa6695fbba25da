"""The shared training guards: which parameters a divergence restores, and the ConvergenceWarning's form."""

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skdict._guards import DIVERGENCE_FACTOR, DivergenceGuard, all_finite, warn_not_converged
from skdict.exceptions import TrainingDivergedError


class _Owner:
    """Stands for the estimator named in the message."""


def _guard(reference_loss=1.0, **arrays):
    arrays = arrays or {"w": np.zeros(3), "m": np.zeros((2, 2))}
    return arrays, DivergenceGuard(arrays, reference_loss=reference_loss, estimator=_Owner(), fix="Lower learning_rate.")


def test_restores_the_last_confirmed_checkpoint_not_the_unconfirmed_one():
    arrays, guard = _guard()
    arrays["w"][:] = 1.0
    guard.checkpoint()
    guard.check(2.0, "step 1")  # the loss at w = 1 is sane: w = 1 is confirmed
    arrays["w"][:] = 2.0
    guard.checkpoint()  # w = 2 is a candidate, never evaluated
    arrays["w"][:] = 3.0
    with pytest.raises(TrainingDivergedError, match=r"_Owner diverged at step 2: the loss reached 1e\+09.*Lower learning_rate"):
        guard.check(1e9, "step 2")
    np.testing.assert_array_equal(arrays["w"], 1.0)


def test_restores_in_place_so_the_owner_sees_it():
    w = np.full(4, 7.0)
    arrays, guard = _guard(w=w)
    w[:] = np.nan
    with pytest.raises(TrainingDivergedError, match="became non-finite"):
        guard.check_arrays("step 1")
    assert arrays["w"] is w
    np.testing.assert_array_equal(w, 7.0)  # the starting parameters: nothing was confirmed since


@pytest.mark.parametrize("loss", [np.inf, -np.inf, np.nan])
def test_a_non_finite_loss_diverges(loss):
    _, guard = _guard()
    with pytest.raises(TrainingDivergedError, match="the loss became"):
        guard.check(loss, "here")


def test_limit_is_factor_times_the_reference():
    _, guard = _guard(reference_loss=2.0)
    guard.check(1.0, "first")  # below the reference: the reference stays
    guard.check(2.0 * DIVERGENCE_FACTOR, "at the limit")  # sane: not above the limit
    with pytest.raises(TrainingDivergedError, match="more than 100x"):
        guard.check(2.0 * DIVERGENCE_FACTOR * 1.01, "above")


def test_a_first_loss_above_the_reference_raises_the_bar():
    _, guard = _guard(reference_loss=1.0)
    guard.check(50.0, "first")  # the start is worse than the trivial model (e.g. a wide random dictionary)
    assert guard.limit == 50.0 * DIVERGENCE_FACTOR
    guard.check(60.0, "second")
    assert guard.limit == 50.0 * DIVERGENCE_FACTOR  # only the first loss counts


def test_first_loss_is_the_reference_when_none_is_given():
    _, guard = _guard(reference_loss=None)
    assert guard.limit == np.inf
    guard.check(3.0, "first")
    assert guard.limit == 3.0 * DIVERGENCE_FACTOR


def test_checkpoints_reuse_their_buffers():
    arrays, guard = _guard()
    guard.checkpoint()
    first = guard._candidate["w"]
    guard.check(1.0, "a")
    guard.checkpoint()
    guard.check(1.0, "b")
    guard.checkpoint()  # takes the buffers freed by the first confirmation
    assert guard._candidate["w"] is first


def test_all_finite():
    assert all_finite({"a": np.ones(2), "b": np.zeros((1, 1))})
    assert not all_finite({"a": np.ones(2), "b": np.array([[np.inf]])})
    assert all_finite({})


def test_warn_not_converged_names_the_estimator_and_the_fix():
    with pytest.warns(ConvergenceWarning, match=r"^_Owner: max_iter=3 ended early; raise max_iter\.$"):
        warn_not_converged(_Owner(), "max_iter=3 ended early", "raise max_iter")
