"""Feature absorption of TopK, BatchTopK and Matryoshka SAEs on hierarchical features (equal k, width, budget).

Data: :func:`skdict.datasets.make_hierarchical_features` (parents with exclusive children; a child
fires only with its parent). Each SAE has the same width, the same ``k`` and the same number of
Adam steps; the table gives the median over seeds of :func:`skdict.metrics.absorption_score`
(lower is better), explained variance, inference L0, ground-truth recovery (|cos| > 0.95) and the mean
best |cos| (M_IP) of the parent and of the child features.

    python benchmarks/matryoshka_absorption.py            # 3 seeds, about 4 minutes on 2 busy cores
    python benchmarks/matryoshka_absorption.py --quick    # 1 seed, smaller data
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from skdict import BatchTopKSAE, MatryoshkaSAE, TopKSAE
from skdict.datasets import make_hierarchical_features
from skdict.metrics import absorption_score, explained_variance, gt_recovery, mean_max_cosine


def models(n_components, k, n_parents, seed, max_steps):
    """The three SAEs at the same width, k and budget; Matryoshka's first prefix holds as many latents as parents."""
    common = dict(n_components=n_components, k=k, max_steps=max_steps, early_stopping=False, random_state=seed)
    return {
        "TopKSAE": TopKSAE(**common),
        "BatchTopKSAE": BatchTopKSAE(**common),
        "MatryoshkaSAE": MatryoshkaSAE(matryoshka_widths=[n_parents, n_components], **common),
        "MatryoshkaSAE (default widths)": MatryoshkaSAE(**common),
    }


def evaluate(model, data):
    codes = model.transform(data.X)
    return {
        "absorption": absorption_score(data.codes, codes, data.features, model.components_, data.parent_of),
        "EV": explained_variance(data.X, model.predict(data.X)),
        "L0": float((codes != 0).sum(axis=1).mean()),
        "GT recovery": gt_recovery(data.features, model.components_),
        "M_IP parents": mean_max_cosine(data.features[data.parents], model.components_),
        "M_IP children": mean_max_cosine(data.features[data.children.ravel()], model.components_),
    }


def run(n_samples, n_parents, children, n_dims, n_components, k, max_steps, seeds):
    results = {}
    for seed in seeds:
        data = make_hierarchical_features(
            n_samples, n_parents, children, n_dims, parent_rate=0.15, child_rate=0.8, random_state=seed
        )
        for name, model in models(n_components, k, n_parents, seed, max_steps).items():
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(data.X)
            row = evaluate(model, data)
            row["fit (s)"] = time.perf_counter() - start
            results.setdefault(name, []).append(row)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, fewer samples")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    n_samples, seeds = (4000, [0]) if args.quick else (20000, list(range(args.seeds)))
    setting = dict(n_samples=n_samples, n_parents=8, children=4, n_dims=64, n_components=40, k=2, max_steps=2000)
    print(f"make_hierarchical_features: {setting}, parent_rate=0.15, child_rate=0.8; seeds {seeds}; medians")
    results = run(**setting, seeds=seeds)
    columns = ["absorption", "EV", "L0", "GT recovery", "M_IP parents", "M_IP children", "fit (s)"]
    print(f"{'model':32s}" + "".join(f"{c:>14s}" for c in columns))
    for name, rows in results.items():
        medians = [float(np.median([r[c] for r in rows])) for c in columns]
        print(f"{name:32s}" + "".join(f"{v:14.3f}" for v in medians))


if __name__ == "__main__":
    main()
