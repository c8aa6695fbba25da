"""The training engine shared by every SAE: minibatch Adam over epochs.

One call of :func:`run_epochs` shuffles, steps through minibatches, applies the
learning-rate schedule, gradient clipping, the unit-norm decoder constraint and
Adam, tracks dead latents, records ``history_`` and stops early or on divergence.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np

from skdict._array import get_namespace
from skdict._guards import DivergenceGuard, warn_not_converged
from skdict._progress import EpochProgress
from skdict.exceptions import TrainingDivergedError
from skdict.ops._threads import single_threaded_blas
from skdict.ops.atoms import normalize_rows, remove_parallel_component
from skdict.ops.schedule import learning_rate_factor
from skdict.sae._step import l2_norm, sum_of_squares

HISTORY_KEYS = ("loss", "explained_variance", "l0", "dead_fraction")


#: Steps between two checkpoints of the divergence guard inside an epoch (one is also taken at
#: the start of every epoch). A checkpoint copies the parameters and Adam's two moments (3x the
#: parameters' memory, allocated once); at this cadence a divergence in an hours-long epoch loses
#: at most 1000 steps, and the copy costs about 1/1000 of a step's time.
CHECKPOINT_STEPS = 1000

def _global_norm(grads):
    """:math:`\\sqrt{\\sum \\|g\\|^2}` over every gradient, read back from the device once.

    The fast sum in the gradients' dtype is exact enough for clipping; when it
    overflows (float32 gradients above ~1e19), each norm is recomputed without overflow.
    """
    xp = get_namespace(*grads.values())
    total = sum(xp.vdot(g.ravel(), g.ravel()) for g in grads.values())  # device scalars, one sync below
    total = float(total)
    if math.isfinite(total):
        return math.sqrt(total)
    return math.hypot(*(l2_norm(g) for g in grads.values()))


def trivial_loss(model, Y):
    """The loss of the trivial model on the target rows ``Y``: codes all zero, :math:`\\hat y = b_{dec}`.

    :math:`\\tfrac{1}{2B}\\sum_n \\|y_n - b_{dec}\\|^2`, in the units of the training loss
    (:mod:`skdict.sae._step`); the divergence guard's reference.
    """
    return 0.5 * sum_of_squares(Y - model.decoder_bias_) / max(1, Y.shape[0])


def _divergence_fix(model):
    return (
        f"Lower learning_rate (now {model.learning_rate:g}), set max_grad_norm "
        f"(now {model.max_grad_norm}), or scale X (e.g. StandardScaler)."
    )


class _TrainingGuard:
    """The :class:`~skdict._guards.DivergenceGuard` of one training call, over parameters and Adam's state.

    Watches the parameters and Adam's moments :math:`m, v` (so a later ``partial_fit``
    or warm start never resumes from exploded statistics), and restores Adam's step
    count :math:`t` with them. The reference loss is the larger of the trivial model's
    loss on the first minibatch and the first loss (at the parameters the call started
    from): a wide SAE can start far worse than :math:`\\hat y = b_{dec}`, and a resumed
    one far better. The guard is built at the first step, when both are known.
    """

    def __init__(self, model, params):
        self.model, self.params = model, params
        self.guard = None
        self.confirmed_t = self.candidate_t = model._adam.t

    def _watched(self):
        adam = self.model._adam
        arrays = dict(self.params)
        for name in self.params:
            arrays[f"adam m of {name}"] = adam.m[name]
            arrays[f"adam v of {name}"] = adam.v[name]
        return arrays

    def checkpoint(self):
        """Copy the state now (kept once the next loss, at this state, is sane)."""
        if self.guard is not None:  # before the first step the guard's start copy is this state
            self.guard.checkpoint()
            self.candidate_t = self.model._adam.t

    def check_loss(self, loss, Y, where):
        """Accept the loss at the current parameters or restore the last sane state and raise."""
        if self.guard is None:
            self.guard = DivergenceGuard(  # the guard takes the larger of this reference and the first loss
                self._watched(), reference_loss=trivial_loss(self.model, Y), estimator=self.model,
                fix=_divergence_fix(self.model),
            )
        self._guarded(self.guard.check, loss, where)
        self.confirmed_t = self.candidate_t

    def fail(self, where, what):
        """Restore the last sane state and raise (e.g. a non-finite gradient)."""
        self._guarded(self.guard.fail, where, what)

    def check_parameters(self, where):
        """Restore and raise if a parameter (or a moment) is no longer finite."""
        self._guarded(self.guard.check_arrays, where)

    def _guarded(self, function, *args):
        try:
            function(*args)
        except TrainingDivergedError:
            self.model._adam.t = self.confirmed_t
            raise


def _train_step(model, params, Xb, Yb, lr_factor, guard, where):
    """One optimizer step on a minibatch; returns the step's :class:`StepResult`.

    ``guard`` (a :class:`_TrainingGuard`) checks the loss at the parameters the step
    starts from, the gradient, and the parameters after the update.
    """
    result = model._loss_and_grads(params, Xb, Yb, model._dead_mask())
    grads = result.grads
    if model._regularizer is not None:
        result.loss += model._regularizer.add_to(params, grads)
    guard.check_loss(result.loss, Yb, where)
    remove_parallel_component(grads["components_"], params["components_"])
    norm = _global_norm(grads)
    if not math.isfinite(norm):
        guard.fail(where, "the gradient became non-finite")
    if model.max_grad_norm is not None and norm > model.max_grad_norm:
        scale = model.max_grad_norm / norm
        for grad in grads.values():
            grad *= scale
    base = model.learning_rate * lr_factor
    rates = {name: base * model._lr_scales.get(name, 1.0) for name in grads}
    model._adam.step(params, grads, rates)
    normalize_rows(params["components_"], out=params["components_"])
    guard.check_parameters(where)
    model._record_firing(result.active_columns, Xb.shape[0])
    model._after_step(result)
    return result


@dataclass
class TrainingRun:
    """What one call of :func:`run_epochs` did."""

    n_epochs: int  # epochs completed
    stopped_early: bool  # early stopping (tol / n_iter_no_change) ended the run


def run_epochs(model, data, *, n_epochs, scheduled, early_stopping):
    """Train ``model`` for up to ``n_epochs`` passes over ``data``.

    Parameters
    ----------
    model : fitted-initialised SAE estimator
    data : :class:`~skdict.sae._data.InMemoryData` or :class:`~skdict.sae._data.StreamedData`
        Gives each epoch's ``(Xb, Yb)`` minibatches on the training device.
    n_epochs : int
    scheduled : bool
        Apply warmup and decay over the ``n_epochs`` horizon (``fit``); a
        constant rate otherwise (``partial_fit``, whose horizon is unknown).
    early_stopping : bool
        Stop when the epoch loss has not improved by a relative ``tol`` for
        ``n_iter_no_change`` epochs.

    Returns
    -------
    TrainingRun

    Raises
    ------
    TrainingDivergedError
        A loss that is not finite or above 100x the reference (see :class:`_TrainingGuard`),
        a non-finite gradient or parameter. The parameters, Adam's moments and step count
        are those of the last checkpoint (epoch start, or every :data:`CHECKPOINT_STEPS`
        steps) whose loss was sane; ``history_`` holds the completed epochs.
    """
    n_samples = data.n_rows  # None for a stream of unknown length: no schedule horizon, a constant rate
    batch_size = model.batch_size if n_samples is None else min(model.batch_size, n_samples)
    total_steps = n_epochs * math.ceil(n_samples / batch_size) if scheduled and n_samples is not None else None
    params = model._params()
    xp = get_namespace(*params.values())
    guard = _TrainingGuard(model, params)
    progress = EpochProgress(n_epochs, enabled=model.verbose > 0, description=type(model).__name__)
    best_loss, stale, n_run, step = math.inf, 0, 0, 0
    # Overflow is detected explicitly (sane loss, finite gradient and parameters at every step), so
    # NumPy's floating-point warnings would only duplicate the divergence error.
    # A model whose step multiplies on the ops threads (the row-blocked forward) trains with BLAS
    # pinned to one thread throughout: no BLAS workers spinning between steps, no switching per step.
    pin = single_threaded_blas() if getattr(model, "_rowwise_support", False) else contextlib.nullcontext()
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"), progress, pin:
        for epoch in range(n_epochs):
            loss_sum = error_sum = active_sum = 0.0
            n_seen = 0
            for batch, (Xb, Yb) in enumerate(data.epoch(model._rng, batch_size)):
                if batch % CHECKPOINT_STEPS == 0:
                    guard.checkpoint()
                factor = learning_rate_factor(
                    step, total_steps, warmup_fraction=model.warmup_fraction, decay_fraction=model.decay_fraction
                )
                where = f"epoch {epoch + 1}, step {step + 1}"
                result = _train_step(model, params, Xb, Yb, factor, guard, where)
                step += 1
                loss_sum += result.loss * Xb.shape[0]
                error_sum += result.squared_error
                active_sum += result.n_active
                n_seen += Xb.shape[0]
            target_variance = data.total_variance()
            n_run += 1
            epoch_loss = loss_sum / n_seen
            stats = {
                "loss": epoch_loss,
                "explained_variance": 1.0 - error_sum / target_variance if target_variance > 0 else math.nan,
                "l0": active_sum / n_seen,
                "dead_fraction": float(xp.mean(model._dead_mask().astype(xp.float64))),
            }
            for key in HISTORY_KEYS:
                model.history_[key].append(stats[key])
            if model._epoch_callback is not None:
                model._epoch_callback(model)
            progress.update(stats)
            if early_stopping:
                improved = not math.isfinite(best_loss) or epoch_loss < best_loss - model.tol * abs(best_loss)
                if improved:
                    best_loss, stale = epoch_loss, 0
                else:
                    stale += 1
                    if stale >= model.n_iter_no_change:
                        return TrainingRun(n_run, stopped_early=True)
    return TrainingRun(n_run, stopped_early=False)


def warn_if_unfinished(model, run, *, stacklevel):
    """The warnings of a ``fit`` that ended without an error but not in a good state.

    ``stacklevel`` counts as :func:`warnings.warn`'s would in the caller (1: the caller's line).

    - ``max_iter`` epochs all ran and early stopping did not end them:
      :class:`~sklearn.exceptions.ConvergenceWarning` (as scikit-learn's MLP).
    - The last epoch explained less variance than :math:`\\hat y = b_{dec}` alone
      (negative explained variance): the model is worse than the data's mean,
      almost always a learning rate too high to settle. Also a
      :class:`~sklearn.exceptions.ConvergenceWarning`: training did not reach a
      useful solution, and it is the category scikit-learn users already watch
      and filter for fits that did not work out.
    """
    if not run.stopped_early:
        warn_not_converged(
            model,
            f"all max_iter={model.max_iter} epochs ran before early stopping ended the fit (the epoch loss "
            f"had not stalled, within a relative tol={model.tol:g}, for n_iter_no_change={model.n_iter_no_change} "
            "epochs)",
            "raise max_iter (or tol) to train to convergence",
            stacklevel=stacklevel + 2,
        )
    scores = model.history_["explained_variance"]
    if scores and scores[-1] < 0:
        if len(scores) > 1 and scores[-1] < max(scores):  # it was better earlier: the steps overshoot
            fix = f"lower learning_rate (now {model.learning_rate:g})"
        else:  # still rising from a poor start
            fix = f"train longer (max_iter now {model.max_iter}) or lower learning_rate (now {model.learning_rate:g})"
        warn_not_converged(
            model,
            f"the model is worse than its mean: explained variance {scores[-1]:.3g} < 0 on the training data "
            "in the last epoch (reconstructing every row by decoder_bias_ alone scores 0)",
            fix,
            stacklevel=stacklevel + 2,
        )
