"""The summary of one model on some rows: a table, ``metrics.json`` and the plots.

Explained variance (``model.score``), L0, dead and dense latents all come from two streamed
passes over the rows: ``score`` and :func:`skdict.metrics.firing_frequency`
(L0 is the sum of the firing frequencies: the mean count of active latents per row).
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from skdict.plotting._matplotlib import INSTALL_HINT, matplotlib_installed

#: A latent that fires on more than this fraction of rows is dense (SAEBench and SAELens flag ~10%).
DENSE_THRESHOLD = 0.1

PLOTS_SKIPPED = f"plots skipped: matplotlib is not installed ({INSTALL_HINT})"


def measure(model, source, targets=None):
    """Metrics of ``model`` on the rows of ``source`` (and transcoder ``targets``).

    Parameters
    ----------
    model : fitted skdict SAE
    source : DataSource
        The rows to measure on (the inputs ``X`` a transcoder encodes).
    targets : DataSource or None
        A transcoder's target rows ``Y``, row-aligned with ``source``: the explained variance is
        that of their reconstruction; L0, dead and dense latents are those of the codes of ``source``.

    Returns
    -------
    metrics : dict
        ``explained_variance``, ``l0``, ``dead_latents`` (never fired on these rows),
        ``dense_latents`` (fire on more than :data:`DENSE_THRESHOLD` of them), their fractions,
        ``n_latents``, ``n_rows``, ``kind`` ("sae" or "transcoder"), ``n_features`` and, for a
        transcoder, ``n_target_features``.
    frequencies : ndarray of shape (n_latents,)
        Each latent's firing frequency on the rows.
    """
    from skdict.metrics import firing_frequency

    explained_variance = float(model.score(source, targets))
    frequencies = firing_frequency(model, source)
    n_latents = int(frequencies.size)
    dead = int(np.count_nonzero(frequencies == 0))
    dense = int(np.count_nonzero(frequencies > DENSE_THRESHOLD))
    metrics = {
        "explained_variance": explained_variance,
        "l0": float(frequencies.sum()),
        "n_latents": n_latents,
        "dead_latents": dead,
        "dead_fraction": dead / n_latents,
        "dense_latents": dense,
        "dense_fraction": dense / n_latents,
        "dense_threshold": DENSE_THRESHOLD,
        "n_rows": int(source.n_rows),
        "kind": "transcoder" if targets is not None else "sae",
        "n_features": int(source.n_features),
    }
    if targets is not None:
        metrics["n_target_features"] = int(targets.n_features)
    return metrics, frequencies


def title(model, metrics, rows, *, loaded_from=None):
    """The table's first line: the model (a transcoder says so), where it was loaded from, which ``rows`` of which files.

    ``metrics`` holds ``n_rows``, ``kind``, ``data`` and, for a transcoder, ``target``;
    ``rows`` names them, e.g. ``"held-out rows"``.
    """
    name = f"{type(model).__name__} transcoder" if metrics.get("kind") == "transcoder" else type(model).__name__
    origin = f" from {loaded_from}" if loaded_from is not None else ""
    files = metrics["data"] + (f" -> targets {metrics['target']}" if "target" in metrics else "")
    return f"{name}{origin} on {metrics['n_rows']} {rows} of {files}"


def _percent(count, total):
    return f"{count} / {total} ({100.0 * count / total:.1f}%)"


def format_table(metrics, *, title):
    """The metrics as aligned lines under ``title`` (training figures too when present)."""
    n = metrics["n_latents"]
    rows = [
        ("explained variance", f"{metrics['explained_variance']:.4f}"),
        ("L0 (active latents per row)", f"{metrics['l0']:.2f}"),
        ("dead latents", f"{_percent(metrics['dead_latents'], n)}  never fired on the {metrics['n_rows']} rows"),
        (
            "dense latents",
            f"{_percent(metrics['dense_latents'], n)}  fire on > {100 * metrics['dense_threshold']:g}% of the rows",
        ),
    ]
    if "training_dead_fraction" in metrics:
        fraction = metrics["training_dead_fraction"]
        known = fraction is not None and math.isfinite(fraction)
        rows.append((
            "dead in training",
            f"{_percent(round(fraction * n), n)}  silent for the last {metrics['dead_after']} training samples"
            if known else f"not known yet (fewer than dead_after={metrics['dead_after']} samples seen)",
        ))
    if "n_steps" in metrics:
        rows += [
            ("training steps", str(metrics["n_steps"])),
            ("samples seen", str(metrics["n_samples_seen"])),
            ("epochs begun", str(metrics["n_epochs"])),
            ("fit time", f"{metrics['fit_seconds']:.1f} s"),
        ]
    width = max(len(name) for name, _ in rows)
    return "\n".join([title, *(f"  {name.ljust(width)}  {value}" for name, value in rows)])


def _finite_or_none(value):
    """JSON has no NaN: ``None`` in its place."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_metrics(path, metrics):
    """``metrics`` as indented JSON (NaN written as null)."""
    clean = {key: _finite_or_none(value) for key, value in metrics.items()}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(clean, f, indent=2)
        f.write("\n")


def _has_history(model):
    history = getattr(model, "history_", None)
    return bool(history) and bool(history.get("loss"))


def write_plots(model, source, frequencies, output_dir, *, image_shape=None):
    """Write ``feature_density.png``, ``training_curves.png`` (when the model has a history) and ``atoms.png``.

    Returns
    -------
    paths : list of str or None
        The files written; ``None`` when matplotlib is not installed.
    """
    if not matplotlib_installed():
        return None
    from skdict.plotting import plot_atoms, plot_feature_density, plot_training_curves

    figures = {"feature_density.png": plot_feature_density(model, frequencies=frequencies)}
    if _has_history(model):
        # per window of log_every steps against samples seen: a one-epoch run over a large file is one epoch point
        windows = len(getattr(model, "step_history_", {}).get("loss", ()))
        figures["training_curves.png"] = plot_training_curves(model, history="step" if windows >= 2 else "epoch")
    if image_shape is not None:
        figures["atoms.png"] = plot_atoms(model, image_shape=image_shape, X=source)
    paths = []
    for name, fig in figures.items():
        path = os.path.join(output_dir, name)
        fig.savefig(path, dpi=100, bbox_inches="tight")
        paths.append(path)
    return paths


def write_report(output_dir, text, metrics, model, source, frequencies, *, image_shape=None, log=print):
    """``report.md`` (the table, in a code block), ``metrics.json`` and the plots, each named on ``log``."""
    os.makedirs(output_dir, exist_ok=True)
    report = os.path.join(output_dir, "report.md")
    with open(report, "w", encoding="utf-8") as f:
        f.write(f"```\n{text}\n```\n")
    metrics_path = os.path.join(output_dir, "metrics.json")
    write_metrics(metrics_path, metrics)
    log(f"report written to {report} and {metrics_path}")
    paths = write_plots(model, source, frequencies, output_dir, image_shape=image_shape)
    if paths is None:
        log(PLOTS_SKIPPED)
    else:
        for path in paths:
            log(f"plot written to {path}")
