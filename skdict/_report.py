"""The report behind ``python -m skdict``: fit the SAE family on a few problems and tabulate.

The report is driven by :data:`BENCHMARKS`, a list of :class:`Benchmark` entries.
Each one says how to load its data (:class:`Problem`) and which methods to fit on
it: a list of ``(name, factory)`` pairs, where ``factory(problem, config)``
returns an unfitted estimator. Adding a method to the report is adding one pair
to a list; adding a data set is adding one :class:`Benchmark`.

For every fitted estimator the report measures explained variance
(``est.score(X)``), L0 and the dead fraction of the codes ``est.transform(X)``,
ground-truth recovery when the problem knows its true features, and the fit
time. A method whose codes are never exactly zero (Softplus-Adam) has its L0 and
dead fraction counted above a stated relative threshold, marked ``*`` in the
table and explained in a footnote under it. The figures are drawn by
:mod:`skdict.plotting`; matplotlib is imported only when a plot is written.
"""

from __future__ import annotations

import math
import textwrap
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from skdict import (
    AnchoredSAE,
    BatchTopKSAE,
    FISTADictionaryLearning,
    GatedSAE,
    LISTA,
    JumpReLUSAE,
    MatryoshkaSAE,
    MPSAE,
    SoftplusAdamDictionaryLearning,
    ReLUSAE,
    SparseCoder,
    TopKSAE,
)
from skdict._array import to_numpy

#: Cosine above which a learned atom counts as recovering a true feature.
GT_THRESHOLD = 0.95

#: For codes that are never exactly zero: an entry counts as active when
#: ``|z_ij| > CODE_THRESHOLD * max_j |z_ij|`` (relative to its row's largest code).
CODE_THRESHOLD = 1e-3


@dataclass(frozen=True)
class RunConfig:
    """What the command line decides for every fit of a run."""

    quick: bool = False
    seed: int = 0
    device: str = "cpu"

    def pick(self, full, quick):
        """``quick`` under ``--quick``, else ``full`` (a size or budget of the run)."""
        return quick if self.quick else full


@dataclass
class Problem:
    """One data set of the report, already loaded.

    ``features`` holds the true features as rows (``None`` when unknown);
    ``atom_shape`` the image shape of an atom, when atoms can be drawn as images;
    ``fit_params`` the training settings shared by every method on this problem
    (``n_components``, ``max_iter``, ``batch_size``, ``learning_rate``; sizes depend on ``--quick``).
    """

    name: str
    description: str
    X: np.ndarray
    features: np.ndarray | None = None
    atom_shape: tuple[int, int] | None = None
    fit_params: dict = field(default_factory=dict)
    codes: np.ndarray | None = None
    X_ood: np.ndarray | None = None
    codes_ood: np.ndarray | None = None


#: A factory builds an unfitted estimator for a problem and a run configuration.
Factory = Callable[[Problem, RunConfig], Any]


@dataclass(frozen=True)
class Benchmark:
    """A data set and the ``(name, factory)`` pairs of the methods fitted on it."""

    name: str
    load: Callable[[RunConfig], Problem]
    methods: tuple[tuple[str, Factory], ...]


@dataclass
class Result:
    """One row of a report table (``error`` is set, and the numbers NaN, when a fit or a measurement failed)."""

    method: str
    explained_variance: float = math.nan
    l0: float = math.nan
    dead_fraction: float = math.nan
    gt_recovery: float | None = None
    mean_max_cosine: float | None = None
    mcc_in: float | None = None
    mcc_out: float | None = None
    fit_seconds: float = math.nan
    error: str | None = None
    estimator: Any = field(default=None, repr=False)
    #: Relative threshold under which codes counted as zero for L0 and dead fraction (``None``: exact zeros).
    code_threshold: float | None = None
    #: The distinct ConvergenceWarning messages of the fit and the measurements (listed under the table).
    convergence_warnings: list[str] = field(default_factory=list)
    #: Fraction of the training samples each latent fires on (counted as L0 is), shape (n_components,).
    firing_frequency: np.ndarray | None = field(default=None, repr=False)


# --------------------------------------------------------------------- methods
def sae(cls, **params) -> Factory:
    """Factory for an SAE of class ``cls``: the problem's ``fit_params``, the run's seed and device, ``params``."""

    def factory(problem, config):
        return cls(**problem.fit_params, **params, device=config.device, random_state=config.seed)

    factory.__name__ = f"make_{cls.__name__}"
    return factory


# Hyper-parameters at matched sparsity. TopK, BatchTopK and MPSAE get k directly.
# ReLUSAE's L1 weight and JumpReLUSAE's L0 weight do not set L0 directly: their
# alphas were chosen once by a small sweep (seed 0, the full-size settings below,
# float32 data, every other parameter as here), keeping the alpha whose measured
# L0 of transform(X) came closest to TopK's. What the sweep measured:
#   synthetic  TopK k=2: L0 1.3.  ReLU alpha 0.03 / 0.1 / 0.15 / 0.2: L0 16.6 / 2.9 / 2.4 / 2.1.
#              JumpReLU alpha 0.01 / 0.03 / 0.1 / 0.3: L0 7.0 / 3.8 / 2.3 / 2.2.
#   digits     TopK k=16: L0 16.  ReLU alpha 0.2 / 0.3 / 0.4: L0 15.1 / 10.0 / 7.2.
#              JumpReLU alpha 0.01 / 0.02 / 0.03 / 0.05: L0 21.3 / 17.2 / 15.4 / 12.9.
#   GatedSAE (its alpha in ReLU's units):  synthetic alpha 0.1 / 0.2 / 0.3 / 0.4: L0 3.8 / 1.8 / 1.4 / 1.2;
#              digits alpha 0.2 / 0.25 / 0.3 / 0.5: L0 20.9 / 16.7 / 13.5 / 7.0 (EV 0.955 at 0.25, ReLU 0.90 at L0 13).
def dictionary_learning(alpha, max_iter, quick_max_iter) -> Factory:
    """Factory for DL-FISTA (alternating FISTA codes and least-squares atoms), non-negative codes."""

    def factory(problem, config):
        return FISTADictionaryLearning(
            problem.fit_params["n_components"], alpha=alpha, positive_code=True, device=config.device,
            max_iter=config.pick(max_iter, quick_max_iter), random_state=config.seed,
        )

    factory.__name__ = "make_FISTADictionaryLearning"
    return factory


def anchored(cls, n_anchors, **params) -> Factory:
    """Factory for an SAE whose first latents are anchored at the problem's first ``n_anchors`` true features."""
    inner = sae(cls, **params)

    def factory(problem, config):
        return AnchoredSAE(inner(problem, config), anchors=problem.features[:n_anchors], anchor_weight=1.0)

    factory.__name__ = f"make_Anchored{cls.__name__}"
    return factory


def softplus_adam(alpha, max_iter, quick_max_iter) -> Factory:
    """Factory for the Softplus-Adam baseline (codes softplus(z~) and atoms optimised jointly by Adam).

    Its codes are never exactly zero, so the report counts them above :data:`CODE_THRESHOLD`.
    """

    def factory(problem, config):
        return SoftplusAdamDictionaryLearning(
            problem.fit_params["n_components"], alpha=alpha, max_iter=config.pick(max_iter, quick_max_iter),
            transform_max_iter=config.pick(100, 50), device=config.device, random_state=config.seed,
        )

    factory.__name__ = "make_SoftplusAdamDictionaryLearning"
    factory.code_threshold = CODE_THRESHOLD
    return factory


def lista_oracle(alpha, n_layers, max_iter) -> Factory:
    """Factory for LISTA unrolled on the true features: how well a learned, fixed-depth encoder codes them."""

    def factory(problem, config):
        return LISTA(
            problem.features.shape[0], n_layers, dictionary=problem.features, alpha=alpha, positive=True,
            max_iter=max_iter, learning_rate=3e-3, device=config.device, random_state=config.seed,
        )

    factory.__name__ = "make_LISTA"
    return factory


def fista_oracle(alpha) -> Factory:
    """Sparse coding on the true features themselves: the ceiling a learned dictionary can reach."""

    def factory(problem, config):
        return SparseCoder(problem.features, transform_algorithm="fista", transform_alpha=alpha, positive_code=True)

    factory.__name__ = "make_fista_oracle"
    return factory


SYNTHETIC_METHODS = (
    ("TopKSAE", sae(TopKSAE, k=2)),
    ("BatchTopKSAE", sae(BatchTopKSAE, k=2)),
    ("ReLUSAE", sae(ReLUSAE, alpha=0.2)),
    ("JumpReLUSAE", sae(JumpReLUSAE, alpha=0.1)),
    ("GatedSAE", sae(GatedSAE, alpha=0.3)),
    ("MPSAE", sae(MPSAE, k=2)),
    ("MatryoshkaSAE", sae(MatryoshkaSAE, k=2)),
    ("DL-FISTA", dictionary_learning(alpha=0.05, max_iter=15, quick_max_iter=5)),
    ("SoftplusAdam", softplus_adam(alpha=0.05, max_iter=300, quick_max_iter=100)),
    ("LISTA-oracle", lista_oracle(alpha=0.05, n_layers=8, max_iter=5)),
    ("AnchoredTopK", anchored(TopKSAE, 16, k=2)),
    ("AnchoredReLU", anchored(ReLUSAE, 16, alpha=0.2)),
)

# Compositional OOD: codes and their MCC with the true codes, in distribution and out.
OOD_METHODS = (
    ("FISTA-oracle", fista_oracle(alpha=0.01)),
    ("DL-FISTA", dictionary_learning(alpha=0.2, max_iter=30, quick_max_iter=10)),
    ("TopKSAE", sae(TopKSAE, k=3)),
    ("ReLUSAE", sae(ReLUSAE, alpha=0.05)),
    ("MPSAE", sae(MPSAE, k=3)),
)

DIGITS_METHODS = (
    ("TopKSAE", sae(TopKSAE, k=16)),
    ("BatchTopKSAE", sae(BatchTopKSAE, k=16)),
    ("ReLUSAE", sae(ReLUSAE, alpha=0.2)),
    ("JumpReLUSAE", sae(JumpReLUSAE, alpha=0.03)),
    ("GatedSAE", sae(GatedSAE, alpha=0.25)),
    ("MPSAE", sae(MPSAE, k=16)),
)

#: Training settings shared by every method of the report. The estimators' default
#: learning rate (1e-3, batches of 256) is meant for long runs; in the few hundred
#: steps of the report it leaves atoms close to their random start (TopK on digits:
#: explained variance 0.85 at 1e-3 / 256 against 0.94 at 4e-3 / 128).
TRAINING = {"batch_size": 128, "learning_rate": 4e-3}


# ------------------------------------------------------------------------ data
def load_synthetic(config: RunConfig) -> Problem:
    """Linear Representation Bench: sparse codes over known, nearly orthogonal features."""
    from skdict.datasets import make_linear_representation_bench

    n_samples, n_features, n_dims, max_iter = config.pick((6000, 128, 96, 20), (2000, 32, 28, 20))
    X, features, _ = make_linear_representation_bench(
        n_samples, n_features, n_dims, random_state=config.seed
    )
    X = np.asarray(X, dtype=np.float32)
    n_components = 4 * n_features
    return Problem(
        name="synthetic",
        description=(
            f"make_linear_representation_bench: {n_samples} samples, {n_features} true features "
            f"in {n_dims} dims; n_components={n_components}, max_iter={max_iter}"
        ),
        X=X,
        features=np.asarray(features),
        fit_params={"n_components": n_components, "max_iter": max_iter, **TRAINING},
    )


def load_digits(config: RunConfig) -> Problem:
    """scikit-learn's 8x8 digits, pixels scaled to [0, 1] (ships with scikit-learn, no download)."""
    from sklearn.datasets import load_digits as sklearn_load_digits

    X = (sklearn_load_digits().data / 16.0).astype(np.float32)
    n_components, max_iter = config.pick((256, 30), (128, 10))
    return Problem(
        name="digits",
        description=(
            f"sklearn.datasets.load_digits / 16: {X.shape[0]} samples, {X.shape[1]} pixels; "
            f"n_components={n_components}, max_iter={max_iter}"
        ),
        X=X,
        atom_shape=(8, 8),
        fit_params={"n_components": n_components, "max_iter": max_iter, **TRAINING},
    )


def load_ood(config: RunConfig) -> Problem:
    """Compositional OOD split: latent 0 seen with the low half of the latents in training, with the high half OOD."""
    from skdict.datasets import make_compositional_ood

    n_latents, k = 32, 3
    n_samples, max_iter = config.pick((10_000, 60), (2000, 20))
    data = make_compositional_ood(n_latents, k, n_samples, random_state=config.seed)
    return Problem(
        name="ood",
        description=(
            f"make_compositional_ood: {n_latents} latents, k={k}, {data.X_train.shape[1]} measured dims, "
            f"{n_samples} training samples; n_components={n_latents}, max_iter={max_iter}"
        ),
        X=np.asarray(data.X_train, dtype=np.float32),
        features=np.asarray(data.features),
        codes=np.asarray(data.codes_train),
        X_ood=np.asarray(data.X_ood, dtype=np.float32),
        codes_ood=np.asarray(data.codes_ood),
        fit_params={"n_components": n_latents, "max_iter": max_iter, **TRAINING},
    )


BENCHMARKS: list[Benchmark] = [
    Benchmark("synthetic", load_synthetic, SYNTHETIC_METHODS),
    Benchmark("ood", load_ood, OOD_METHODS),
    Benchmark("digits", load_digits, DIGITS_METHODS),
]


def method_names() -> list[str]:
    """Every method name in the registry, in order of first appearance."""
    names: list[str] = []
    for benchmark in BENCHMARKS:
        for name, _ in benchmark.methods:
            if name not in names:
                names.append(name)
    return names


# ------------------------------------------------------------------ measuring
def active_codes(codes, threshold):
    r"""The codes with entries at or below ``threshold`` times their row's largest ``|code|`` set to zero.

    Parameters
    ----------
    codes : ndarray of shape (n_samples, n_components)
    threshold : float
        Relative to each row's :math:`\max_j |z_{ij}|`; a row of zeros stays zero.

    Returns
    -------
    codes : ndarray of shape (n_samples, n_components)
        A new array; only the entries that count as active are nonzero.
    """
    codes = np.asarray(to_numpy(codes))
    magnitude = np.abs(codes)
    keep = magnitude > threshold * magnitude.max(axis=1, keepdims=True)
    return np.where(keep, codes, 0)


def evaluate(name: str, estimator, problem: Problem, *, code_threshold: float | None = None) -> Result:
    """Fit ``estimator`` on the problem and measure it; a failure becomes a row with ``error``.

    Ground-truth columns are measured only where the problem knows the truth:
    recovery and M_IP against ``features`` (for an :class:`~skdict.AnchoredSAE`,
    on the features and latents that were not anchored: anchors are the first
    true features), MCC of the codes against ``codes`` and ``codes_ood``.
    ``code_threshold`` (relative, see :func:`active_codes`) is for codes that are
    never exactly zero: L0 and the dead fraction then count only the entries above it.

    The report's budgets are short: a ``ConvergenceWarning`` of the fit or of the
    measurements is kept in ``convergence_warnings`` (the table's notes name the method)
    instead of going to stderr; other warnings are passed on.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        result = _fit_and_measure(name, estimator, problem, code_threshold)
    for warning in caught:
        if not issubclass(warning.category, ConvergenceWarning):
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        elif str(warning.message) not in result.convergence_warnings:
            result.convergence_warnings.append(str(warning.message))
    return result


def _fit_and_measure(name, estimator, problem, code_threshold):
    """The fit and the measurements of :func:`evaluate` (which handles the warnings)."""
    from skdict.metrics import dead_fraction, explained_variance, gt_recovery, l0, mcc, mean_max_cosine
    from skdict.metrics._firing import _active_per_latent

    X = problem.X
    failed = {"gt_recovery": math.nan if problem.features is not None else None}
    start = time.perf_counter()
    try:
        estimator.fit(X)
    except Exception as exc:  # a report row, not a crash: the other methods still run
        seconds = time.perf_counter() - start
        return Result(name, fit_seconds=seconds, error=f"fit: {type(exc).__name__}: {exc}", **failed)
    seconds = time.perf_counter() - start
    try:
        codes = estimator.transform(X)
        active = codes if code_threshold is None else active_codes(codes, code_threshold)
        result = Result(
            name,
            explained_variance=float(explained_variance(X, estimator.inverse_transform(codes))),
            l0=l0(active),
            dead_fraction=dead_fraction(active),
            fit_seconds=seconds,
            estimator=estimator,
            code_threshold=code_threshold,
            firing_frequency=_active_per_latent(active) / X.shape[0],
        )
        if problem.features is not None:
            n_anchors = getattr(estimator, "n_anchors_", 0)
            true, atoms = problem.features[n_anchors:], to_numpy(estimator.components_)[n_anchors:]
            result.gt_recovery = float(gt_recovery(true, atoms, threshold=GT_THRESHOLD))
            result.mean_max_cosine = float(mean_max_cosine(true, atoms))
        if problem.codes is not None:
            result.mcc_in = float(mcc(problem.codes, to_numpy(codes)))
        if problem.X_ood is not None:
            result.mcc_out = float(mcc(problem.codes_ood, to_numpy(estimator.transform(problem.X_ood))))
    except Exception as exc:
        return Result(name, fit_seconds=seconds, error=f"measuring: {type(exc).__name__}: {exc}", **failed)
    return result


# ------------------------------------------------------------------- printing
_COLUMNS = (
    # header, width, how a Result is shown
    ("method", 14, lambda r: r.method),
    ("expl. var.", 11, lambda r: _number(r.explained_variance, ".3f")),
    ("L0", 8, lambda r: _number(r.l0, ".1f") + _threshold_mark(r)),
    ("dead frac.", 11, lambda r: _number(r.dead_fraction, ".3f") + _threshold_mark(r)),
    (f"GT recov.@{GT_THRESHOLD:g}", 16, lambda r: "n/a" if r.gt_recovery is None else _number(r.gt_recovery, ".3f")),
    ("M_IP", 7, lambda r: _number(r.mean_max_cosine, ".3f")),
    ("MCC in", 8, lambda r: _number(r.mcc_in, ".3f")),
    ("MCC OOD", 8, lambda r: _number(r.mcc_out, ".3f")),
    ("fit s", 7, lambda r: _number(r.fit_seconds, ".1f")),
)
#: Columns left out of a table when no row has a value for them.
_OPTIONAL = {"M_IP": "mean_max_cosine", "MCC in": "mcc_in", "MCC OOD": "mcc_out"}


def _number(value, spec):
    return "nan" if value is None or not math.isfinite(value) else format(value, spec)


def _threshold_mark(result):
    return "" if result.code_threshold is None else "*"


def footnotes(problem: Problem, results: list[Result]) -> list[str]:
    """The notes printed under a table.

    Thresholded codes, the dead fraction an overcomplete dictionary expects, and the
    methods whose fit or measurement raised a ``ConvergenceWarning``.
    """
    notes = []
    thresholds = sorted({r.code_threshold for r in results if r.code_threshold is not None})
    for threshold in thresholds:
        methods = ", ".join(r.method for r in results if r.code_threshold == threshold)
        notes.append(
            f"* {methods}: codes are never exactly zero (softplus), so L0 and dead fraction count "
            f"|z_ij| > {threshold:g} * max_j |z_ij| per row; an L0 near n_components means dense codes, "
            "and their explained variance is not at the sparsity of the other rows."
        )
    n_components = problem.fit_params.get("n_components")
    if problem.features is not None and n_components is not None and n_components > len(problem.features):
        n_true = len(problem.features)
        notes.append(
            f"Dead fraction: n_components={n_components} exceeds the {n_true} true features, so a dictionary "
            f"that finds each feature once leaves up to 1 - {n_true}/{n_components} = "
            f"{1 - n_true / n_components:.3f} of its latents dead (or duplicating a feature); "
            "a dead fraction up to that is expected, not a failure."
        )
    unconverged = [r.method for r in results if r.convergence_warnings]
    if unconverged:
        notes.append(
            f"Budget ran out before tol was met (ConvergenceWarning) for {', '.join(unconverged)}: "
            "their figures are at these budgets, not at convergence."
        )
    return notes


def format_table(problem: Problem, results: list[Result]) -> str:
    """A fixed-width text table, one row per method; errors are listed under it."""
    columns = [
        column for column in _COLUMNS
        if column[0] not in _OPTIONAL or any(getattr(r, _OPTIONAL[column[0]]) is not None for r in results)
    ]
    header = "".join(
        title.ljust(width) if i == 0 else title.rjust(width) for i, (title, width, _) in enumerate(columns)
    )
    rule = "-" * len(header)
    lines = [f"{problem.name}: {problem.description}", rule, header, rule]
    for result in results:
        cells = [show(result) for _, _, show in columns]
        lines.append(
            "".join(
                cell.ljust(width) if i == 0 else cell.rjust(width)
                for i, (cell, (_, width, _)) in enumerate(zip(cells, columns))
            )
        )
    lines.append(rule)
    for note in footnotes(problem, results):
        lines.append(textwrap.fill(note, width=max(len(rule), 72), subsequent_indent="  "))
    for result in results:
        if result.error is not None:
            lines.append(f"  {result.method} failed: {result.error}")
    return "\n".join(lines)


# ------------------------------------------------------------------- plotting
#: For an image-shaped problem: atoms drawn, latents whose top-activating samples are drawn, samples per latent.
ATOMS_SHOWN, TOP_LATENTS, TOP_SAMPLES = 64, 6, 8
#: Explained variance below this is clipped in the training-curve panel (the first epochs of an L1/L0 SAE
#: can sit far below 0; clipping keeps the end of every curve readable).
EV_FLOOR = -0.25


def write_plots(reports: list[tuple[Problem, list[Result]]], output_dir: Path) -> list[Path] | None:
    """The report's figures, drawn by :mod:`skdict.plotting`; returns the paths written.

    - ``training_curves.png``: one block per problem, one panel per ``history_`` key
      (:func:`~skdict.plotting.plot_training_curves`), a line for every method whose history
      has the key; methods without a training history are named under the block;
    - ``<problem>_feature_density.png``: log10 firing frequency of every fitted method's
      latents on the training data (:func:`~skdict.plotting.plot_feature_density`);
    - for an image-shaped problem, its first method's atoms with their firing frequencies
      (``<problem>_<method>_atoms.png``, :func:`~skdict.plotting.plot_atoms`) and the
      top-activating samples of its most used latents (``<problem>_<method>_top_activating.png``,
      :func:`~skdict.plotting.plot_top_activating`).

    Returns ``None`` when matplotlib is not installed.
    """
    from skdict.plotting._matplotlib import matplotlib_installed

    if not matplotlib_installed():
        return None
    output_dir.mkdir(parents=True, exist_ok=True)
    figures = {"training_curves.png": training_curves_figure(reports)}
    for problem, results in reports:
        fitted = [r for r in results if r.estimator is not None]
        if not fitted:
            continue
        figures[f"{problem.name}_feature_density.png"] = feature_density_figure(problem, fitted)
        if problem.atom_shape is not None:
            figures.update(_image_figures(problem, fitted[0]))
    paths = []
    for name, fig in figures.items():
        paths.append(output_dir / name)
        fig.savefig(paths[-1], dpi=100)
    return paths


def _has_history(estimator):
    """Whether a fitted estimator recorded a training history (a ``history_`` with at least one entry)."""
    history = getattr(estimator, "history_", None)
    return isinstance(history, dict) and any(len(values) for values in history.values())


def training_curves_figure(reports):
    """One block of :func:`~skdict.plotting.plot_training_curves` panels per problem, in one Figure.

    Every method whose ``history_`` records a key has a line in that key's panel; the methods
    with no training history (a fixed dictionary, a failed fit) are named under their block.
    """
    from skdict._history import KEY_LABELS
    from skdict.plotting import plot_training_curves
    from skdict.plotting._matplotlib import figure_class

    fig = figure_class()(figsize=(11.0, 7.6 * len(reports)), layout="constrained")
    for block, (problem, results) in zip(fig.subfigures(len(reports), 1, squeeze=False)[:, 0], reports):
        trained = {r.method: r.estimator for r in results if _has_history(r.estimator)}
        plot_training_curves(trained, fig=block)
        block.suptitle(f"{problem.name}: training history of {len(trained)} of {len(results)} methods")
        untrained = [r.method + (" (fit failed)" if r.estimator is None else "") for r in results if r.method not in trained]
        if untrained:
            block.supxlabel("no training history: " + ", ".join(untrained), fontsize="small")
        for ax in block.axes:
            if ax.get_title() == KEY_LABELS["explained_variance"]:
                _clip_explained_variance(ax)
    return fig


def _clip_explained_variance(ax):
    """Show explained variance from ``max(lowest, EV_FLOOR)`` to 1 (stated in the y label when clipped)."""
    values = [float(v) for line in ax.lines for v in line.get_ydata() if math.isfinite(float(v))]
    if not values:
        return
    lowest = min(values)
    ax.set_ylim(max(lowest, EV_FLOOR) - 0.02, 1.02)
    if lowest < EV_FLOOR:
        ax.set_ylabel(f"clipped at {EV_FLOOR:g}", fontsize="small")


def feature_density_figure(problem, fitted):
    """A :func:`~skdict.plotting.plot_feature_density` panel per fitted method, from the report's own codes."""
    from skdict.plotting import plot_feature_density
    from skdict.plotting._matplotlib import figure_class

    n_cols = min(3, len(fitted))
    n_rows = math.ceil(len(fitted) / n_cols)
    fig = figure_class()(figsize=(5.2 * n_cols, 3.6 * n_rows + 0.5), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    for ax, result in zip(axes, fitted):
        plot_feature_density(frequencies=result.firing_frequency, ax=ax)
        ax.set_title(f"{result.method}{_threshold_mark(result)}: {ax.get_title().split(': ', 1)[-1]}", fontsize="small")
    for ax in axes[len(fitted):]:
        ax.set_axis_off()
    fig.suptitle(f"{problem.name}: feature density (log10 fraction of training samples each latent fires on)")
    if any(r.code_threshold is not None for r in fitted):
        fig.supxlabel("* codes counted above the table's relative threshold (never exactly zero)", fontsize="small")
    return fig


def _image_figures(problem, result):
    """``{file name: Figure}``: the method's atoms and the top-activating samples of its most used latents."""
    from skdict.plotting import plot_atoms, plot_top_activating

    stem = f"{problem.name}_{result.method}"
    atoms = plot_atoms(result.estimator, image_shape=problem.atom_shape, X=problem.X, n_atoms=ATOMS_SHOWN)
    most_used = np.argsort(-result.firing_frequency, kind="stable")[:TOP_LATENTS]
    most_used = most_used[result.firing_frequency[most_used] > 0]
    figures = {f"{stem}_atoms.png": atoms}
    if most_used.size:
        figures[f"{stem}_top_activating.png"] = plot_top_activating(
            result.estimator, problem.X, image_shape=problem.atom_shape, latents=most_used, n=TOP_SAMPLES
        )
    return figures


# ------------------------------------------------------------------------ run
def run_report(config: RunConfig, methods: list[str] | None = None, *, log=None) -> list[tuple[Problem, list[Result]]]:
    """Fit every selected method on every benchmark; returns ``(problem, results)`` per benchmark.

    ``methods`` restricts the fits to those names (``None``: all). ``log`` is
    called with a short progress line before each fit.
    """
    reports = []
    for benchmark in BENCHMARKS:
        chosen = [(n, f) for n, f in benchmark.methods if methods is None or n in methods]
        if not chosen:
            continue
        problem = benchmark.load(config)
        results = []
        for name, factory in chosen:
            if log is not None:
                log(f"fitting {name} on {problem.name} ...")
            threshold = getattr(factory, "code_threshold", None)
            results.append(evaluate(name, factory(problem, config), problem, code_threshold=threshold))
        reports.append((problem, results))
    return reports
