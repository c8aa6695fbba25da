"""Figures of dictionaries and their training: atoms, feature density, training curves, Pareto fronts.

matplotlib is optional (``pip install "skdict[plot]"``) and imported only when a function
draws. Every function returns a :class:`matplotlib.figure.Figure`: built without pyplot
(no global state, no backend chosen, nothing shown) unless the caller passes the ``ax`` or
``fig`` to draw into -- e.g. one from ``plt.subplots()`` in a notebook or a gallery example.
"""

from skdict.plotting._atoms import plot_atoms
from skdict.plotting._curves import plot_training_curves
from skdict.plotting._density import plot_feature_density
from skdict.plotting._pareto import pareto_front, plot_pareto
from skdict.plotting._top_activating import plot_top_activating

__all__ = [
    "pareto_front",
    "plot_atoms",
    "plot_feature_density",
    "plot_pareto",
    "plot_top_activating",
    "plot_training_curves",
]
