"""Sparse coding speed: skdict.sparse_encode against scikit-learn, at equal objective.

Lasso: scikit-learn's ``sparse_encode(algorithm="lasso_cd")`` (coordinate descent,
its default tolerance) and ``"lasso_lars"`` (exact LARS path) set the accuracy;
ours (FISTA; on per-sample working sets from 128 atoms, see
skdict.ops.working_set) runs with the loosest duality-gap tolerance from a ladder
whose objective is no worse than theirs (within 1e-7 relative), and the times are compared.
OMP: ours against ``sklearn.linear_model.orthogonal_mp`` (both its residual and
its Gram variant), which give the same codes.

Run (one BLAS thread and one skdict ops thread, so that both sides get the same hardware)::

    OPENBLAS_NUM_THREADS=1 SKDICT_NUM_THREADS=1 PYTHONPATH=. python benchmarks/sparse_encode.py
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np
import sklearn
from sklearn.decomposition import sparse_encode as sklearn_sparse_encode
from sklearn.linear_model import orthogonal_mp

from skdict import sparse_encode
from skdict.ops.fista import lasso_objective

#: Objectives within this relative difference count as equal.
EQUAL_OBJECTIVE = 1e-7
TOL_LADDER = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6, 3e-7, 1e-7, 1e-8, 1e-9, 1e-10)


def make_problem(n_samples, n_features, n_components, n_active, seed=0):
    """Unit atoms, signals with ``n_active`` Gaussian codes each, 5% noise."""
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n_components, n_features))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    codes = np.zeros((n_samples, n_components))
    for n in range(n_samples):
        codes[n, rng.choice(n_components, n_active, replace=False)] = rng.standard_normal(n_active)
    X = codes @ D
    X += 0.05 * np.linalg.norm(X, axis=1, keepdims=True) / np.sqrt(n_features) * rng.standard_normal(X.shape)
    return X, D


def best_time(function, repeats):
    """Smallest wall time over ``repeats`` runs, and the last result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def ours_at_objective(X, D, alpha, target, repeats):
    """Time of our FISTA at the loosest tolerance whose total objective is <= ``target``.

    ``target`` is the competitor's objective plus EQUAL_OBJECTIVE of it: differences below
    that are rounding, not accuracy.
    """
    target = target * (1 + EQUAL_OBJECTIVE)
    for tol in TOL_LADDER:
        codes = sparse_encode(X, D, alpha=alpha, tol=tol, max_iter=100_000)
        objective = lasso_objective(X, D, codes, alpha).sum()
        if objective <= target:
            seconds, _ = best_time(lambda: sparse_encode(X, D, alpha=alpha, tol=tol, max_iter=100_000), repeats)
            return seconds, objective, tol
    raise RuntimeError("no tolerance of the ladder reached the target objective")


def lasso_rows(X, D, alpha, repeats):
    optimum = lasso_objective(X, D, sparse_encode(X, D, alpha=alpha, tol=1e-12, max_iter=100_000), alpha).sum()
    default_s, codes = best_time(lambda: sparse_encode(X, D, alpha=alpha), repeats)
    default = lasso_objective(X, D, codes, alpha).sum()
    rows = [("fista at its default tol", default_s, None, f"objective/optimum - 1: ours {default / optimum - 1:.1e}")]
    for algorithm in ("lasso_cd", "lasso_lars"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs_s, codes = best_time(lambda: sklearn_sparse_encode(X, D, algorithm=algorithm, alpha=alpha), repeats)
        theirs = lasso_objective(X, D, codes, alpha).sum()
        ours_s, ours, tol = ours_at_objective(X, D, alpha, theirs, repeats)
        rows.append(
            (
                f"fista vs {algorithm}",
                ours_s,
                theirs_s,
                f"objective/optimum - 1: ours {ours / optimum - 1:.1e} (tol={tol:g}), theirs {theirs / optimum - 1:.1e}",
            )
        )
    return rows


def omp_rows(X, D, k, repeats):
    ours_s, ours = best_time(lambda: sparse_encode(X, D, algorithm="omp", n_nonzero_coefs=k), repeats)
    rows = []
    for precompute in (False, True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs_s, theirs = best_time(
                lambda: orthogonal_mp(D.T, X.T, n_nonzero_coefs=k, precompute=precompute).T, repeats
            )
        error = np.abs(ours - theirs).max() / np.abs(theirs).max()
        name = "gram" if precompute else "residual"
        rows.append((f"omp vs orthogonal_mp ({name})", ours_s, theirs_s, f"max relative code difference {error:.1e}"))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=2000)
    parser.add_argument("--n-features", type=int, default=64)
    parser.add_argument("--n-components", type=int, default=256)
    parser.add_argument("--n-active", type=int, default=8, help="true nonzeros per sample, and the OMP k")
    parser.add_argument("--alpha", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    X, D = make_problem(args.n_samples, args.n_features, args.n_components, args.n_active)
    print(
        f"X {X.shape}, dictionary {D.shape}, alpha={args.alpha}, k={args.n_active}; "
        f"numpy {np.__version__}, scikit-learn {sklearn.__version__}, {platform.processor() or platform.machine()}, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
        f"SKDICT_NUM_THREADS={os.environ.get('SKDICT_NUM_THREADS', 'unset')}, best of {args.repeats}"
    )
    rows = lasso_rows(X, D, args.alpha, args.repeats) + omp_rows(X, D, args.n_active, args.repeats)
    print(f"\n| {'comparison':<32} | {'ours (s)':>9} | {'sklearn (s)':>11} | {'speed-up':>8} | accuracy |")
    print(f"|{'-' * 34}|{'-' * 11}|{'-' * 13}|{'-' * 10}|----------|")
    for name, ours_s, theirs_s, note in rows:
        theirs = f"{theirs_s:11.3f}" if theirs_s is not None else f"{'-':>11}"
        ratio = f"{theirs_s / ours_s:7.1f}x" if theirs_s is not None else f"{'-':>8}"
        print(f"| {name:<32} | {ours_s:9.3f} | {theirs} | {ratio} | {note} |")


if __name__ == "__main__":
    main()
