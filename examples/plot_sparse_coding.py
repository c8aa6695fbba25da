"""
Sparse coding on a known dictionary: six algorithms, one trade-off
==================================================================

When the dictionary is known, :func:`skdict.sparse_encode` (and its transformer
face :class:`~skdict.SparseCoder`) finds the codes :math:`z` with
:math:`x \\approx z D`. Here the data are sparse combinations of 256 known
features in 64 dimensions (:func:`skdict.datasets.make_linear_representation_bench`)
plus a little noise, so that every algorithm can be judged twice: by how well
its codes reconstruct :math:`x` and by how many of the true active features they
find, both against how many atoms they use per sample (L0).

* FISTA / ISTA solve the lasso; their sparsity is set by the penalty ``alpha``.
* Matching pursuit (MP), orthogonal MP (OMP) and top-k take ``k`` atoms.
* Thresholding soft-thresholds the correlations :math:`D x` at ``alpha``.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from skdict import sparse_encode
from skdict.datasets import make_linear_representation_bench

X, D, true_codes = make_linear_representation_bench(
    n_samples=400, n_features=256, n_dims=64, sparsity=0.98, max_coherence=0.35, random_state=0
)
rng = np.random.default_rng(0)
X = X + 0.02 * X.std() * rng.standard_normal(X.shape)
true_support = true_codes != 0
print(f"{true_support.sum(axis=1).mean():.1f} true features per sample on average")

# %%
# One sweep per algorithm: ``n_nonzero_coefs`` for the pursuits, ``alpha`` for the others.
sweeps = {
    "fista": [dict(alpha=a) for a in (1.0, 0.5, 0.25, 0.1, 0.05)],
    "ista": [dict(alpha=a, max_iter=100) for a in (1.0, 0.5, 0.25, 0.1, 0.05)],
    "mp": [dict(n_nonzero_coefs=k) for k in (2, 4, 6, 10, 16)],
    "omp": [dict(n_nonzero_coefs=k) for k in (2, 4, 6, 10, 16)],
    "topk": [dict(n_nonzero_coefs=k) for k in (2, 4, 6, 10, 16)],
    "threshold": [dict(alpha=a) for a in (1.5, 1.0, 0.7, 0.5, 0.3)],
}

results = {}
for algorithm, settings in sweeps.items():
    points = []
    for kwargs in settings:
        codes = sparse_encode(X, D, algorithm=algorithm, **kwargs)
        active = codes != 0
        l0 = active.sum(axis=1).mean()
        error = np.linalg.norm(X - codes @ D) / np.linalg.norm(X)
        found = (active & true_support).sum() / true_support.sum()  # recall of the true features
        points.append((l0, error, found))
    results[algorithm] = np.array(points)
    print(f"{algorithm:>9}: " + "  ".join(f"L0={p[0]:4.1f} err={p[1]:.3f} found={p[2]:.2f}" for p in points))

# %%
# With few atoms, OMP -- which re-fits all chosen atoms by least squares -- and MP
# reconstruct best. Near the true sparsity (5 features per sample) the lasso
# (FISTA) finds almost every true feature with fewer atoms than the pursuits.
# ISTA, stopped after 100 iterations, has not converged at small ``alpha``:
# too many atoms, a worse fit. Top-k and thresholding read the codes off the
# correlations in one pass: cheapest, but the correlations of overlapping atoms
# count the same signal several times, so adding atoms makes the error *grow*.
fig, (ax_error, ax_found) = plt.subplots(1, 2, figsize=(10, 4))
for algorithm, points in results.items():
    ax_error.plot(points[:, 0], points[:, 1], "o-", label=algorithm)
    ax_found.plot(points[:, 0], points[:, 2], "o-", label=algorithm)
ax_error.set(xlabel="atoms per sample (L0)", ylabel="relative reconstruction error", yscale="log")
ax_found.set(xlabel="atoms per sample (L0)", ylabel="fraction of true features found")
ax_error.legend()
fig.tight_layout()
fig.savefig("plot_sparse_coding.png")  # run on its own, the example leaves its figure here
print("figure saved to", Path("plot_sparse_coding.png").resolve())
