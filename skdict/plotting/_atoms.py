"""A grid of dictionary atoms on one shared, symmetric colour scale, ordered by firing frequency."""

from __future__ import annotations

import math

import numpy as np
from sklearn.exceptions import NotFittedError

from skdict._array import to_numpy
from skdict.metrics import firing_frequency
from skdict.metrics._scorers import _components
from skdict.plotting._matplotlib import estimator_name, new_figure

_ORDERS = ("frequency", "index")


def _atoms_and_estimator(atoms_or_estimator):
    """``(atoms as a 2-D NumPy array, the estimator or None, its label)``."""
    obj = atoms_or_estimator
    if hasattr(obj, "components_") or hasattr(obj, "steps"):
        return to_numpy(_components(obj)), obj, estimator_name(obj)
    if hasattr(obj, "fit") and hasattr(obj, "get_params"):  # an estimator without components_: not fitted
        raise NotFittedError(
            f"This {estimator_name(obj)} is not fitted (it has no components_): fit it before plot_atoms, "
            "or pass an array of atoms as rows."
        )
    atoms = to_numpy(obj) if hasattr(obj, "__cuda_array_interface__") else np.asarray(obj)
    if atoms.ndim != 2:
        raise ValueError(
            f"atoms_or_estimator must be a fitted estimator with components_ or an array of atoms as rows "
            f"(n_atoms, n_features); got an array of shape {atoms.shape}."
        )
    if not np.isfinite(atoms).all():
        raise ValueError("the atoms hold NaN or infinity: there is no colour scale to draw them on.")
    return atoms, None, "the dictionary"


def check_image_shape(image_shape, n_features, what="an atom", fix=", or image_shape=None to draw each atom as a profile"):
    """``image_shape`` as ``(H, W)``, two positive ints with ``H * W = n_features`` (``None`` stays ``None``).

    Raises
    ------
    ValueError
        Not two positive whole numbers whose product is ``n_features`` (``(-4, -4)`` multiplies to 16 too).
    """
    if image_shape is None:
        return None
    shape = tuple(image_shape) if np.iterable(image_shape) else (image_shape,)
    whole = all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in shape)
    if len(shape) != 2 or not whole or math.prod(shape) != n_features:
        raise ValueError(
            f"image_shape={image_shape!r} cannot show {what} of {n_features} features as an image: give (H, W), "
            f"positive integers with H * W = {n_features}{fix}."
        )
    return int(shape[0]), int(shape[1])


def _ordering(estimator, X, order, n_atoms):
    """``(indices of the atoms to draw, their firing frequencies or None, how they are ordered)``."""
    if order not in _ORDERS:
        raise ValueError(f"order must be one of {_ORDERS}, got {order!r}.")
    if X is None:
        return np.arange(n_atoms), None, "in index order"
    if estimator is None:
        raise ValueError(
            "X was given with an array of atoms: firing frequencies need the estimator that encodes X; "
            "pass the fitted estimator instead of its components_, or X=None."
        )
    frequencies = firing_frequency(estimator, X)
    if order == "index":
        return np.arange(n_atoms), frequencies, "in index order"
    return np.argsort(-frequencies, kind="stable"), frequencies, "by firing frequency on X, highest first"


def _draw_atom(ax, atom, image_shape, norm, cmap):
    if image_shape is not None:
        ax.imshow(atom.reshape(image_shape), cmap=cmap, norm=norm, interpolation="nearest")
    else:
        ax.bar(np.arange(atom.size), atom, width=1.0, color=cmap(norm(atom)))
        ax.axhline(0.0, color="0.5", linewidth=0.5)
        ax.set_ylim(norm.vmin * 1.05, norm.vmax * 1.05)
    ax.set_xticks([])
    ax.set_yticks([])


def _subtitle(index, frequencies):
    if frequencies is None:
        return f"#{index}"
    frequency = frequencies[index]
    return f"#{index}\nf={frequency:.2g}" if frequency > 0 else f"#{index}\nf=0 (dead)"


def plot_atoms(atoms_or_estimator, *, image_shape=None, X=None, n_atoms=64, order="frequency",
               n_cols=None, cmap="RdBu_r", fig=None):
    """Draw dictionary atoms (rows of ``components_``) in a grid, on one shared symmetric colour scale.

    Every atom uses the same colour scale :math:`[-v, v]`, :math:`v = \\max |d_{jk}|` over the
    atoms drawn, stated on one colourbar and in the title, so atoms can be compared by eye
    (zero is the colourmap's middle). With ``X``, each atom's subtitle gives its firing
    frequency :math:`f_j` on ``X`` (:func:`skdict.metrics.firing_frequency`) and the grid
    shows the most frequent atoms first.

    Parameters
    ----------
    atoms_or_estimator : fitted estimator with ``components_``, or array of shape (n_atoms, n_features)
        An skdict SAE or dictionary learner, a Pipeline ending in one, a scikit-learn
        decomposition; or the atoms themselves (NumPy or CuPy).
    image_shape : (H, W) or None, default=None
        Draw each atom as an H x W image (``H * W = n_features``: pixels, patches). ``None``:
        as a bar profile over the features, coloured on the same scale.
    X : array-like or out-of-core data, optional
        Samples to measure firing frequencies on (anything ``firing_frequency`` reads);
        needs an estimator, not bare atoms.
    n_atoms : int, default=64
        Atoms drawn (the first ones in ``order``).
    order : {"frequency", "index"}, default="frequency"
        ``"frequency"``: most frequent first when ``X`` is given (index order without ``X``).
    n_cols : int or None, default=None
        Columns of the grid; ``None``: about a square grid.
    cmap : str or Colormap, default="RdBu_r"
        A diverging colourmap suits the symmetric scale.
    fig : matplotlib Figure, optional
        Draw into it (e.g. ``plt.figure()``); a new pyplot-free Figure otherwise.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One Axes per atom drawn, plus the colourbar's.

    Raises
    ------
    ValueError
        Atoms not 2-D, an ``image_shape`` that does not hold an atom, ``X`` with bare atoms,
        an unknown ``order``, ``n_atoms < 1``.
    ImportError
        matplotlib is missing (``pip install "skdict[plot]"``).
    """
    atoms, estimator, name = _atoms_and_estimator(atoms_or_estimator)
    if int(n_atoms) < 1:
        raise ValueError(f"n_atoms must be at least 1, got {n_atoms}.")
    image_shape = check_image_shape(image_shape, atoms.shape[1])
    ranked, frequencies, ordering = _ordering(estimator, X, order, atoms.shape[0])
    shown = ranked[: int(n_atoms)]
    n_cols = int(n_cols) if n_cols else math.ceil(math.sqrt(shown.size))
    n_rows = math.ceil(shown.size / n_cols)

    fig = new_figure(fig, figsize=(1.4 * n_cols * (1 if image_shape else 1.6) + 1.2, 1.4 * n_rows + 1.0))
    from matplotlib import colormaps  # importable: new_figure raised the extra's ImportError otherwise
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    vmax = float(np.max(np.abs(atoms[shown]))) or 1.0
    norm, colours = Normalize(vmin=-vmax, vmax=vmax), colormaps[cmap] if isinstance(cmap, str) else cmap
    axes = []
    for position, index in enumerate(shown):
        ax = fig.add_subplot(n_rows, n_cols, position + 1)
        _draw_atom(ax, atoms[index], image_shape, norm, colours)
        ax.set_title(_subtitle(index, frequencies), fontsize="small")
        axes.append(ax)
    fig.colorbar(ScalarMappable(norm=norm, cmap=colours), ax=axes, label="atom weight (shared scale)", shrink=0.8)
    fig.suptitle(
        f"{shown.size} of {atoms.shape[0]} atoms of {name}, {ordering}\n"
        f"one colour scale for all atoms: [{-vmax:.3g}, {vmax:.3g}]"
    )
    return fig
