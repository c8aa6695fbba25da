"""Dead-latent resampling against AuxK on the demo's Linear Representation Bench (issue 13).

The problem is the demo's synthetic one (``skdict._report.load_synthetic``):
``make_linear_representation_bench(6000, 128, 96, random_state=seed)`` in float32, a TopKSAE with
k=2 and 512 latents (4x the true features), 20 epochs at batch 128 and learning rate 4e-3 (early
stopping at its defaults). Four ways to treat dead latents:

- ``AuxK`` (the default: ``aux_coef=1/32``),
- ``none`` (``aux_coef=0``),
- ``resample`` (``aux_coef=0, resample_dead=True``),
- ``AuxK+resample`` (both),

at ``dead_after`` = 10,000 samples (the default: about 1.7 epochs here, so up to ~11 resamplings).
For each, over ``--seeds`` seeds, the median of: the dead fraction at the end of training
(``dead_fraction`` of the training clock), the latents resampled in all, the ground-truth recovery
``gt_recovery`` (|cos| > 0.95), ``M_IP`` (``mean_max_cosine``: mean over true features of the
best |cos| with a learned atom) and the explained variance on the training data.
``--encoder-scale`` repeats the resampling rows with another encoder scale than the recipe's 0.2;
``--max-iter`` shortens the budget (at 5 epochs the fits are still recovering features).

Usage::

    PYTHONPATH=. python benchmarks/resampling.py [--seeds 0 1 2] [--max-iter 20] [--encoder-scale 1.0] [--quick] [--json PATH]

About 2 minutes on a 2-core machine (12 fits); ``--quick`` trains 4 epochs on one seed (a smoke run).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

import skdict.sae._resampling as resampling
from skdict import TopKSAE
from skdict.datasets import make_linear_representation_bench
from skdict.metrics import gt_recovery, mean_max_cosine
from skdict.sae._training import dead_fraction

#: name: TopKSAE parameters of the variant.
VARIANTS = {
    "AuxK": {},
    "none": {"aux_coef": 0.0},
    "resample": {"aux_coef": 0.0, "resample_dead": True},
    "AuxK+resample": {"resample_dead": True},
}
#: The demo's settings (skdict._report: load_synthetic and TRAINING).
PROBLEM = {"n_samples": 6000, "n_features": 128, "n_dims": 96}
TRAINING = {"n_components": 512, "k": 2, "batch_size": 128, "learning_rate": 4e-3}


def run_one(X, features, params, seed, max_iter):
    """One fit: its metrics and time."""
    model = TopKSAE(**TRAINING, **params, max_iter=max_iter, random_state=seed)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    seconds = time.perf_counter() - start
    return {
        "dead_fraction": dead_fraction(model),
        "n_resampled": sum(model.history_.get("n_resampled", [0])),
        "gt_recovery": gt_recovery(features, model.components_),
        "M_IP": mean_max_cosine(features, model.components_),
        "explained_variance": model.score(X),
        "epochs": model.n_iter_,
        "seconds": seconds,
    }


def run(seeds, max_iter, encoder_scales):
    """``{row name: {metric: [value per seed]}}``."""
    rows = {}
    for seed in seeds:
        X, features, _ = make_linear_representation_bench(**PROBLEM, random_state=seed)
        X = np.asarray(X, dtype=np.float32)
        for scale in encoder_scales:
            resampling.ENCODER_SCALE = scale
            for name, params in VARIANTS.items():
                if scale != encoder_scales[0] and not params.get("resample_dead"):
                    continue  # the scale changes only the resampling rows
                row = name if scale == 0.2 else f"{name} (encoder x{scale:g})"
                result = run_one(X, features, params, seed, max_iter)
                print(f"seed {seed} {row:28s} " + " ".join(f"{k} {v:.4g}" for k, v in result.items()), flush=True)
                for key, value in result.items():
                    rows.setdefault(row, {}).setdefault(key, []).append(value)
    resampling.ENCODER_SCALE = 0.2
    return rows


def table(rows, n_seeds):
    """The markdown table of medians."""
    lines = [
        f"| dead latents (median of {n_seeds}) | dead fraction | resampled | gt_recovery | M_IP | EV | epochs | fit (s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, values in rows.items():
        med = {key: statistics.median(v) for key, v in values.items()}
        lines.append(
            f"| {name} | {med['dead_fraction']:.3f} | {med['n_resampled']:.0f} | {med['gt_recovery']:.3f} | "
            f"{med['M_IP']:.3f} | {med['explained_variance']:.3f} | {med['epochs']:.0f} | {med['seconds']:.1f} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--encoder-scale", type=float, nargs="*", default=[],
                        help="extra encoder scales for the resampling rows (the recipe's 0.2 always runs)")
    parser.add_argument("--max-iter", type=int, default=20, help="epochs (the demo's 20)")
    parser.add_argument("--quick", action="store_true", help="4 epochs, first seed only")
    parser.add_argument("--json", help="write the per-seed results here")
    args = parser.parse_args()
    seeds = args.seeds[:1] if args.quick else args.seeds
    rows = run(seeds, 4 if args.quick else args.max_iter, [0.2] + list(args.encoder_scale))
    print()
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"NumPy {np.__version__}")
    print(table(rows, len(seeds)))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"seeds": seeds, "rows": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
