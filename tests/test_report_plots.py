"""The demo report's figures (skdict._report.write_plots), drawn by skdict.plotting, on a tiny configuration."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skdict import SparseCoder, TopKSAE, _report
from skdict._history import CORE_KEYS, KEY_LABELS

pytest.importorskip("matplotlib")

PNG = b"\x89PNG\r\n\x1a\n"


def tiny_digits(config):
    X = (load_digits().data[:300] / 16.0).astype(np.float32)
    return _report.Problem(
        name="digits", description="300 digits", X=X, atom_shape=(8, 8),
        fit_params={"n_components": 24, "max_iter": 3, **_report.TRAINING},
    )


def fixed_dictionary(problem, config):
    """An oracle-like method: sparse coding on a fixed dictionary, never trained (no history_)."""
    atoms = problem.X[:12] / np.linalg.norm(problem.X[:12], axis=1, keepdims=True)
    return SparseCoder(atoms, transform_algorithm="omp", transform_n_nonzero_coefs=2)


def broken(problem, config):
    return TopKSAE(n_components=4, k=100)  # k > n_components: the fit fails


@pytest.fixture(scope="module")
def reports():
    methods = (
        ("TopKSAE", _report.sae(TopKSAE, k=4)),
        ("DL-FISTA", _report.dictionary_learning(alpha=0.1, max_iter=3, quick_max_iter=2)),
        ("Fixed", fixed_dictionary),
        ("Broken", broken),
    )
    benchmark = _report.Benchmark("digits", tiny_digits, methods)
    saved, _report.BENCHMARKS = _report.BENCHMARKS, [benchmark]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return _report.run_report(_report.RunConfig(quick=True))
    finally:
        _report.BENCHMARKS = saved


def recorded(estimator, key):
    history = getattr(estimator, "history_", None)
    return isinstance(history, dict) and len(history.get(key, ())) > 0


def test_write_plots_writes_every_figure_of_the_report(reports, tmp_path, monkeypatch):
    monkeypatch.setattr(_report, "ATOMS_SHOWN", 4)  # small grids: the files are what is tested here
    monkeypatch.setattr(_report, "TOP_LATENTS", 2)
    monkeypatch.setattr(_report, "TOP_SAMPLES", 3)
    paths = _report.write_plots(reports, tmp_path)
    assert [p.name for p in paths] == [
        "training_curves.png",
        "digits_feature_density.png",
        "digits_TopKSAE_atoms.png",
        "digits_TopKSAE_top_activating.png",
    ]
    for path in paths:
        assert path.read_bytes()[:8] == PNG


def test_training_curves_have_a_line_for_every_method_with_a_history(reports):
    (problem, results), = reports
    block, = _report.training_curves_figure(reports).subfigs
    panels = {ax.get_title(): ax for ax in block.axes}
    assert set(panels) == {KEY_LABELS[key] for key in CORE_KEYS}
    for key in CORE_KEYS:
        expected = [r.method for r in results if r.estimator is not None and recorded(r.estimator, key)]
        assert [line.get_label() for line in panels[KEY_LABELS[key]].lines] == expected, key
    # TopKSAE records every core key; DL-FISTA (a dictionary learner) is drawn wherever it records one.
    assert "TopKSAE" in [line.get_label() for line in panels[KEY_LABELS["loss"]].lines]
    assert any(line.get_label() == "DL-FISTA" for ax in block.axes for line in ax.lines)
    # Untrained methods are named, not silently dropped.
    assert block._supxlabel.get_text() == "no training history: Fixed, Broken (fit failed)"


def test_feature_density_uses_the_report_codes(reports):
    (problem, results), = reports
    topk = results[0]
    np.testing.assert_array_equal(topk.firing_frequency, (topk.estimator.transform(problem.X) != 0).mean(axis=0))
    fitted = [r for r in results if r.estimator is not None]
    fig = _report.feature_density_figure(problem, fitted)
    titles = [ax.get_title() for ax in fig.axes if ax.axison]
    assert [t.split(":")[0] for t in titles] == ["TopKSAE", "DL-FISTA", "Fixed"]
    dead = int((topk.firing_frequency == 0).sum())
    assert titles[0] == f"TopKSAE: {dead} of 24 latents dead"


def test_thresholded_codes_fire_as_the_table_counts_them():
    """A method with dense codes: its firing frequencies follow the table's relative threshold, marked *."""
    class DenseCodes:  # codes exp(-10 |x . d_j|): never exactly zero, like softplus codes
        components_ = np.eye(4, 64)

        def fit(self, X):
            return self

        def transform(self, X):
            return np.exp(-np.abs(X @ self.components_.T) * 10.0)

        def inverse_transform(self, codes):
            return codes @ self.components_

    problem = tiny_digits(None)
    dense = DenseCodes()
    result = _report.evaluate("dense", dense, problem, code_threshold=0.1)
    codes = dense.transform(problem.X)
    magnitude = np.abs(codes)
    above = magnitude > 0.1 * magnitude.max(axis=1, keepdims=True)
    np.testing.assert_allclose(result.firing_frequency, above.mean(axis=0))
    fig = _report.feature_density_figure(problem, [result])
    assert fig.axes[0].get_title().startswith("dense*:")


def test_top_activating_figure_shows_the_most_used_latents(reports, monkeypatch):
    monkeypatch.setattr(_report, "ATOMS_SHOWN", 4)
    monkeypatch.setattr(_report, "TOP_SAMPLES", 2)
    (problem, results), = reports
    topk = results[0]
    figures = _report._image_figures(problem, topk)
    shown = [int(ax.get_label().split()[1]) for ax in figures["digits_TopKSAE_top_activating.png"].axes
             if ax.get_label().startswith("atom")]
    assert shown == list(np.argsort(-topk.firing_frequency, kind="stable")[: _report.TOP_LATENTS])
