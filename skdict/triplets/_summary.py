"""One line on triplet feedback for the ``python -m skdict`` report: exact and sampled recovery of Φ."""

from __future__ import annotations

import time

import numpy as np

from skdict.datasets import make_eigendecomposition_teaching_set, make_triplet_feedback
from skdict.metrics import feature_matrix_pcc
from skdict.triplets._cvxpy_solver import cvxpy_available
from skdict.triplets._estimator import TripletFeatureLearner


def triplet_summary_line(*, quick=False, seed=0):
    """Fit TripletFeatureLearner on two known feature matrices and describe the result in one line.

    * exact: the eigendecomposition teaching set of a rank-5 Φ with p = 16, solved by the
      SDP (skipped, and said so, when cvxpy is missing): relative Frobenius error;
    * sampled: p = 64 (32 with ``quick``), rank 8 (4), 3 p (p + 1) / 2 sampled sparse equalities,
      low-rank solver: PCC with the true Φ and the fit time.

    Returns
    -------
    line : str
    """
    rng = np.random.default_rng(seed)
    parts = []
    if cvxpy_available():
        p, r = 16, 5
        D = rng.standard_normal((r, p))
        Phi = D.T @ D
        T = make_eigendecomposition_teaching_set(Phi)
        est = TripletFeatureLearner(solver="cvxpy").fit(T)
        error = np.linalg.norm(est.feature_matrix_ - Phi / np.linalg.norm(Phi))
        parts.append(f"exact p={p} r={r} from {len(T)} equalities: rel. error {error:.1e} (cvxpy)")
    else:
        parts.append("exact recovery skipped (cvxpy missing: pip install skdict[exact])")
    p, r = (32, 4) if quick else (64, 8)
    D = rng.standard_normal((r, p))
    Phi = D.T @ D
    n = 3 * p * (p + 1) // 2
    T, y = make_triplet_feedback(Phi, n, kind="equality", sparsity=0.5, random_state=seed)
    start = time.perf_counter()
    est = TripletFeatureLearner(solver="lowrank", rank=r, random_state=seed + 1).fit(T, y)
    seconds = time.perf_counter() - start
    pcc = feature_matrix_pcc(Phi, est.feature_matrix_)
    parts.append(f"sampled p={p} r={r}, {n} sparse equalities: PCC {pcc:.4f} (lowrank, {seconds:.1f} s)")
    return "TripletFeatureLearner: " + "; ".join(parts)
