"""matplotlib, imported only when a plot is drawn; a clear ImportError naming the extra when it is missing.

No function of :mod:`skdict.plotting` selects a backend or calls ``pyplot.show``: figures
are :class:`matplotlib.figure.Figure` objects built without pyplot's global state (or
drawn into the ``ax``/``fig`` the caller passes), and the caller saves or shows them.
"""

from __future__ import annotations

from skdict._optional import import_optional, install_hint, optional_module

#: How to get the ``plot`` extra, for every message that says plots need matplotlib.
INSTALL_HINT = install_hint("plot")


def figure_class():
    """:class:`matplotlib.figure.Figure`, imported now.

    Raises
    ------
    ImportError
        matplotlib is not installed; the message names the ``plot`` extra.
    """
    return import_optional("matplotlib.figure", extra="plot", needed_for="skdict.plotting").Figure


def matplotlib_installed():
    """Whether matplotlib can be imported (the one check every caller that may skip its plots uses)."""
    return optional_module("matplotlib.figure") is not None


def new_figure(fig=None, *, figsize):
    """``fig`` when given (cleared of nothing: drawn into), else a new pyplot-free Figure of ``figsize`` inches."""
    if fig is not None:
        return fig
    return figure_class()(figsize=figsize, layout="constrained")


def figure_and_axes(ax=None, *, figsize):
    """``(figure, axes)``: the caller's ``ax`` and its figure, or a new Figure with one Axes."""
    if ax is not None:
        figure_class()
        return ax.figure, ax
    fig = new_figure(figsize=figsize)
    return fig, fig.add_subplot()


def estimator_name(estimator):
    """A short label for an estimator: its class name (the last step's for a Pipeline)."""
    steps = getattr(estimator, "steps", None)
    return type(steps[-1][1] if steps else estimator).__name__
