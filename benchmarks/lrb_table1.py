"""Table 1 of seed 000 (feature anchoring) on the Linear Representation Bench, at the paper's scale.

The paper's setting: n = 1000 unit features in d = 768 dimensions with pairwise
|cos| <= 0.1, N = 100,000 samples with sparsity 0.99 (about 10 active features
per sample), SAEs of width 16,000, and feature anchoring (skdict.AnchoredSAE) of
100 features with lambda = 0.1. Every row is fitted plain and anchored and scored
on the features that are *not* anchored:

* M_GT (``gt_recovery``): fraction of those true features f_i with
  max_j |cos(f_i, d_j)| > 0.95 over the learned atoms d_j (``components_``);
* M_IP (``mean_max_cosine``): the mean of that best |cos|.

Rows: every SAE skdict has (TopK, BatchTopK, ReLU, JumpReLU, MP, and Matryoshka /
Gated when skdict has them), then the paper's two variants on the bench's paired
data ``X = C F``, ``Y = C G`` (``make_linear_representation_bench(target_dims=d)``:
the same codes C over a second, independent feature set G):

* transcoder: a TopK SAE fitted as ``fit(X, Y)`` (code from X, reconstruct Y),
  scored on its decoder atoms against G; anchors are the pairs (F[:a], G[:a]);
* crosscoder: a TopK SAE over the two "layers" stacked, ``[X, Y]`` (what
  ``skdict.sae.crosscoder.stack_layers`` builds), scored against the stacked
  features [F, G]; anchors are [F, G][:a].

For the L1 / L0 penalty rows (ReLU, JumpReLU) the script adds the diagnostics of
seed 001 on a subsample (``stationarity_gaps``: the lasso code conditions and
the atom condition, which holds for any decoder trained on the squared error)
and two surgeries on the fitted decoder, scored by the recovery of the atoms they
produce: a support refit (least-squares codes on the SAE's own support, then
the least-squares dictionary for those codes) and warm-started DL-FISTA
(``FISTADictionaryLearning(dict_init=components_)``).

``--scale s`` shrinks n, d, N, the width, the number of anchors and k together
(s = 1 is the paper's setting; k = round(16 s), at least 2, keeping k about
1.6x the mean number of active features).

Usage::

    PYTHONPATH=. python benchmarks/lrb_table1.py --scale 0.25 --json results/lrb_table1_s025.json
    PYTHONPATH=. python benchmarks/lrb_table1.py --scale 1 --models TopKSAE --json results/lrb_table1_s1.json
    PYTHONPATH=. python benchmarks/lrb_table1.py --scale 1 --recipe batch1024 --models TopKSAE
    PYTHONPATH=. python benchmarks/lrb_table1.py --from-json results/lrb_table1_s100_*.json   # one table of saved runs

``--recipe default`` trains every SAE with skdict's defaults (batch 256, learning rate
1e-3, early stopping, at most 20,000 steps); ``--recipe batch1024`` is the issue's run
(batch 1024, 10 epochs: 980 Adam steps at the paper's scale). ``--batch-size``,
``--max-steps``, ``--max-iter`` and ``--learning-rate`` override either.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

import skdict
from skdict import AnchoredSAE, FISTADictionaryLearning
from skdict.datasets import make_linear_representation_bench
from skdict.inspection import stationarity_gaps, support_refit
from skdict.metrics import dead_fraction, explained_variance, gt_recovery, l0, mean_max_cosine
from skdict.ops.lstsq_dictionary import code_statistics, least_squares_dictionary
from skdict.sae._l0_target import REACHED_TOLERANCE
from skdict.sae.crosscoder import stack_layers

#: The paper's setting at scale 1.
PAPER_SETTING = {"n_features": 1000, "n_dims": 768, "n_samples": 100_000, "width": 16_000, "n_anchors": 100, "k": 16}
SPARSITY = 0.99
MAX_COHERENCE = 0.1
ANCHOR_WEIGHT = 0.1
GT_THRESHOLD = 0.95

#: Seed 000, Table 1: (M_GT plain, M_GT anchored, M_IP plain, M_IP anchored), percent and cosine; None: not given.
PAPER_TABLE = {
    "TopKSAE": (84.90, 87.63, 0.983, 0.986),
    "BatchTopKSAE": (84.80, 89.38, None, None),
    "MatryoshkaSAE": (83.70, 87.32, None, None),
    "ReLUSAE": (0.0, 0.0, 0.205, 0.246),
    "JumpReLUSAE": (0.0, 0.0, 0.237, 0.333),
    "Transcoder": (23.60, 25.05, None, None),
    "Crosscoder": (56.42, 57.71, None, None),
}

#: Architectures in table order; the ones skdict does not have yet are skipped.
ARCHITECTURES = ("TopKSAE", "BatchTopKSAE", "MatryoshkaSAE", "GatedSAE", "ReLUSAE", "JumpReLUSAE", "MPSAE")
VARIANTS = ("Transcoder", "Crosscoder")
#: The penalty SAEs, which get the stationarity diagnostics and the surgeries.
PENALTY_ROWS = ("ReLUSAE", "JumpReLUSAE")

RECIPES = {
    "default": {},
    "batch1024": {"batch_size": 1024, "max_iter": 10},
}


# ------------------------------------------------------------------------ setting
def scaled_setting(scale):
    """The paper's sizes times ``scale`` (k and the anchors too), each at least a small floor."""
    if not 0 < scale <= 1:
        raise ValueError(f"--scale must be in (0, 1] (1 is the paper's setting), got {scale}.")
    s = PAPER_SETTING
    return {
        "n_features": max(8, round(s["n_features"] * scale)),
        "n_dims": max(8, round(s["n_dims"] * scale)),
        "n_samples": max(500, round(s["n_samples"] * scale)),
        "width": max(16, round(s["width"] * scale)),
        "n_anchors": max(1, round(s["n_anchors"] * scale)),
        "k": max(2, round(s["k"] * scale)),
    }


def make_bench(setting, seed):
    """``(X, Y, F, G)`` float32 data and float64 features of the bench (Y, G: the paired target)."""
    X, Y, F, G, _ = make_linear_representation_bench(
        setting["n_samples"], setting["n_features"], setting["n_dims"], sparsity=SPARSITY,
        max_coherence=MAX_COHERENCE, target_dims=setting["n_dims"], random_state=seed,
    )
    return X.astype(np.float32), Y.astype(np.float32), F, G


def available_rows(models=None):
    """The row names to run: the requested ones that skdict has (variants always exist)."""
    rows = [name for name in ARCHITECTURES if hasattr(skdict, name)] + list(VARIANTS)
    if models:
        unknown = sorted(set(models) - set(ARCHITECTURES) - set(VARIANTS))
        if unknown:
            raise ValueError(f"--models: unknown {unknown}; choose from {list(ARCHITECTURES + VARIANTS)}.")
        rows = [name for name in rows if name in models]
    return rows


def make_sae(name, setting, training, seed, target_l0=None):
    """An unfitted SAE of the row's architecture (TopK for the transcoder and crosscoder rows).

    ``target_l0`` goes to the architectures that take one (the penalty SAEs and GatedSAE).
    """
    cls = getattr(skdict, "TopKSAE" if name in VARIANTS else name)
    names = cls().get_params()
    params = {"n_components": setting["width"], "random_state": seed, **training}
    if "k" in names:
        params["k"] = setting["k"]
    if target_l0 is not None and "target_l0" in names:
        params["target_l0"] = target_l0
    return cls(**params)


# ------------------------------------------------------------------------ one row
def row_problem(name, X, Y, F, G, n_anchors):
    """``(fit_X, fit_Y, target, true_features, anchors)`` of a row: what it fits, reconstructs and is scored on."""
    if name == "Transcoder":
        return X, Y, Y, G, (F[:n_anchors], G[:n_anchors])
    if name == "Crosscoder":
        stacked, _ = stack_layers([X, Y])
        features = np.hstack([F, G])
        return stacked, None, stacked, features, features[:n_anchors]
    return X, None, X, F, F[:n_anchors]


def fit_timed(model, X, Y):
    """Fit, returning ``(fitted, seconds, messages)``: the ConvergenceWarnings' texts, recorded, not raised."""
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(X, Y)
    messages = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    return model, time.perf_counter() - start, messages


def off_target(record):
    """Whether a row with a ``target_l0`` ended further from it than the estimator's own tolerance."""
    target = record.get("target_l0")
    return target is not None and abs(record["l0"] / target - 1.0) > REACHED_TOLERANCE


def score(model, fit_X, target, true_features, n_anchors):
    """M_GT, M_IP (non-anchored features, all atoms), EV on the target, L0 and dead fraction of the codes."""
    codes = model.transform(fit_X)
    free = true_features[n_anchors:]
    atoms = np.asarray(model.components_, dtype=np.float64)
    return {
        "gt_recovery": 100 * gt_recovery(free, atoms, threshold=GT_THRESHOLD),
        "m_ip": mean_max_cosine(free, atoms),
        "explained_variance": explained_variance(target, model.inverse_transform(codes)),
        "l0": l0(codes),
        "dead_fraction": dead_fraction(codes),
    }


def run_row(name, anchored, bench, setting, training, seed, target_l0=None):
    """Fit one row (plain or anchored) and return its record, the fitted SAE and the data it saw."""
    X, Y, F, G = bench
    n_anchors = setting["n_anchors"]
    fit_X, fit_Y, target, features, anchors = row_problem(name, X, Y, F, G, n_anchors)
    sae = make_sae(name, setting, training, seed, target_l0)
    model = AnchoredSAE(sae, anchors=anchors, anchor_weight=ANCHOR_WEIGHT) if anchored else sae
    model, seconds, messages = fit_timed(model, fit_X, fit_Y)
    spent = any("target_l0" not in message for message in messages)
    inner = model.estimator_ if anchored else model
    record = {"row": name, "anchored": anchored, **score(model, fit_X, target, features, n_anchors),
              "steps": int(inner.n_steps_),
              "n_iter": int(inner.n_iter_), "budget_spent": spent, "fit_seconds": seconds,
              "warnings": messages}
    if getattr(inner, "target_l0", None) is not None:
        record.update(target_l0=inner.target_l0, alpha_reached=float(inner.alpha_))
    return record, inner, fit_X, features


# ------------------------------------------------------------------------ diagnostics of the penalty rows
def recovery_of(atoms, features, n_anchors):
    """M_GT (percent) and M_IP of ``atoms`` on the non-anchored ``features``."""
    free = features[n_anchors:]
    return 100 * gt_recovery(free, atoms, threshold=GT_THRESHOLD), mean_max_cosine(free, atoms)


def support_refit_atoms(sae, X):
    """The least-squares dictionary for the SAE's support-refit codes: the atoms the support alone implies."""
    codes = np.asarray(support_refit(sae, X), dtype=np.float64)
    centred = np.asarray(X, dtype=np.float64) - np.asarray(sae.decoder_bias_, dtype=np.float64)
    A, B = code_statistics(codes, centred)
    return least_squares_dictionary(A, B, ridge=1e-6)


def warm_dl_fista_atoms(sae, X, alpha, max_iter, seed):
    """Atoms of FISTA dictionary learning (non-negative codes) started from the SAE's decoder."""
    centred = np.asarray(X, dtype=np.float64) - np.asarray(sae.decoder_bias_, dtype=np.float64)
    dl = FISTADictionaryLearning(
        n_components=sae.components_.shape[0], alpha=alpha, positive_code=True, max_iter=max_iter,
        dict_init=np.asarray(sae.components_, dtype=np.float64), random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dl.fit(centred)
    return dl.components_


def penalty_diagnostics(sae, X, features, n_anchors, *, n_rows, refit_rows, dl_max_iter, seed):
    """Seed 001's stationarity gaps and the two surgeries' recovery on ``n_rows`` samples of ``X``.

    The support refit solves one least-squares problem per sample on its support (cubic in the
    ReLU SAE's L0), so it reads only the first ``refit_rows`` of the subsample. Both surgeries fit
    one atom per latent that fires in their rows: with fewer rows than such latents (``refit_rows``
    and ``n_rows`` against ``refit_active_latents`` / ``active_latents``, recorded) the dictionary
    they fit is underdetermined and their recovery says nothing about the SAE's; the table marks it.
    """
    rows = np.random.RandomState(seed).permutation(X.shape[0])[:n_rows]
    sample = X[rows]
    codes = np.asarray(sae.transform(sample), dtype=np.float64)
    # The coefficient the model was trained at (steered under target_l0); JumpReLU's L0 weight may end
    # negative there (a reward per active latent), and the lasso conditions then use the starting alpha.
    alpha = float(getattr(sae, "alpha_", sae.alpha))
    alpha = alpha if alpha > 0 else float(sae.alpha)
    gaps = stationarity_gaps(np.asarray(sample, dtype=np.float64), np.asarray(sae.components_, dtype=np.float64),
                             codes, alpha, offset=np.asarray(sae.decoder_bias_, dtype=np.float64))
    out = {"diagnostic_alpha": alpha, "code_gap": gaps.code_gap, "off_support_violation": gaps.off_support_violation,
           "atom_gap": gaps.atom_gap, "diagnostic_rows": int(sample.shape[0]),
           "active_latents": int(np.count_nonzero(np.any(codes != 0, axis=0))),
           "refit_rows": int(min(refit_rows, sample.shape[0])),
           "refit_active_latents": int(np.count_nonzero(np.any(codes[:refit_rows] != 0, axis=0)))}
    start = time.perf_counter()
    out["refit_gt_recovery"], out["refit_m_ip"] = recovery_of(
        support_refit_atoms(sae, sample[:refit_rows]), features, n_anchors)
    out["refit_seconds"] = time.perf_counter() - start
    start = time.perf_counter()
    atoms = warm_dl_fista_atoms(sae, sample, alpha, dl_max_iter, seed)
    out["dl_fista_gt_recovery"], out["dl_fista_m_ip"] = recovery_of(atoms, features, n_anchors)
    out["dl_fista_seconds"] = time.perf_counter() - start
    return out


# ------------------------------------------------------------------------ table
def _cell(value, fmt):
    return "-" if value is None else format(value, fmt)


def paper_cells(record):
    """The paper's M_GT and M_IP of the row (plain or anchored), as printed."""
    paper = PAPER_TABLE.get(record["row"])
    if paper is None:
        return "-", "-"
    index = 1 if record["anchored"] else 0
    return _cell(paper[index], ".2f"), _cell(paper[2 + index], ".3f")


def format_table(records):
    """The table as text: skdict's figures beside the paper's."""
    header = (f"{'row':<14}{'anch.':<6}{'M_GT %':>8}{'paper':>8}{'M_IP':>7}{'paper':>7}{'EV':>8}{'L0':>7}"
              f"{'dead':>6}{'steps':>7}{'fit s':>8}")
    lines = [header, "-" * len(header)]
    for r in records:
        gt_paper, ip_paper = paper_cells(r)
        lines.append(
            f"{r['row']:<14}{'yes' if r['anchored'] else 'no':<6}{r['gt_recovery']:>8.2f}{gt_paper:>8}"
            f"{r['m_ip']:>7.3f}{ip_paper:>7}{r['explained_variance']:>8.3f}{r['l0']:>7.1f}"
            f"{r['dead_fraction']:>6.2f}{r['steps']:>7d}{r['fit_seconds']:>8.1f}"
            + ("  (budget spent)" if r["budget_spent"] else "")
            + (f"  (target L0 {r['target_l0']:g} missed)" if off_target(r) else "")
        )
        if "code_gap" in r:
            lines.append(
                f"{'':<14}stationarity: code gap {r['code_gap']:.3g} alpha, off-support {r['off_support_violation']:.3g}"
                f" alpha, atom gap {r['atom_gap']:.3g}; support refit M_GT {r['refit_gt_recovery']:.2f}%"
                f" (M_IP {r['refit_m_ip']:.3f}); warm DL-FISTA M_GT {r['dl_fista_gt_recovery']:.2f}%"
                f" (M_IP {r['dl_fista_m_ip']:.3f})"
            )
            if "refit_rows" in r and (r["refit_rows"] < r["refit_active_latents"]
                                      or r["diagnostic_rows"] < r["active_latents"]):
                lines.append(
                    f"{'':<14}surgeries underdetermined: support refit {r['refit_rows']} rows for "
                    f"{r['refit_active_latents']} active latents, DL-FISTA {r['diagnostic_rows']} rows for "
                    f"{r['active_latents']} (raise --refit-rows / --diagnostic-rows)"
                )
    return "\n".join(lines)


def write_json(path, header, records):
    """Rewrite the results file (called after every row, so a killed run keeps what finished)."""
    if path is None:
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump({**header, "rows": records}, f, indent=1)


def run(scale=1.0, *, models=None, recipe="default", overrides=None, seed=0, json_path=None,
        diagnostic_rows=1000, refit_rows=500, dl_max_iter=5, plain_only=False, anchored_only=False, target_l0=None,
        verbose=True):
    """Build the bench, fit every row plain and anchored, print and return ``(header, records)``."""
    setting = scaled_setting(scale)
    training = {**RECIPES[recipe], **(overrides or {})}
    start = time.perf_counter()
    bench = make_bench(setting, seed)
    header = {"scale": scale, "setting": setting, "sparsity": SPARSITY, "max_coherence": MAX_COHERENCE,
              "anchor_weight": ANCHOR_WEIGHT, "recipe": recipe, "training": training, "target_l0": target_l0,
              "seed": seed,
              "bench_seconds": time.perf_counter() - start, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "skdict": getattr(skdict, "__version__", "?")}
    if verbose:
        print(f"bench {setting}, built in {header['bench_seconds']:.1f} s; training {training or 'defaults'}", flush=True)
    records = []
    for name in available_rows(models):
        for anchored in (False,) if plain_only else (True,) if anchored_only else (False, True):
            record, sae, fit_X, features = run_row(name, anchored, bench, setting, training, seed, target_l0)
            if name in PENALTY_ROWS and not anchored:
                record.update(penalty_diagnostics(sae, fit_X, features, setting["n_anchors"],
                                                  n_rows=min(diagnostic_rows, fit_X.shape[0]), refit_rows=refit_rows,
                                                  dl_max_iter=dl_max_iter, seed=seed))
            records.append(record)
            write_json(json_path, header, records)
            if verbose:
                print("\n".join(format_table([record]).splitlines()[2:]), flush=True)
    if verbose:
        print()
        print(format_table(records))
    return header, records


def print_saved(paths):
    """Print one table from the ``--json`` files of earlier runs (rows in table order), with each file's recipe."""
    order = {name: i for i, name in enumerate(ARCHITECTURES + VARIANTS)}
    records = []
    for path in paths:
        with open(path) as f:
            saved = json.load(f)
        extra = f", target_l0 {saved['target_l0']:g}" if saved.get("target_l0") is not None else ""
        print(f"{path}: scale {saved['scale']}, recipe {saved['recipe']} {saved['training']}{extra}, seed {saved['seed']}")
        records += saved["rows"]
    records.sort(key=lambda r: (order.get(r["row"], len(order)), r["anchored"]))
    print()
    print(format_table(records))
    return records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="shrink n, d, N, width, anchors, k (1: the paper's)")
    parser.add_argument("--models", nargs="*", help=f"rows to run, of {list(ARCHITECTURES + VARIANTS)}")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="default")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--max-iter", type=int, help="epochs")
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", dest="json_path", help="write the results here after every row")
    parser.add_argument("--plain-only", action="store_true", help="skip the anchored fits")
    parser.add_argument("--anchored-only", action="store_true", help="skip the plain fits")
    parser.add_argument("--diagnostic-rows", type=int, default=1000, help="samples for the ReLU/JumpReLU diagnostics")
    parser.add_argument("--refit-rows", type=int, default=500, help="of those, samples for the support refit")
    parser.add_argument("--dl-max-iter", type=int, default=5, help="epochs of the warm-started DL-FISTA surgery")
    parser.add_argument("--target-l0", type=float,
                        help="target L0 for the rows that take one (ReLU, JumpReLU, Gated); default: their alpha")
    parser.add_argument("--from-json", nargs="+", metavar="PATH",
                        help="fit nothing: print one table from the --json files of earlier runs")
    args = parser.parse_args(argv)
    if args.from_json:
        print_saved(args.from_json)
        return
    overrides = {key: value for key, value in (("batch_size", args.batch_size), ("max_steps", args.max_steps),
                                               ("max_iter", args.max_iter), ("learning_rate", args.learning_rate))
                 if value is not None}
    run(args.scale, models=args.models, recipe=args.recipe, overrides=overrides, seed=args.seed,
        json_path=args.json_path, diagnostic_rows=args.diagnostic_rows, refit_rows=args.refit_rows, dl_max_iter=args.dl_max_iter,
        plain_only=args.plain_only, anchored_only=args.anchored_only, target_l0=args.target_l0)


if __name__ == "__main__":
    main()
