"""GatedSAE against ReLUSAE on the Linear Representation Bench: reconstruction at matched sparsity.

The Gated SAE paper (Rajamanoharan et al., 2024) claims a better sparsity / fidelity
frontier than the L1 (ReLU) SAE: at the same L0, a lower reconstruction error, because the
gate decides which latents fire and the L1 penalty no longer shrinks the magnitudes.
This script sweeps ``alpha`` for both architectures (same data, width, budget, seed) and
prints, per alpha, the mean L0 and explained variance of ``transform`` on held-out rows,
then each Gated point against the ReLU frontier interpolated (in log L0) at the same L0,
and ground-truth recovery (the share of true features matched by an atom with |cos| > 0.95).

Run::

    PYTHONPATH=. python benchmarks/gated_vs_relu.py            # 128 features in 96 dims, 6000 rows
    PYTHONPATH=. python benchmarks/gated_vs_relu.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from skdict import GatedSAE, ReLUSAE
from skdict.datasets import make_linear_representation_bench

ALPHAS = (0.02, 0.05, 0.1, 0.2, 0.4)


def fit_point(cls, alpha, X_train, X_test, features, args):
    """``(L0, EV, recovery, seconds)`` of one model."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = cls(
            args.width, alpha=alpha, max_iter=args.epochs, batch_size=128, learning_rate=4e-3, random_state=args.seed
        ).fit(X_train)
    seconds = time.perf_counter() - start
    codes = model.transform(X_test)
    cosines = np.abs(features @ model.components_.T).max(axis=1)
    return float((codes != 0).sum(axis=1).mean()), model.score(X_test), float(np.mean(cosines > 0.95)), seconds


def frontier_at(l0, points):
    """The ReLU frontier's explained variance at ``l0``, interpolated in log L0 (None outside its range)."""
    points = sorted(points)
    xs = np.log([p[0] for p in points])
    if not xs[0] <= np.log(l0) <= xs[-1]:
        return None
    return float(np.interp(np.log(l0), xs, [p[1] for p in points]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data, few epochs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n_samples, n_features, n_dims, args.epochs = (2000, 32, 28, 10) if args.quick else (6000, 128, 96, 20)
    args.width = 4 * n_features
    X, features, _ = make_linear_representation_bench(n_samples + 1000, n_features, n_dims, random_state=args.seed)
    X = np.asarray(X, dtype=np.float32)
    X_train, X_test = X[:n_samples], X[n_samples:]
    print(f"LRB: {n_features} features in {n_dims} dims, {n_samples} training rows (1000 held out); "
          f"width {args.width}, {args.epochs} epochs, batch 128, lr 4e-3, seed {args.seed}")
    results = {}
    for cls in (ReLUSAE, GatedSAE):
        for alpha in ALPHAS:
            l0, ev, recovery, seconds = results[cls.__name__, alpha] = fit_point(cls, alpha, X_train, X_test, features, args)
            print(f"{cls.__name__:9s} alpha {alpha:5.2f}: L0 {l0:6.2f}  EV {ev:.4f}  recovery {recovery:.3f}  ({seconds:.1f} s)",
                  flush=True)
    relu = [results["ReLUSAE", a][:2] for a in ALPHAS]
    print("\nGated against the ReLU frontier at the same L0 (held-out EV):")
    for alpha in ALPHAS:
        l0, ev = results["GatedSAE", alpha][:2]
        reference = frontier_at(l0, relu)
        versus = "outside ReLU's L0 range" if reference is None else f"ReLU {reference:.4f}, gain {ev - reference:+.4f}"
        print(f"  gated alpha {alpha:5.2f}: L0 {l0:6.2f}  EV {ev:.4f}  {versus}")


if __name__ == "__main__":
    main()
