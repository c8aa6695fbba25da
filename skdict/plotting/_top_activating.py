"""Each latent's highest-activating samples drawn as images, beside the latent's decoder atom."""

from __future__ import annotations

import numpy as np

from skdict._array import to_numpy
from skdict.inspection import top_activating
from skdict.metrics._code_blocks import check_count, data_source
from skdict.plotting._atoms import check_image_shape
from skdict.plotting._matplotlib import estimator_name, new_figure


def _image_shape(image_shape, n_features):
    """``image_shape`` as ``(H, W)`` with ``H * W = n_features``, or a ValueError naming it (``None`` too)."""
    return check_image_shape((None,) if image_shape is None else image_shape, n_features, "a sample", fix="")


def _most_used_latents(estimator, source, n_latents, batch_size):
    """The ``n_latents`` latents that fire on the most samples (ties: lower index first); a first pass over ``source``."""
    if not source.reiterable:
        raise ValueError(
            f"{source.name} is a one-pass stream: choosing the most used latents would read it twice. "
            "Pass latents=[...] (it is then read once)."
        )
    n_firing = top_activating(estimator, source, n=1, batch_size=batch_size).n_firing
    order = np.argsort(-n_firing, kind="stable")[:n_latents]
    return order[n_firing[order] > 0]


def _atoms_as_images(estimator, n_pixels):
    """``components_`` as a NumPy array when its rows are images of ``n_pixels`` (an SAE's decoder), else ``None``.

    A transcoder's atoms live in the target space and are not drawn when its width differs.
    """
    components = getattr(estimator, "components_", None)
    if components is None or components.shape[1] != n_pixels:
        return None
    return to_numpy(components)


def plot_top_activating(estimator, X, *, image_shape, latents=None, n=8, n_latents=8, batch_size=None,
                        cmap="gray", fig=None):
    """Draw, for each latent, its ``n`` highest-activating samples of ``X`` as images.

    One row per latent: its decoder atom :math:`d_j` first (the row of ``components_``,
    on a symmetric colour scale shared by the atom column), then the samples with the
    largest activations :math:`z_{ij}`, highest first, each titled with :math:`z_{ij}` and
    its row index in ``X``. The samples share one colour scale, stated in the title. A
    latent that fires on fewer than ``n`` samples leaves the rest of its row empty.

    Parameters
    ----------
    estimator : fitted transformer
        An SAE, transcoder or dictionary learner (anything :func:`skdict.inspection.top_activating` takes).
    X : array of shape (n_samples, n_features), or out-of-core data
        What :func:`~skdict.inspection.top_activating` reads; each sample is drawn as an image.
    image_shape : (H, W)
        The shape of one sample as an image, ``H * W = n_features`` (e.g. (8, 8) for digits).
    latents : sequence of int, optional
        The latents to draw, in order. ``None``: the ``n_latents`` latents that fire on the
        most samples (an extra pass over ``X``, so a one-pass stream needs ``latents``).
    n : int, default=8
        Samples per latent.
    n_latents : int, default=8
        Latents drawn when ``latents`` is ``None``.
    batch_size : int, optional
        Rows encoded at once (see :func:`~skdict.inspection.top_activating`).
    cmap : str or Colormap, default="gray"
        Colour map of the samples.
    fig : matplotlib Figure, optional
        Draw into it; a new pyplot-free Figure otherwise.

    Returns
    -------
    fig : matplotlib.figure.Figure
        Axes row-major, one per cell; each carries a label ``"atom j"`` or ``"latent j, rank r"``.

    Raises
    ------
    ValueError
        ``image_shape`` does not hold a sample; ``latents=None`` with a one-pass stream; no
        latent fires on ``X``; and whatever :func:`~skdict.inspection.top_activating` raises.
    ImportError
        matplotlib is missing (``pip install "skdict[plot]"``).
    """
    source = data_source(X)
    image_shape = _image_shape(image_shape, source.n_features)
    if latents is None:
        n_latents = check_count(n_latents, "n_latents", "latents shown, one row each", allow_none=False)
        latents = _most_used_latents(estimator, source, n_latents, batch_size)
        if len(latents) == 0:
            raise ValueError(f"no latent of {estimator_name(estimator)} fires on X: there is nothing to show.")
    top = top_activating(estimator, source, n=n, latents=latents, batch_size=batch_size, return_samples=True)
    atoms = _atoms_as_images(estimator, source.n_features)
    fig = new_figure(fig, figsize=(1.15 * (n + (atoms is not None)) + 0.6, 1.35 * len(top.latents) + 1.0))
    _draw_grid(fig, top, atoms, image_shape, cmap)
    fig.suptitle(_title(estimator, top, atoms), fontsize="medium")
    return fig


def _draw_grid(fig, top, atoms, image_shape, cmap):
    """One row per latent: its atom (when drawn), then its samples; empty cells where it fired less often."""
    from matplotlib.colors import Normalize

    n_cols = top.indices.shape[1] + (atoms is not None)
    filled = top.samples[top.indices >= 0]
    sample_norm = Normalize(float(filled.min()), float(filled.max())) if filled.size else Normalize(0.0, 1.0)
    atom_limit = 1.0 if atoms is None else float(np.abs(atoms[top.latents]).max()) or 1.0
    atom_norm = Normalize(-atom_limit, atom_limit)
    grid = fig.subplots(len(top.latents), n_cols, squeeze=False)
    for p, latent in enumerate(top.latents):
        cells = list(grid[p])
        if atoms is not None:
            ax = cells.pop(0)
            _image(ax, atoms[latent], image_shape, "RdBu_r", atom_norm, f"atom {latent}")
            ax.set_title(f"latent {latent}\nf={top.n_firing[p] / top.n_samples:.2g}", fontsize="small")
        for rank, ax in enumerate(cells):
            row = int(top.indices[p, rank])
            if row < 0:
                ax.set_axis_off()
                ax.set_label(f"latent {latent}, rank {rank}: none")
                continue
            _image(ax, top.samples[p, rank], image_shape, cmap, sample_norm, f"latent {latent}, rank {rank}")
            ax.set_title(f"z={top.values[p, rank]:.3g}\nrow {row}", fontsize="x-small")


def _image(ax, vector, image_shape, cmap, norm, label):
    ax.imshow(np.asarray(vector).reshape(image_shape), cmap=cmap, norm=norm, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_label(label)


def _title(estimator, top, atoms):
    samples = top.samples[top.indices >= 0]
    scale = f"[{samples.min():.3g}, {samples.max():.3g}]" if samples.size else "none"
    first = "first column: the latent's decoder atom (red +, blue -) and firing frequency f\n" if atoms is not None else ""
    return (
        f"Top-{top.indices.shape[1]} activating samples of {len(top.latents)} latents of "
        f"{estimator_name(estimator)} on {top.n_samples} samples\n{first}"
        f"under each sample: its activation z and row in X; one colour scale for all samples: {scale}"
    )
