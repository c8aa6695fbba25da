"""How a training loop ends badly: it diverges (raise) or runs out of budget (warn).

Every iterative learner of skdict (the SAE engine, LISTA, the softplus-Adam
learner, the dictionary learners and sparse coders) uses these two pieces, so a
failure reads the same everywhere:

- :class:`DivergenceGuard` watches the loss of each step. A loss that is not
  finite, or that exceeds ``factor`` times a reference loss (the loss of the
  trivial model: codes all zero, or the first loss seen), is a divergence: the
  guard puts back the last parameters whose loss was *sane* (not merely finite)
  and raises :class:`~skdict.exceptions.TrainingDivergedError` naming what to lower.
- :func:`keeps_state_on_failure` makes a fitting method leave its estimator as it
  was when the call fails for any other reason (bad input found part-way through).
- :func:`warn_not_converged` emits scikit-learn's
  :class:`~sklearn.exceptions.ConvergenceWarning` with the estimator, what ran
  out and the fix.
"""

from __future__ import annotations

import functools
import math
import warnings

from sklearn.exceptions import ConvergenceWarning

from skdict._array import get_namespace
from skdict.exceptions import TrainingDivergedError

#: A loss this many times the reference (trivial-model) loss is a divergence, not a slow start.
#: A fit that makes its model 100x worse than all-zero codes has left every basin worth keeping;
#: a slow or noisy fit stays within a few times the reference.
DIVERGENCE_FACTOR = 100.0


def all_finite(arrays):
    """Whether every array of the dict ``arrays`` is finite, with one device-to-host read."""
    values = list(arrays.values())
    if not values:
        return True
    xp = get_namespace(*values)
    return bool(xp.stack([xp.isfinite(a).all() for a in values]).all())


class DivergenceGuard:
    """Keep the last parameters whose loss was sane; restore them and raise on divergence.

    The guard holds a copy of the watched arrays taken at a *checkpoint*
    (:meth:`checkpoint`, e.g. once per epoch or every N steps). A copy only
    becomes the one restored after a later loss evaluated at those very
    parameters was found sane (:meth:`check`), so a step that broke the
    parameters is never kept. The copy buffers are allocated once.

    Parameters
    ----------
    arrays : dict of str to array
        The arrays to protect, updated in place by the training loop (the model's
        parameters, and the optimizer's moments so a resumed fit does not start
        from exploded statistics). Restoring writes into them in place.
    reference_loss : float or None
        The loss of the trivial model (e.g. :math:`\\tfrac12\\,\\mathrm{mean}\\|y - b_{dec}\\|^2` for
        an SAE, all-zero codes). ``None``: the first loss checked. The threshold is
        ``factor * max(reference_loss, first loss)``.
    estimator : object
        Named in the error message.
    fix : str
        What to lower, appended to the message (e.g. ``"Lower learning_rate (now 1000)."``).
    factor : float, default=:data:`DIVERGENCE_FACTOR`

    Raises
    ------
    TrainingDivergedError
        From :meth:`check` (and :meth:`check_arrays`) on divergence, after the restore.
    """

    def __init__(self, arrays, *, reference_loss=None, estimator, fix, factor=DIVERGENCE_FACTOR):
        self.arrays = arrays
        self.factor = factor
        self.estimator = estimator
        self.fix = fix
        self._reference = None if reference_loss is None else float(reference_loss)
        self._seen_loss = False
        self._confirmed = {name: a.copy() for name, a in arrays.items()}  # sane by assumption: the start
        self._candidate = None  # taken at a checkpoint, not yet confirmed by a sane loss
        self._spare = None  # a buffer set to reuse for the next checkpoint

    @property
    def limit(self):
        """The largest loss still counted as sane (``inf`` before the first check without a reference)."""
        return math.inf if self._reference is None else self.factor * self._reference

    def checkpoint(self):
        """Copy the arrays now; the copy is kept once a loss at these parameters passes :meth:`check`."""
        if self._candidate is not None:  # never confirmed: its buffers are reused
            buffers = self._candidate
        elif self._spare is not None:
            buffers, self._spare = self._spare, None
        else:
            buffers = {name: get_namespace(a).empty_like(a) for name, a in self.arrays.items()}
        for name, a in self.arrays.items():
            buffers[name][...] = a
        self._candidate = buffers

    def check(self, loss, where):
        """Accept a loss evaluated at the current parameters, or restore and raise.

        Parameters
        ----------
        loss : float
        where : str
            Where training is (e.g. ``"epoch 3, step 120"``), for the message.
        """
        loss = float(loss)
        if not self._seen_loss and math.isfinite(loss):
            # the first loss is at the starting parameters: a start worse than the trivial model sets the bar
            self._seen_loss = True
            self._reference = abs(loss) if self._reference is None else max(self._reference, abs(loss))
        if not math.isfinite(loss):
            self.fail(where, f"the loss became {loss}")
        if loss > self.limit and self.limit > 0:
            self.fail(
                where,
                f"the loss reached {loss:.4g}, more than {self.factor:g}x the loss of the trivial model "
                f"({self._reference:.4g})",
            )
        if self._candidate is not None:  # the checkpointed parameters produced a sane loss
            self._spare, self._confirmed, self._candidate = self._confirmed, self._candidate, None

    def check_arrays(self, where):
        """Raise (after the restore) if any watched array is no longer finite."""
        if not all_finite(self.arrays):
            self.fail(where, "the parameters became non-finite")

    def fail(self, where, what):
        """Restore the last confirmed parameters and raise :class:`TrainingDivergedError`."""
        self.restore()
        raise TrainingDivergedError(
            f"{type(self.estimator).__name__} diverged at {where}: {what}. Training stopped and the "
            f"parameters of the last step with a sane loss are kept. {self.fix}"
        )

    def restore(self):
        """Write the last confirmed copy back into the watched arrays (in place)."""
        for name, saved in self._confirmed.items():
            self.arrays[name][...] = saved


def warn_not_converged(estimator, what, fix, *, stacklevel=3):
    """Emit a :class:`~sklearn.exceptions.ConvergenceWarning` in one form for every learner.

    Parameters
    ----------
    estimator : object or str
        The estimator (its class name is used) or a function name.
    what : str
        What ran out, e.g. ``"max_iter=30 epochs ended before the loss stopped improving by tol=1e-4"``.
    fix : str
        What to change, e.g. ``"raise max_iter or tol"``.
    """
    name = estimator if isinstance(estimator, str) else type(estimator).__name__
    warnings.warn(f"{name}: {what}; {fix}.", ConvergenceWarning, stacklevel=stacklevel)


def keeps_state_on_failure(method):
    """Make a fitting method leave the estimator as it was when it raises.

    Everything a call may change is an attribute, so the estimator's ``__dict__``
    is copied (shallow) before the call and put back if the call raises any
    ``Exception`` other than :class:`~skdict.exceptions.TrainingDivergedError`: a
    bad parameter, input or target found part-way through leaves a fitted model
    fitted and unchanged (and an unfitted one unfitted). A divergence is not
    undone: the model keeps its last sane parameters, as the error says.
    Arrays updated in place by training are not copied; an error raised mid-
    training (other than a divergence) leaves them at its last finite step.
    ``KeyboardInterrupt`` keeps what was trained so far.
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        saved = dict(self.__dict__)
        try:
            return method(self, *args, **kwargs)
        except TrainingDivergedError:
            raise
        except Exception:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    return wrapper
