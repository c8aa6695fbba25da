"""The sparsity/fidelity trade-off: explained variance against L0 over a grid of models, with its Pareto front."""

from __future__ import annotations

import math

import numpy as np

from skdict._history import KEY_LABELS
from skdict.metrics import get_scorer
from skdict.plotting._matplotlib import estimator_name, figure_and_axes


def pareto_front(x, y):
    """Indices of the non-dominated points when a lower ``x`` and a higher ``y`` are better, sorted by ``x``.

    Point :math:`i` is dominated when some :math:`j` has :math:`x_j \\le x_i` and :math:`y_j \\ge y_i`,
    one of them strictly; identical points do not dominate each other. Points with a NaN are
    never on the front.

    Parameters
    ----------
    x, y : array-like of shape (n_points,)

    Returns
    -------
    front : ndarray of int
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    valid = np.flatnonzero(~(np.isnan(x) | np.isnan(y)))
    order = valid[np.lexsort((-y[valid], x[valid]))]  # by x, then best y first
    front, best = [], -math.inf
    for i in order:
        identical = front and x[front[-1]] == x[i] and y[front[-1]] == y[i]
        if y[i] > best or identical:
            front.append(int(i))
            best = max(best, y[i])
    return np.asarray(front, dtype=np.intp)


def _scoring_column(results, scoring, metric):
    """``(cv_results_ column prefix, sign)`` holding ``metric`` (as is, or negated by a ``neg_`` scorer)."""
    if isinstance(scoring, dict):
        for key, scorer in scoring.items():
            name = getattr(scorer, "name", None)  # skdict's scorers say which measure they are
            if name in (metric, f"neg_{metric}"):
                return key, -1.0 if name.startswith("neg_") and not metric.startswith("neg_") else 1.0
    if f"mean_test_{metric}" in results:
        return metric, 1.0
    if f"mean_test_neg_{metric}" in results:
        return f"neg_{metric}", -1.0
    measured = sorted(key[len("mean_test_"):] for key in results if key.startswith("mean_test_"))
    raise ValueError(
        f"the search's cv_results_ has no score for {metric!r} (it has {measured}): fit it with a multi-metric "
        "scoring that measures both axes, e.g. scoring={'l0': skdict.metrics.get_scorer('neg_l0'), "
        "'explained_variance': skdict.metrics.get_scorer('explained_variance')} and refit='explained_variance'."
    )


def _from_search(results, scoring, x, y):
    """Points of a search's ``cv_results_``: mean test scores, signs undone for ``neg_`` scorers."""
    columns = [_scoring_column(results, scoring, metric) for metric in (x, y)]
    xs, ys = (sign * np.asarray(results[f"mean_test_{key}"], dtype=np.float64) for key, sign in columns)
    labels = [", ".join(f"{k.split('__')[-1]}={v}" for k, v in params.items()) for params in results.get("params", [])]
    return xs, ys, labels or [str(i) for i in range(xs.size)]


def _measure(metric, estimator, X):
    """``metric`` of a fitted estimator on ``X`` through skdict's scorers (``neg_`` ones negated back)."""
    try:
        return get_scorer(metric)(estimator, X)
    except ValueError:
        return -get_scorer(f"neg_{metric}")(estimator, X)


def _points(results, X, x, y):
    """``(x values, y values, labels)`` from any accepted ``results``."""
    if hasattr(results, "cv_results_"):
        return _from_search(results.cv_results_, getattr(results, "scoring", None), x, y)
    if isinstance(results, dict) and "params" in results:
        return _from_search(results, None, x, y)
    items = list(results.items()) if isinstance(results, dict) else [(None, r) for r in results]
    if not items:
        raise ValueError("results is empty: nothing to plot.")
    if all(isinstance(r, dict) for _, r in items):
        rows = [r for _, r in items]
        missing = [i for i, r in enumerate(rows) if x not in r or y not in r]
        if missing:
            raise ValueError(f"results[{missing[0]}] lacks {x!r} or {y!r}: every dict needs both keys.")
        labels = [str(r.get("label", name if name is not None else i)) for i, (name, r) in enumerate(items)]
        return np.array([r[x] for r in rows], float), np.array([r[y] for r in rows], float), labels
    if X is None:
        raise ValueError("results are fitted estimators: pass X, the data to measure them on.")
    labels = [name if name is not None else f"{i}: {estimator_name(r)}" for i, (name, r) in enumerate(items)]
    xs = np.array([_measure(x, r, X) for _, r in items], float)
    return xs, np.array([_measure(y, r, X) for _, r in items], float), labels


def plot_pareto(results, *, X=None, x="l0", y="explained_variance", annotate=True, ax=None):
    """Explained variance against L0 (or any cost ``x`` and score ``y``) over many models, and the Pareto front.

    The front joins the non-dominated settings (:func:`pareto_front`: no other setting has a
    lower-or-equal ``x`` and a higher-or-equal ``y``, one strictly) -- the sparsity/fidelity
    trade-off the SAE literature compares architectures on.

    Parameters
    ----------
    results : one of
        - a fitted :class:`~sklearn.model_selection.GridSearchCV` / ``RandomizedSearchCV``
          with a multi-metric ``scoring`` measuring both (mean test scores are used;
          skdict's ``neg_`` scorers, e.g. ``get_scorer("neg_l0")``, are negated back);
          or its ``cv_results_`` dict;
        - a list of dicts (or dict of name -> dict) with keys ``x`` and ``y`` (and ``"label"``);
        - a list (or dict of name -> ) of fitted estimators, measured on ``X``.
    X : array-like, optional
        Data for fitted estimators (``skdict.metrics.get_scorer``'s measures).
    x, y : str, default="l0", "explained_variance"
        A cost (lower is better) and a score (higher is better): names of skdict measures
        (``"l0"``, ``"fvu"``, ``"dead_fraction"``, ``"explained_variance"``) or of the scoring keys.
    annotate : bool, default=True
        Label the points on the front (the search's parameters, or the names given).
    ax : matplotlib Axes, optional
        Draw into it; a new pyplot-free Figure otherwise.

    Returns
    -------
    fig : matplotlib.figure.Figure
        Its Axes holds the scatter of all points and the front as the line labelled ``"Pareto front"``.

    Raises
    ------
    ValueError
        A search without a score for ``x`` or ``y`` (the message shows the scoring to use),
        dicts without those keys, estimators without ``X``.
    ImportError
        matplotlib is missing (``pip install "skdict[plot]"``).
    """
    xs, ys, labels = _points(results, X, x, y)
    front = pareto_front(xs, ys)
    fig, ax = figure_and_axes(ax, figsize=(6.0, 4.5))
    n_scored = int(np.sum(~(np.isnan(xs) | np.isnan(ys))))  # a NaN point (a failed fit's score) is not drawn
    unscored = f" ({xs.size - n_scored} without a score, not drawn)" if n_scored < xs.size else ""
    ax.scatter(xs, ys, color="0.6", label=f"{n_scored} setting{'' if n_scored == 1 else 's'}{unscored}", zorder=2)
    ax.plot(xs[front], ys[front], "-o", color="C3", label="Pareto front", zorder=3)
    if annotate:
        for i in front:
            ax.annotate(labels[i], (xs[i], ys[i]), textcoords="offset points", xytext=(4, -10), fontsize="x-small")
    ax.set_xlabel(KEY_LABELS.get(x, x) + " (lower is better)")
    ax.set_ylabel(KEY_LABELS.get(y, y) + " (higher is better)")
    ax.set_title(f"{front.size} of {n_scored} scored settings on the Pareto front")
    ax.legend(fontsize="small")
    return fig
