"""plot_top_activating draws the right rows of X, the right atoms and the right activations."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skdict import TopKSAE
from skdict.inspection import top_activating
from skdict.plotting import plot_top_activating


@pytest.fixture(scope="module")
def digits_sae():
    X = (load_digits().data[:600] / 16.0).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a short fit is enough to have features to show
        return TopKSAE(n_components=24, k=3, max_iter=2, random_state=0).fit(X), X


def cells(fig):
    """``{label: axes}`` of a plot_top_activating figure."""
    return {ax.get_label(): ax for ax in fig.axes}


def test_each_cell_shows_the_listed_row_of_X_and_its_activation(digits_sae):
    est, X = digits_sae
    latents = [3, 0, 17]
    fig = plot_top_activating(est, X, image_shape=(8, 8), latents=latents, n=5)
    top = top_activating(est, X, n=5, latents=latents)
    by_label = cells(fig)
    assert len(fig.axes) == len(latents) * (1 + 5)
    for p, latent in enumerate(latents):
        atom = by_label[f"atom {latent}"]
        np.testing.assert_array_equal(atom.images[0].get_array(), est.components_[latent].reshape(8, 8))
        assert f"latent {latent}" in atom.get_title()
        for rank in range(5):
            row = top.indices[p, rank]
            ax = by_label[f"latent {latent}, rank {rank}"]
            np.testing.assert_array_equal(ax.images[0].get_array(), X[row].reshape(8, 8))
            assert ax.get_title() == f"z={top.values[p, rank]:.3g}\nrow {row}"
    # one colour scale for every sample, stated in the title
    limits = {ax.images[0].get_clim() for label, ax in by_label.items() if "rank" in label}
    assert len(limits) == 1
    assert f"[{min(limits.pop()):.3g}" in fig._suptitle.get_text()


def test_default_latents_are_the_most_used_and_short_rows_stay_empty(digits_sae):
    est, X = digits_sae
    firing = (est.transform(X) != 0).sum(axis=0)
    fig = plot_top_activating(est, X, image_shape=(8, 8), n=4, n_latents=3)
    shown = [int(label.split()[1]) for label in cells(fig) if label.startswith("atom")]
    assert shown == list(np.argsort(-firing, kind="stable")[:3])

    rare = int(np.argmin(np.where(firing > 0, firing, firing.max() + 1)))
    n = int(firing[rare]) + 2
    by_label = cells(plot_top_activating(est, X, image_shape=(8, 8), latents=[rare], n=n))
    empty = [label for label in by_label if label.endswith("none")]
    assert len(empty) == 2 and not any(by_label[label].images for label in empty)


def test_a_generator_is_drawn_from_one_pass_when_latents_are_given(digits_sae):
    est, X = digits_sae
    chunks = (X[start : start + 100] for start in range(0, len(X), 100))
    fig = plot_top_activating(est, chunks, image_shape=(8, 8), latents=[1], n=3)
    top = top_activating(est, X, n=3, latents=[1])
    for rank in range(3):
        shown = cells(fig)[f"latent 1, rank {rank}"].images[0].get_array()
        np.testing.assert_array_equal(shown, X[top.indices[0, rank]].reshape(8, 8))
    one_pass = (X[start : start + 100] for start in range(0, len(X), 100))
    with pytest.raises(ValueError, match="latents="):
        plot_top_activating(est, one_pass, image_shape=(8, 8))


@pytest.mark.parametrize("image_shape", [(8, 7), None, (64,)])
def test_an_image_shape_that_does_not_hold_a_sample_is_named(digits_sae, image_shape):
    est, X = digits_sae
    with pytest.raises(ValueError, match="image_shape"):
        plot_top_activating(est, X, image_shape=image_shape, latents=[0])
