"""Training curves of any skdict learners side by side: one panel per ``history_`` key."""

from __future__ import annotations

import math

import numpy as np

from skdict._history import CORE_KEYS, KEY_LABELS
from skdict.plotting._matplotlib import estimator_name, new_figure

_HISTORIES = {"epoch": ("history_", "epoch"), "step": ("step_history_", "training samples seen")}


def _named(estimators):
    """``{name: estimator}`` from a dict or a single estimator."""
    if isinstance(estimators, dict):
        return dict(estimators)
    return {estimator_name(estimators): estimators}


def _curve(estimator, key, history):
    """``(x, values)`` of ``key`` in the estimator's history, or ``None`` when it records no such key."""
    attribute, _ = _HISTORIES[history]
    log = getattr(estimator, attribute, None)
    if not isinstance(log, dict) or not len(log.get(key, ())):
        return None
    values = np.asarray(log[key], dtype=np.float64)
    x = np.asarray(log["samples"], dtype=np.float64) if history == "step" else np.arange(1, values.size + 1)
    return x, values


def plot_training_curves(estimators, *, keys=CORE_KEYS, history="epoch", fig=None):
    """One panel per history key, one line per estimator that records it.

    Every skdict learner keeps ``history_`` in one schema (:mod:`skdict._history`): ``loss``
    always, ``explained_variance`` and ``l0`` for learners that reconstruct from codes,
    ``dead_fraction`` where latents can die, plus keys of its own. An estimator without a key
    is left out of that panel (never drawn as zeros); NaN entries (e.g. ``dead_fraction``
    before ``dead_after`` samples) leave gaps in the line. The loss panel is on a log scale
    when every loss drawn is positive (losses of different families differ by decades).

    Parameters
    ----------
    estimators : dict of name -> fitted estimator, or one fitted estimator
    keys : sequence of str, default=("loss", "explained_variance", "l0", "dead_fraction")
        History keys, one panel each (a family's own keys, e.g. ``"objective"``, work too).
    history : {"epoch", "step"}, default="epoch"
        ``"epoch"``: ``history_`` against the epoch (alternation for batch dictionary learning);
        ``"step"``: the SAEs' ``step_history_`` (windows of ``log_every`` steps) against the
        training samples seen; estimators without it are left out.
    fig : matplotlib Figure, optional
        Draw into it (e.g. ``plt.figure()``); a new pyplot-free Figure otherwise.

    Returns
    -------
    fig : matplotlib.figure.Figure
        ``len(keys)`` Axes; each line's label is the estimator's name.

    Raises
    ------
    ValueError
        An unknown ``history``, no keys, or no estimator records any of ``keys`` (e.g. none is fitted).
    ImportError
        matplotlib is missing (``pip install "skdict[plot]"``).
    """
    if history not in _HISTORIES:
        raise ValueError(f"history must be one of {sorted(_HISTORIES)}, got {history!r}.")
    keys = tuple(keys)
    if not keys:
        raise ValueError("keys is empty: name at least one history key to plot (e.g. 'loss').")
    named = _named(estimators)
    _check_something_to_draw(named, keys, history)
    n_cols = min(2, len(keys))
    fig = new_figure(fig, figsize=(5.5 * n_cols, 3.6 * math.ceil(len(keys) / n_cols)))
    for position, key in enumerate(keys):
        ax = fig.add_subplot(math.ceil(len(keys) / n_cols), n_cols, position + 1)
        _draw_key(ax, named, key, history)
    return fig


def _check_something_to_draw(named, keys, history):
    """An empty figure must not pass for a plot: at least one estimator records at least one of ``keys``."""
    if not any(_curve(estimator, key, history) is not None for estimator in named.values() for key in keys):
        attribute = _HISTORIES[history][0]
        raise ValueError(
            f"no estimator among {sorted(named) or 'none'} has a {attribute} with any of {list(keys)}: fit them "
            "first (an unfitted estimator has no history)"
            + ("; only SAEs keep step_history_, use history='epoch' for other learners." if history == "step" else ".")
        )


def _draw_key(ax, named, key, history):
    drawn = []
    for colour, (name, estimator) in enumerate(named.items()):
        curve = _curve(estimator, key, history)
        if curve is not None:
            ax.plot(*curve, marker=".", color=f"C{colour % 10}", label=name)
            drawn.append(curve)
    ax.set_title(KEY_LABELS.get(key, key))
    ax.set_xlabel(_HISTORIES[history][1])
    if not drawn:
        ax.text(0.5, 0.5, f"no estimator records {key!r}", transform=ax.transAxes, ha="center", va="center")
        return
    xs, values = (np.concatenate(parts) for parts in zip(*drawn))
    if xs.max() > xs.min():  # the whole run on the x axis, even where a key starts as NaN
        ax.set_xlim(xs.min(), xs.max())
    if key == "loss" and np.all(values[np.isfinite(values)] > 0):
        ax.set_yscale("log")
    ax.legend(fontsize="small")
