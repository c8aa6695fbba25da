"""The training engine shared by every SAE: minibatch Adam over epochs.

One call of :func:`run_epochs` shuffles, steps through minibatches, applies the
learning-rate schedule, gradient clipping, the unit-norm decoder constraint and
Adam, tracks dead latents, records ``history_`` and stops early or on divergence.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import dataclasses
from dataclasses import dataclass

import numpy as np

from skdict._array import get_namespace
from skdict._guards import DivergenceGuard, warn_not_converged
from skdict._history import CORE_KEYS, append_record, call_callback
from skdict._progress import StepProgress
from skdict.exceptions import TrainingDivergedError
from skdict.ops._threads import single_threaded_blas
from skdict.ops.atoms import normalize_rows, remove_parallel_component
from skdict.ops.moments import RunningMoments
from skdict.sae._data import InMemoryData
from skdict.ops.schedule import learning_rate_factor
from skdict.sae._checkpoint import TrainingCheckpoints
from skdict.sae._resampling import resample_dead_latents, start_resampling
from skdict.sae._step import l2_norm, sum_of_squares

HISTORY_KEYS = CORE_KEYS


#: Steps between two checkpoints of the divergence guard inside an epoch (one is also taken at
#: the start of every epoch). A checkpoint copies the parameters and Adam's two moments (3x the
#: parameters' memory, allocated once); at this cadence a divergence in an hours-long epoch loses
#: at most 1000 steps, and the copy costs about 1/1000 of a step's time.
CHECKPOINT_STEPS = 1000

def gradient_units(model, grads):
    """The size of each gradient when the data are at their own scale: :math:`s_{out} s_{in}` or :math:`s_{out}`.

    With inputs of per-coordinate RMS :math:`s_{in}` and targets of :math:`s_{out}`
    (estimated at initialisation), the reconstruction loss is in units of
    :math:`s_{out}^2`; a weight's gradient (encoder, decoder) scales as
    :math:`s_{in} s_{out}` and a parameter in data units (a bias, a threshold: those
    with a learning-rate scale) as :math:`s_{out}`. Dividing by these makes the
    step the one the same model takes on standardised data: ``max_grad_norm`` and
    Adam's :math:`\\epsilon` then mean the same at any data scale (at 1e-10 the
    raw gradients of ~1e-20 were below :math:`\\epsilon` and nothing trained).
    """
    scale_in, scale_out = model._data_scale, model._lr_scales["decoder_bias_"]
    return {name: scale_out * (1.0 if name in model._lr_scales else scale_in) for name in grads}


def _global_norm(grads, units):
    """:math:`\\sqrt{\\sum \\|g / u\\|^2}` over every gradient, read back from the device once.

    The fast sum in the gradients' dtype is exact enough for clipping; when it
    overflows (float32 gradients above ~1e19), each norm is recomputed without overflow.
    """
    xp = get_namespace(*grads.values())
    total = sum(xp.vdot(g.ravel(), g.ravel()) / (units[name] * units[name]) for name, g in grads.items())
    total = float(total)  # device scalars above, one sync here
    if math.isfinite(total):
        return math.sqrt(total)
    return math.hypot(*(l2_norm(g) / units[name] for name, g in grads.items()))


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
    units = gradient_units(model, grads)
    norm = _global_norm(grads, units)  # of the standardised gradients
    if not math.isfinite(norm):
        guard.fail(where, "the gradient became non-finite")
    clip = model.max_grad_norm / norm if model.max_grad_norm is not None and norm > model.max_grad_norm else 1.0
    for name, grad in grads.items():
        grad *= clip / units[name]
    base = model.learning_rate * lr_factor
    rates = {name: base * model._lr_scales.get(name, 1.0) for name in grads}
    model._adam.step(params, grads, rates)
    normalize_rows(params["components_"], out=params["components_"])
    guard.check_parameters(where)
    model._record_firing(result.active_columns, Xb.shape[0])
    model._after_step(result)
    return result


#: The budget of a ``fit`` given neither ``max_iter``, ``max_steps`` nor ``max_samples``: at most this many
#: optimizer steps, ended earlier by early stopping. Small data converges and stops well before it (digits:
#: a few thousand steps); on large data it is a first look (5M samples at batch 256), not a full training run.
DEFAULT_MAX_STEPS = 20_000

#: Samples per logged window when ``log_every=None``: the window is ``ceil(min(n_samples, this) / batch_size)``
#: steps, one epoch on small data, so the windowed loss early stopping compares averages out the minibatch noise.
WINDOW_SAMPLES = 1 << 15


@dataclass
class Budget:
    """How long one training call may run: the first of its limits reached ends it (``None``: no limit).

    Attributes
    ----------
    epochs, steps, samples : int or None
        ``max_iter``, ``max_steps``, ``max_samples`` of the call.
    default : bool
        The limits are :data:`DEFAULT_MAX_STEPS` steps because none was given (named so in the warning).
    """

    epochs: int = None
    steps: int = None
    samples: int = None
    default: bool = False

    @classmethod
    def of(cls, model):
        """The budget of ``model.fit``: its ``max_iter``, ``max_steps``, ``max_samples``, else :data:`DEFAULT_MAX_STEPS`."""
        if model.max_iter is None and model.max_steps is None and model.max_samples is None:
            return cls(steps=DEFAULT_MAX_STEPS, default=True)
        return cls(model.max_iter, model.max_steps, model.max_samples)

    def horizon(self, n_rows, batch_size):
        """Optimizer steps until the budget runs out, or ``None`` when it cannot be known in advance.

        An epoch of ``n_rows`` is ``ceil(n_rows / batch_size)`` steps (its last minibatch may be short);
        ``max_samples`` counts whole epochs then the minibatches of the last one. With ``n_rows=None``
        (a stream of unknown length) only ``max_steps`` and ``max_samples`` give a horizon.
        """
        limits = [] if self.steps is None else [self.steps]
        if n_rows is None:
            if self.samples is not None:
                limits.append(math.ceil(self.samples / batch_size))
        else:
            per_epoch = math.ceil(n_rows / batch_size)
            if self.epochs is not None:
                limits.append(self.epochs * per_epoch)
            if self.samples is not None:
                whole, rest = divmod(self.samples, n_rows)
                limits.append(whole * per_epoch + math.ceil(rest / batch_size))
        return min(limits) if limits else None

    def spent(self, *, epochs, steps, samples):
        """The limit that ``epochs`` / ``steps`` / ``samples`` reached, as the warning names it, or ``None``."""
        for key, name, used in (("steps", "max_steps", steps), ("samples", "max_samples", samples),
                                ("epochs", "max_iter", epochs)):
            limit = getattr(self, key)
            if limit is not None and used >= limit:
                if self.default:
                    return f"the default budget of {limit} steps (max_iter, max_steps and max_samples all None)"
                return f"{name}={limit}"
        return None


class Schedule:
    """The learning-rate factor: warmup, constant, decay; a cooldown when early stopping ends the run.

    With a known horizon, :func:`~skdict.ops.schedule.learning_rate_factor` over it. When
    early stopping finds the loss on a plateau at step :math:`s`, the rate decays linearly
    to zero over the next :math:`n = \\lceil s\\,f_d / (1 - f_d) \\rceil` steps
    (:math:`f_d` = ``decay_fraction``: the decay is that fraction of the whole run, as with a
    known horizon; a warmup-stable-decay schedule whose decay starts when the plateau is
    seen), bounded by the horizon, and the run ends there.
    """

    def __init__(self, horizon, *, warmup_fraction, decay_fraction, scheduled):
        self.horizon = horizon if scheduled else None
        self.warmup_fraction, self.decay_fraction = warmup_fraction, decay_fraction
        self.end = horizon  # the step at which training ends (None: when the data or budget does)
        self.cooldown_start = None

    def factor(self, step):
        """Multiplier of ``learning_rate`` at the 0-based ``step``."""
        factor = 1.0
        if self.horizon is not None:
            factor = learning_rate_factor(
                min(step, self.horizon - 1), self.horizon,
                warmup_fraction=self.warmup_fraction, decay_fraction=self.decay_fraction,
            )
        if self.cooldown_start is not None:
            factor = min(factor, (self.end - step) / (self.end - self.cooldown_start))
        return factor

    def cool_down(self, step):
        """Early stopping saw a plateau after ``step`` steps: decay from now and end (at once when ``decay_fraction=0``)."""
        length = math.ceil(step * self.decay_fraction / max(1e-12, 1.0 - self.decay_fraction))
        self.end = step + length if self.end is None else min(self.end, step + length)
        self.cooldown_start = step

    def warming_up(self, step):
        """Whether ``step`` steps are still inside the learning-rate warmup (no plateau is judged there: the rate
        is still rising, so a loss that barely moves says nothing about convergence)."""
        return self.horizon is not None and step < self.warmup_fraction * self.horizon

    @property
    def cooling(self):
        return self.cooldown_start is not None

    def finished(self, step):
        """Whether a cooldown has run its course at ``step`` (the budget's own end is :meth:`Budget.spent`)."""
        return self.cooldown_start is not None and step >= self.end


class Window:
    """Sums over the steps of one logged window (or one epoch): loss, squared error, active codes, target moments."""

    def __init__(self):
        self.loss = self.error = self.active = 0.0
        self.rows = self.steps = 0
        self.moments = RunningMoments()
        self.n_resampled = 0  # latents resampled (resample_dead): history_["n_resampled"] of an epoch

    def add(self, result, Yb, moments):
        """Add one step; ``moments`` is the batch's :func:`~skdict.ops.moments.batch_moments`, or ``None`` (not tracked)."""
        n = Yb.shape[0]
        self.loss += result.loss * n
        self.error += result.squared_error
        self.active += result.n_active
        self.rows += n
        self.steps += 1
        if moments is not None:
            self.moments.merge(*moments)

    def stats(self, model, target_variance):
        """``HISTORY_KEYS`` of the window; explained variance against ``target_variance`` (this window's when ``None``)."""
        variance = self.moments.total_variance if target_variance is None else target_variance
        return {
            "loss": self.loss / self.rows,
            "explained_variance": 1.0 - self.error / variance if variance > 0 else math.nan,
            "l0": self.active / self.rows,
            "dead_fraction": dead_fraction(model),
        }


def dead_fraction(model):
    """Fraction of latents that have not fired for ``dead_after`` samples; NaN until that many samples were seen.

    Before ``dead_after`` samples no latent can be dead yet, so the fraction is not known (not 0).
    """
    if model.n_samples_seen_ < model.dead_after:
        return math.nan
    xp = get_namespace(model._samples_since_fired)
    return float(xp.mean(model._dead_mask().astype(xp.float64)))


class Plateau:
    """Early stopping's test: has the windowed loss improved by a relative ``tol`` in ``n_iter_no_change`` windows?"""

    def __init__(self, tol, patience):
        self.tol, self.patience = tol, patience
        self.best, self.stale = math.inf, 0
        self.reached = False

    def update(self, loss):
        """Record a window's mean loss; returns whether the loss is now on a plateau."""
        if not math.isfinite(self.best) or loss < self.best - self.tol * abs(self.best):
            self.best, self.stale = loss, 0
        else:
            self.stale += 1
        self.reached = self.reached or self.stale >= self.patience
        return self.reached

    def restart(self):
        """Forget the best loss and the windows without progress (a controller moved the loss itself)."""
        self.best, self.stale = math.inf, 0


@dataclass
class TrainingRun:
    """What one call of :func:`run_epochs` did."""

    n_epochs: int  # epochs begun (the last may be partial)
    stopped_early: bool  # early stopping found a plateau and ended the run (after its cooldown)
    n_steps: int = 0
    n_samples: int = 0
    ended_by: str = None  # the budget that ran out ("max_steps=100"), "the stream" or None
    plateau: bool = False  # the windowed loss reached a plateau (with early_stopping=False too)
    stopped_by_callback: bool = False  # the public callback returned True after an epoch


def log_every_steps(model, n_rows, batch_size):
    """Steps per logged window: ``log_every``, or about one epoch of small data (at most :data:`WINDOW_SAMPLES` rows)."""
    if model.log_every is not None:
        return model.log_every
    rows = WINDOW_SAMPLES if n_rows is None else min(n_rows, WINDOW_SAMPLES)
    return max(1, math.ceil(rows / batch_size))


def run_epochs(model, data, *, budget, scheduled, early_stopping):
    """Train ``model`` on ``data`` until its budget runs out, or early stopping ends it.

    Parameters
    ----------
    model : fitted-initialised SAE estimator
    data : :class:`~skdict.sae._data.InMemoryData` or :class:`~skdict.sae._data.StreamedData`
        Gives each epoch's ``(Xb, Yb)`` minibatches on the training device. A one-pass
        stream is read for one epoch at most.
    budget : Budget
        Epochs, steps and samples of this call.
    scheduled : bool
        Apply warmup and decay over the budget's horizon in steps (``fit``); a constant
        rate otherwise (``partial_fit``), or when no horizon is known.
    early_stopping : bool
        Every ``log_every`` steps (a window), compare the window's mean loss with the best so far;
        after ``n_iter_no_change`` windows without a relative improvement of ``tol``, decay the
        rate to zero (:class:`Schedule`) and end. When ``False`` the plateau is still watched
        (it decides the ConvergenceWarning) but does not end the run.

    Returns
    -------
    TrainingRun

    Raises
    ------
    TrainingDivergedError
        A loss that is not finite or above 100x the reference (see :class:`_TrainingGuard`),
        a non-finite gradient or parameter. The parameters, Adam's moments and step count
        are those of the last checkpoint (epoch start, or every :data:`CHECKPOINT_STEPS`
        steps) whose loss was sane; ``history_`` holds what was logged before.
    """
    n_rows = data.n_rows  # None for a stream of unknown length
    batch_size = model.batch_size if n_rows is None else min(model.batch_size, n_rows)
    if not data.reiterable:
        budget = dataclasses.replace(budget, epochs=1)
    horizon = budget.horizon(n_rows, batch_size)
    schedule = Schedule(horizon, warmup_fraction=model.warmup_fraction, decay_fraction=model.decay_fraction,
                        scheduled=scheduled)
    log_every = log_every_steps(model, n_rows, batch_size)
    plateau = Plateau(model.tol, model.n_iter_no_change)
    params = model._params()
    guard = _TrainingGuard(model, params)
    start_resampling(model)  # resample_dead: its RNG and history_ key (skdict.sae._resampling)
    planned = None if horizon is None else min(horizon * batch_size, math.inf if budget.samples is None else budget.samples)
    control = model._training_control()  # e.g. the L0 target's controller of alpha_ (skdict.sae._l0_target)
    progress = StepProgress(planned, enabled=model.verbose > 0, description=type(model).__name__)
    run = TrainingRun(0, stopped_early=False)
    checkpoints = TrainingCheckpoints.of(model, data) if scheduled else None  # fit writes checkpoints, resumes from one
    # Overflow is detected explicitly (sane loss, finite gradient and parameters at every step), so
    # NumPy's floating-point warnings would only duplicate the divergence error.
    # A model whose step multiplies on the ops threads (the row-blocked forward) trains with BLAS
    # pinned to one thread throughout: no BLAS workers spinning between steps, no switching per step.
    pin = single_threaded_blas() if getattr(model, "_rowwise_support", False) else contextlib.nullcontext()
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"), progress, pin:
        window = Window()
        if checkpoints is not None and checkpoints.resume(run=run, schedule=schedule, plateau=plateau, window=window):
            return run  # the checkpoint of a finished fit
        while run.ended_by is None and not schedule.finished(run.n_steps):
            if budget.epochs is not None and run.n_epochs >= budget.epochs:
                run.ended_by = budget.spent(epochs=run.n_epochs, steps=0, samples=0)
                break
            run.n_epochs += 1
            epoch = Window()
            skip = 0 if checkpoints is None else checkpoints.enter_epoch(epoch)  # done before the checkpoint resumed
            with contextlib.closing(data.epoch(model._rng, batch_size)) as batches:
                for batch, (Xb, Yb, moments) in enumerate(itertools.islice(batches, skip, None), skip):
                    if checkpoints is not None:
                        checkpoints.maybe_save(run.n_steps, batch, run=run, schedule=schedule, plateau=plateau,
                                               window=window, epoch=epoch)
                    if batch % CHECKPOINT_STEPS == 0:
                        guard.checkpoint()
                    where = f"epoch {run.n_epochs}, step {run.n_steps + 1}"
                    lr_factor = schedule.factor(run.n_steps)
                    result = _train_step(model, params, Xb, Yb, lr_factor, guard, where)
                    if control is not None:
                        control.step(result.n_active, Xb.shape[0], lr_factor)
                    run.n_steps += 1
                    run.n_samples += Xb.shape[0]
                    model.n_steps_ += 1
                    model.n_samples_seen_ += Xb.shape[0]
                    epoch.n_resampled += resample_dead_latents(model, params, Xb, Yb)
                    epoch.add(result, Yb, moments)  # a stream's moments (computed ahead); None in memory
                    window.add(result, Yb, moments)
                    progress.step(Xb.shape[0])
                    if window.steps == log_every:
                        _log_window(model, window, run, progress, data)
                        if (not schedule.warming_up(run.n_steps) and _plateau_after(plateau, window, control)
                                and early_stopping and not schedule.cooling):
                            schedule.cool_down(run.n_steps)
                        window = Window()
                    run.ended_by = budget.spent(epochs=0, steps=run.n_steps, samples=run.n_samples)
                    if run.ended_by is not None or schedule.finished(run.n_steps):
                        break
            if epoch.rows and _log_epoch(model, epoch, data):  # the public callback asked to stop
                run.stopped_by_callback = True
                break
            if not data.reiterable and run.ended_by is None and not schedule.finished(run.n_steps):
                run.ended_by = "the one-pass stream"
        if window.rows:
            _log_window(model, window, run, progress, data)
    run.stopped_early = (schedule.cooling and early_stopping) or run.stopped_by_callback
    run.plateau = plateau.reached
    if checkpoints is not None:
        checkpoints.finish(run.n_steps, run=run, schedule=schedule, plateau=plateau, window=window)
    return run


def _plateau_after(plateau, window, control):
    """Update ``plateau`` with a window; returns whether the loss is on a plateau.

    Without a controller the window's mean training loss is compared. A controller (whose
    coefficient changes the loss itself) gives the loss to compare, or ``None`` for a window
    that must not count (its target not yet met): the plateau count then starts over.
    """
    if control is None:
        return plateau.update(window.loss / window.rows)
    loss = control.plateau_loss(window)
    if loss is None:
        plateau.restart()
        return plateau.reached
    return plateau.update(loss)


def _log_window(model, window, run, progress, data):
    """Append a window's statistics to ``step_history_`` and show them.

    A window's explained variance is against its own rows' variance: accumulated over its
    minibatches when streaming; for arrays, the data's total variance times the fraction of
    rows the window drew (its expectation for a uniformly drawn window: no per-step pass).
    """
    in_memory = isinstance(data, InMemoryData)
    stats = window.stats(model, data.total_variance() * window.rows / data.n_rows if in_memory else None)
    log = model.step_history_
    log["step"].append(run.n_steps)
    log["samples"].append(model.n_samples_seen_)
    for key in HISTORY_KEYS:
        log[key].append(stats[key])
    progress.log(model.n_steps_, stats)


def _log_epoch(model, epoch, data):
    """Append an epoch's statistics to ``history_``, call the public ``callback``; returns whether it asked to stop.

    Explained variance is against the epoch's target variance.

    The target variance is, in memory, the data's total variance (scaled to the epoch's rows when the
    budget ended it part-way); when streaming, that of the rows the epoch trained on (their moments
    arrive with the batches).
    """
    if isinstance(data, InMemoryData):
        total = data.total_variance()
        stats = epoch.stats(model, total if epoch.rows == data.n_rows else total * epoch.rows / data.n_rows)
    else:
        stats = epoch.stats(model, None)
    stats.update(model._history_record())
    if "n_resampled" in model.history_:
        stats["n_resampled"] = epoch.n_resampled
    return call_callback(model, append_record(model, stats))


def new_history():
    """Empty ``(history_, step_history_)``: per-epoch lists of :data:`HISTORY_KEYS`; per-window lists of those and
    ``step`` (optimizer steps of the call at the window's end) and ``samples`` (samples seen since initialisation)."""
    return {key: [] for key in HISTORY_KEYS}, {key: [] for key in ("step", "samples") + HISTORY_KEYS}


def warn_if_unfinished(model, run, *, stacklevel):
    """The warnings of a ``fit`` that ended without an error but not in a good state.

    ``stacklevel`` counts as :func:`warnings.warn`'s would in the caller (1: the caller's line).

    - The budget (``max_iter``, ``max_steps``, ``max_samples``, the default budget) or a
      one-pass stream ran out while the windowed loss was still improving (no plateau, with
      or without ``early_stopping``): :class:`~sklearn.exceptions.ConvergenceWarning`
      naming what ran out (as scikit-learn's MLP).
    - The last epoch explained less variance than :math:`\\hat y = b_{dec}` alone
      (negative explained variance): the model is worse than the data's mean,
      almost always a learning rate too high to settle. Also a
      :class:`~sklearn.exceptions.ConvergenceWarning`: training did not reach a
      useful solution, and it is the category scikit-learn users already watch
      and filter for fits that did not work out.
    """
    if run.ended_by is not None and not run.plateau and not run.stopped_by_callback:
        fix = (
            "pass more data, or call partial_fit on further chunks"
            if run.ended_by == "the one-pass stream"
            else "raise it, or set max_iter, max_steps and max_samples to None to train until early stopping "
            f"(at most {DEFAULT_MAX_STEPS} steps)"
        )
        warn_not_converged(
            model,
            f"{run.ended_by} ran out after {run.n_steps} steps before the training loss reached a plateau "
            f"(no window of log_every steps failed to improve it by a relative tol={model.tol:g} "
            f"n_iter_no_change={model.n_iter_no_change} times in a row)",
            fix,
            stacklevel=stacklevel + 2,
        )
    control = model._training_control()
    if control is not None:
        control.warn_if_off_target(stacklevel=stacklevel + 2)
    scores = model.history_["explained_variance"]
    if scores and scores[-1] < 0:
        if len(scores) > 1 and scores[-1] < max(scores):  # it was better earlier: the steps overshoot
            fix = f"lower learning_rate (now {model.learning_rate:g})"
        else:  # still rising from a poor start
            fix = f"train longer (max_steps, max_samples or max_iter) or lower learning_rate (now {model.learning_rate:g})"
        warn_not_converged(
            model,
            f"the model is worse than its mean: explained variance {scores[-1]:.3g} < 0 on the training data "
            "in the last epoch (reconstructing every row by decoder_bias_ alone scores 0)",
            fix,
            stacklevel=stacklevel + 2,
        )
