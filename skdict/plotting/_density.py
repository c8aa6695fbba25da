"""Feature density: the histogram of log10 firing frequencies over latents, dead latents counted apart."""

from __future__ import annotations

import numpy as np

from skdict.metrics import firing_frequency
from skdict.plotting._matplotlib import estimator_name, figure_and_axes


def log_frequencies(frequencies):
    """``(log10 of the nonzero frequencies, number of dead latents)`` (:math:`\\log_{10} 0 = -\\infty` is not binned)."""
    frequencies = np.asarray(frequencies, dtype=np.float64)
    alive = frequencies > 0
    return np.log10(frequencies[alive]), int(frequencies.size - np.count_nonzero(alive))


def _check_frequencies(frequencies):
    """Firing frequencies are a non-empty 1-D array of fractions in [0, 1] (a NaN would vanish from the histogram)."""
    frequencies = np.asarray(frequencies, dtype=np.float64)
    if frequencies.ndim != 1 or frequencies.size == 0:
        raise ValueError(f"frequencies must be a non-empty 1-D array (one per latent), got shape {frequencies.shape}.")
    outside = np.flatnonzero(~((frequencies >= 0) & (frequencies <= 1)))  # NaN fails both
    if outside.size:
        raise ValueError(
            f"frequencies must be fractions of samples in [0, 1]; latent {outside[0]} has {frequencies[outside[0]]} "
            f"({outside.size} such latents): pass skdict.metrics.firing_frequency(estimator, X)."
        )


def plot_feature_density(estimator=None, X=None, *, frequencies=None, bins=50, ax=None):
    """Histogram of :math:`\\log_{10} f_j` over latents, as SAELens and Neuronpedia show "feature density".

    :math:`f_j` is the fraction of samples of ``X`` on which latent :math:`j` fires
    (:func:`skdict.metrics.firing_frequency`). Dead latents (:math:`f_j = 0`, where
    :math:`\\log_{10}` is :math:`-\\infty`) are not binned: their count is in the title and
    the legend. Dense latents sit near 0 (fire on every sample), rare ones far left.

    Parameters
    ----------
    estimator : fitted transformer, optional
        Encodes ``X``; not needed when ``frequencies`` is given.
    X : array-like or out-of-core data, optional
        Samples (anything ``firing_frequency`` reads).
    frequencies : array of shape (n_components,), optional
        Firing frequencies already measured (e.g. by a report that also tabulates them);
        ``estimator`` and ``X`` are then not used.
    bins : int or sequence, default=50
        As :func:`numpy.histogram`'s ``bins``, over the log10 frequencies of live latents.
    ax : matplotlib Axes, optional
        Draw into it; a new pyplot-free Figure otherwise.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Raises
    ------
    ValueError
        Neither ``frequencies`` nor both ``estimator`` and ``X``; ``frequencies`` not a
        non-empty 1-D array of values in [0, 1].
    ImportError
        matplotlib is missing (``pip install "skdict[plot]"``).
    """
    if frequencies is None:
        if estimator is None or X is None:
            raise ValueError("plot_feature_density needs a fitted estimator and X, or frequencies=.")
        frequencies = firing_frequency(estimator, X)
    _check_frequencies(frequencies)
    name = "" if estimator is None else f" of {estimator_name(estimator)}"
    log_f, n_dead = log_frequencies(frequencies)
    fig, ax = figure_and_axes(ax, figsize=(6.0, 4.0))
    n_total = log_f.size + n_dead
    if log_f.size:
        ax.hist(log_f, bins=bins, color="tab:blue", label=f"{log_f.size} live latents")
    ax.plot([], [], " ", label=f"{n_dead} dead latents (never fire; not binned)")
    ax.set_xlabel("log10 firing frequency (fraction of samples a latent is active)")
    ax.set_ylabel("latents")
    ax.set_title(f"Feature density{name}: {n_dead} of {n_total} latents dead")
    ax.legend(loc="upper left", fontsize="small")
    return fig
