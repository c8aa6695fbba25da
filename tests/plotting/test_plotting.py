"""skdict.plotting: figures checked by their content (axes, colour limits, histogram counts, the front)."""

import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from skdict import FISTADictionaryLearning, TopKSAE
from skdict.metrics import explained_variance, firing_frequency, get_scorer, l0
from skdict.plotting import pareto_front, plot_atoms, plot_feature_density, plot_pareto, plot_training_curves


def _quiet_fit(model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # short budgets on purpose
        return model.fit(X)


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(0)
    return rng.normal(size=(400, 16)).astype(np.float32)


@pytest.fixture(scope="module")
def sae(X):
    return _quiet_fit(TopKSAE(n_components=40, k=3, max_iter=3, early_stopping=False, random_state=0), X)


def _images(fig):
    return [image for ax in fig.axes for image in ax.get_images()]


def test_atoms_share_one_symmetric_colour_scale(sae, X):
    fig = plot_atoms(sae, image_shape=(4, 4), X=X, n_atoms=12)
    assert isinstance(fig, Figure)
    images = _images(fig)
    assert len(images) == 12 and len(fig.axes) == 13  # 12 atoms + the colourbar
    limits = {image.get_clim() for image in images}
    assert len(limits) == 1
    low, high = limits.pop()
    atoms = sae.components_
    frequencies = firing_frequency(sae, X)
    order = np.argsort(-frequencies, kind="stable")[:12]
    assert low == -high == pytest.approx(-np.abs(atoms[order]).max())
    # ordered by firing frequency, each subtitle states it
    for ax, index in zip(fig.axes[:12], order):
        assert ax.get_title().startswith(f"#{index}\n")
        assert f"f={frequencies[index]:.2g}" in ax.get_title() or "dead" in ax.get_title()
    np.testing.assert_array_equal(images[0].get_array(), atoms[order[0]].reshape(4, 4))
    assert "one colour scale" in fig._suptitle.get_text()


def test_atoms_as_profiles_and_as_a_bare_array(sae):
    fig = plot_atoms(sae.components_[:5], order="index")
    assert len(fig.axes) == 6
    for ax in fig.axes[:5]:
        assert len(ax.patches) == 16  # one bar per feature
        bottom, top = ax.get_ylim()
        assert bottom == pytest.approx(-top)
    heights = [patch.get_height() for patch in fig.axes[2].patches]
    np.testing.assert_allclose(heights, sae.components_[2], rtol=1e-6)


def test_atoms_errors(sae, X):
    with pytest.raises(ValueError, match="image_shape"):
        plot_atoms(sae, image_shape=(3, 5))
    with pytest.raises(ValueError, match="estimator"):
        plot_atoms(sae.components_, X=X)
    with pytest.raises(ValueError, match="order"):
        plot_atoms(sae, order="size")


def test_feature_density_counts_are_the_histogram_of_log10_frequencies(sae, X):
    frequencies = firing_frequency(sae, X)
    fig = plot_feature_density(sae, X, bins=10)
    (ax,) = fig.axes
    alive = frequencies[frequencies > 0]
    expected, _ = np.histogram(np.log10(alive), bins=10)
    np.testing.assert_array_equal([patch.get_height() for patch in ax.patches], expected)
    n_dead = int(np.sum(frequencies == 0))
    assert f"{n_dead} of {frequencies.size} latents dead" in ax.get_title()


def test_feature_density_states_dead_latents():
    frequencies = np.array([0.0, 0.0, 0.5, 1e-3, 0.02])
    ax = plot_feature_density(frequencies=frequencies, bins=3).axes[0]
    assert "2 of 5 latents dead" in ax.get_title()
    assert sum(patch.get_height() for patch in ax.patches) == 3
    assert any("2 dead latents" in text.get_text() for text in ax.get_legend().get_texts())


def test_training_curves_draw_every_estimator_that_records_a_key(sae, X):
    dl = _quiet_fit(FISTADictionaryLearning(n_components=10, alpha=0.1, max_iter=3, random_state=0), X)
    no_history = FISTADictionaryLearning()  # unfitted: no history_, drawn nowhere
    fig = plot_training_curves({"sae": sae, "dl": dl, "none": no_history}, keys=("loss", "objective", "n_active"))
    assert len(fig.axes) == 3
    loss_ax, objective_ax, nobody_ax = fig.axes
    assert [line.get_label() for line in loss_ax.get_lines()] == ["sae", "dl"]  # one schema: both record "loss"
    np.testing.assert_array_equal(loss_ax.get_lines()[0].get_ydata(), sae.history_["loss"])
    np.testing.assert_array_equal(loss_ax.get_lines()[1].get_ydata(), dl.history_["loss"])
    np.testing.assert_array_equal(loss_ax.get_lines()[0].get_xdata(), np.arange(1, len(sae.history_["loss"]) + 1))
    assert [line.get_label() for line in objective_ax.get_lines()] == ["dl"]
    assert not nobody_ax.get_lines() and "no estimator records" in nobody_ax.texts[0].get_text()


def test_training_curves_keep_nan_gaps_and_take_one_estimator(sae):
    fig = plot_training_curves(sae, keys=("dead_fraction",), history="step")
    (line,) = fig.axes[0].get_lines()
    np.testing.assert_array_equal(line.get_ydata(), np.asarray(sae.step_history_["dead_fraction"], float))
    np.testing.assert_array_equal(line.get_xdata(), sae.step_history_["samples"])
    assert line.get_label() == "TopKSAE"


def _brute_force_front(x, y):
    keep = []
    for i in range(len(x)):
        if np.isnan(x[i]) or np.isnan(y[i]):
            continue
        dominated = any(
            x[j] <= x[i] and y[j] >= y[i] and (x[j] < x[i] or y[j] > y[i]) for j in range(len(x)) if j != i
        )
        if not dominated:
            keep.append(i)
    return sorted(keep)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=12))
def test_pareto_front_is_exactly_the_non_dominated_points(points):
    x, y = (np.array(v, dtype=float) for v in zip(*points))
    front = pareto_front(x, y)
    assert sorted(front.tolist()) == _brute_force_front(x, y)
    assert np.all(np.diff(x[front]) >= 0)


def test_pareto_from_a_multi_metric_grid_search(X):
    scoring = {"l0": get_scorer("neg_l0"), "ev": get_scorer("explained_variance")}
    search = GridSearchCV(
        TopKSAE(n_components=24, max_iter=2, early_stopping=False, random_state=0),
        {"k": [1, 2, 4, 8]}, scoring=scoring, refit=False, cv=2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X)
    fig = plot_pareto(search, x="l0", y="explained_variance")
    ax = fig.axes[0]
    xs = -search.cv_results_["mean_test_l0"]
    ys = search.cv_results_["mean_test_ev"]
    np.testing.assert_allclose(ax.collections[0].get_offsets(), np.column_stack([xs, ys]))
    (front_line,) = [line for line in ax.get_lines() if line.get_label() == "Pareto front"]
    front = pareto_front(xs, ys)
    np.testing.assert_allclose(front_line.get_xdata(), xs[front])
    assert np.all(xs > 0)  # L0 is positive: the neg_ scorer's sign was undone


def test_pareto_from_estimators_and_dicts(sae, X):
    other = _quiet_fit(TopKSAE(n_components=40, k=1, max_iter=2, early_stopping=False, random_state=1), X)
    fig = plot_pareto({"k=3": sae, "k=1": other}, X=X)
    offsets = fig.axes[0].collections[0].get_offsets()
    codes = sae.transform(X)
    np.testing.assert_allclose(offsets[0], [l0(codes), explained_variance(X, sae.inverse_transform(codes))], rtol=1e-6)
    fig = plot_pareto([{"l0": 1, "explained_variance": 0.5}, {"l0": 2, "explained_variance": 0.4}])
    (front_line,) = [line for line in fig.axes[0].get_lines() if line.get_label() == "Pareto front"]
    np.testing.assert_array_equal(front_line.get_xdata(), [1])
    with pytest.raises(ValueError, match="pass X"):
        plot_pareto([sae])
    with pytest.raises(ValueError, match="scoring"):
        plot_pareto({"params": [{}], "mean_test_score": [0.5]})


def test_pareto_counts_only_the_scored_settings():
    """A failed fit's NaN score is neither drawn nor counted as drawn (the legend and title say so)."""
    points = [{"l0": 1, "explained_variance": 0.5}, {"l0": float("nan"), "explained_variance": 0.9},
              {"l0": 2, "explained_variance": 0.7}]
    ax = plot_pareto(points).axes[0]
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend[0] == "2 settings (1 without a score, not drawn)"
    assert ax.get_title() == "2 of 2 scored settings on the Pareto front"
    ax = plot_pareto(points[:1]).axes[0]
    assert [text.get_text() for text in ax.get_legend().get_texts()][0] == "1 setting"


def test_draws_into_a_given_axes(sae, X):
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_feature_density(sae, X, ax=ax) is fig
    assert plot_pareto([{"l0": 1, "explained_variance": 0.5}], ax=ax) is fig


@pytest.mark.parametrize("call", [
    lambda sae, X: plot_atoms(sae),
    lambda sae, X: plot_feature_density(sae, X),
    lambda sae, X: plot_training_curves(sae),
    lambda sae, X: plot_pareto([{"l0": 1, "explained_variance": 0.5}]),
])
def test_missing_matplotlib_names_the_plot_extra(monkeypatch, sae, X, call):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r'pip install "skdict\[plot\]"'):
        call(sae, X)
