"""The training engine shared by every SAE: minibatch Adam over epochs.

One call of :func:`run_epochs` shuffles, steps through minibatches, applies the
learning-rate schedule, gradient clipping, the unit-norm decoder constraint and
Adam, tracks dead latents, records ``history_`` and stops early or on divergence.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from skdict._array import get_namespace
from skdict._progress import EpochProgress
from skdict.exceptions import TrainingDivergedError
from skdict.ops._threads import single_threaded_blas
from skdict.ops.atoms import normalize_rows, remove_parallel_component
from skdict.ops.schedule import learning_rate_factor

HISTORY_KEYS = ("loss", "explained_variance", "l0", "dead_fraction")


def _global_norm(grads):
    """:math:`\\sqrt{\\sum \\|g\\|^2}` over every gradient, read back from the device once."""
    xp = get_namespace(*grads.values())
    total = sum(xp.vdot(g.ravel(), g.ravel()) for g in grads.values())  # device scalars, one sync below
    return math.sqrt(float(total))


def _all_finite(params):
    """Whether every parameter is finite, with one device-to-host read."""
    xp = get_namespace(*params.values())
    flags = xp.stack([xp.isfinite(p).all() for p in params.values()])
    return bool(flags.all())


def _total_variance(Y):
    """:math:`\\sum_n \\|y_n - \\bar y\\|^2` (per-feature mean), the denominator of explained variance."""
    xp = get_namespace(Y)
    centred = Y - Y.mean(axis=0)
    return float(xp.sum(centred * centred))


def _diverged(model, where, value, snapshot, params):
    """Keep finite parameters and raise the error that says what to lower.

    Parameters are checked after every step, so either they are still finite
    (the loss or gradient overflowed) or the last step broke them, and the
    snapshot taken at the start of the epoch (finite by the same check) is restored.
    """
    if not _all_finite(params):
        for name, saved in snapshot.items():
            params[name][...] = saved
    raise TrainingDivergedError(
        f"{type(model).__name__} diverged at {where}: the {value} became non-finite. "
        "Training stopped and the parameters of the last finite step are kept. "
        f"Lower learning_rate (now {model.learning_rate:g}), set max_grad_norm "
        f"(now {model.max_grad_norm}), or scale X (e.g. StandardScaler)."
    )


def _train_step(model, params, Xb, Yb, lr_factor, snapshot, where):
    """One optimizer step on a minibatch; returns the step's :class:`StepResult`."""
    result = model._loss_and_grads(params, Xb, Yb, model._dead_mask())
    grads = result.grads
    if model._regularizer is not None:
        result.loss += model._regularizer.add_to(params, grads)
    if not math.isfinite(result.loss):
        _diverged(model, where, "loss", snapshot, params)
    remove_parallel_component(grads["components_"], params["components_"])
    norm = _global_norm(grads)
    if not math.isfinite(norm):
        _diverged(model, where, "gradient", snapshot, params)
    if model.max_grad_norm is not None and norm > model.max_grad_norm:
        scale = model.max_grad_norm / norm
        for grad in grads.values():
            grad *= scale
    base = model.learning_rate * lr_factor
    rates = {name: base * model._lr_scales.get(name, 1.0) for name in grads}
    model._adam.step(params, grads, rates)
    normalize_rows(params["components_"], out=params["components_"])
    if not _all_finite(params):
        _diverged(model, where, "parameters after the update", snapshot, params)
    model._record_firing(result.active_columns, Xb.shape[0])
    model._after_step(result)
    return result


def run_epochs(model, X, Y, *, n_epochs, scheduled, early_stopping):
    """Train ``model`` for up to ``n_epochs`` passes over ``(X, Y)``.

    Parameters
    ----------
    model : fitted-initialised SAE estimator
    X : array of shape (n_samples, d_in)
    Y : array of shape (n_samples, d_out) or None
        ``None`` for an SAE (the target is ``X``).
    n_epochs : int
    scheduled : bool
        Apply warmup and decay over the ``n_epochs`` horizon (``fit``); a
        constant rate otherwise (``partial_fit``, whose horizon is unknown).
    early_stopping : bool
        Stop when the epoch loss has not improved by a relative ``tol`` for
        ``n_iter_no_change`` epochs.

    Returns
    -------
    n_run : int
        Epochs completed.
    """
    xp = get_namespace(X)
    n_samples = X.shape[0]
    batch_size = min(model.batch_size, n_samples)
    n_batches = math.ceil(n_samples / batch_size)
    total_steps = n_epochs * n_batches if scheduled else None
    target_variance = _total_variance(X if Y is None else Y)
    params = model._params()
    progress = EpochProgress(n_epochs, enabled=model.verbose > 0, description=type(model).__name__)
    best_loss, stale, n_run, step = math.inf, 0, 0, 0
    # Overflow is detected explicitly (finite loss and gradient at every step), so
    # NumPy's floating-point warnings would only duplicate the divergence error.
    # A model whose step multiplies on the ops threads (the row-blocked forward) trains with BLAS
    # pinned to one thread throughout: no BLAS workers spinning between steps, no switching per step.
    pin = single_threaded_blas() if getattr(model, "_rowwise_support", False) else contextlib.nullcontext()
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"), progress, pin:
        for epoch in range(n_epochs):
            snapshot = {name: p.copy() for name, p in params.items()}
            order = xp.asarray(model._rng.permutation(n_samples))
            loss_sum = error_sum = active_sum = 0.0
            for start in range(0, n_samples, batch_size):
                rows = order[start : start + batch_size]
                Xb = X[rows]
                Yb = Xb if Y is None else Y[rows]
                factor = learning_rate_factor(
                    step, total_steps, warmup_fraction=model.warmup_fraction, decay_fraction=model.decay_fraction
                )
                where = f"epoch {epoch + 1}, step {step + 1}"
                result = _train_step(model, params, Xb, Yb, factor, snapshot, where)
                step += 1
                loss_sum += result.loss * Xb.shape[0]
                error_sum += result.squared_error
                active_sum += result.n_active
            n_run += 1
            epoch_loss = loss_sum / n_samples
            stats = {
                "loss": epoch_loss,
                "explained_variance": 1.0 - error_sum / target_variance if target_variance > 0 else math.nan,
                "l0": active_sum / n_samples,
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
                        break
    return n_run
