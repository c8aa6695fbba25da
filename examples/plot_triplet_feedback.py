"""
Learning a feature matrix from triplet feedback
===============================================

A dictionary :math:`D` (atoms as rows) induces the feature matrix
:math:`\\Phi = D^\\top D` on sparse activations :math:`x`: the squared distance
between two representations is :math:`d_\\Phi(x, y) = (x - y)^\\top \\Phi (x - y)`.
:class:`~skdict.TripletFeatureLearner` recovers :math:`\\Phi` (up to scale) from
triplets :math:`(x, y, z)` that only say whether :math:`x` is closer to :math:`y` or
to :math:`z`, or equally close.

Two regimes are shown: a teacher who picks the triplets (the eigendecomposition
teaching set, solved exactly by the SDP), and random sparse feedback (fitted by the
low-rank solver), scored by the Pearson correlation (PCC) of the entries of the
learned and true matrices.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from skdict import TripletFeatureLearner
from skdict.datasets import make_eigendecomposition_teaching_set, make_triplet_feedback
from skdict.metrics import feature_matrix_pcc

rng = np.random.default_rng(0)

# %%
# Exact teaching: r(r+1)/2 + (p - r) - 1 equalities pin a rank-r Φ down.
p, r = 12, 3
D = rng.standard_normal((r, p))
Phi = D.T @ D
T = make_eigendecomposition_teaching_set(Phi)
exact = TripletFeatureLearner(solver="cvxpy").fit(T)
error = np.linalg.norm(exact.feature_matrix_ - Phi / np.linalg.norm(Phi))
print(f"{len(T)} equalities, p={p}, r={r}: relative Frobenius error {error:.1e}, rank {exact.rank_}")
fewer = TripletFeatureLearner(solver="cvxpy").fit(T[1:])  # drop one null-space equality
error = np.linalg.norm(fewer.feature_matrix_ - Phi / np.linalg.norm(Phi))
print(f"one equality fewer: relative Frobenius error {error:.2f} (not identifiable)")

# %%
# Random sparse feedback: each coordinate of a vector is 0 with probability 0.5,
# else uniform on (0, 1]; the teacher rescales one vector of each pair so that
# the two are equally long in the Φ-metric. PCC against the number of equalities.
p, r = 32, 4
D = rng.standard_normal((r, p))
Phi = D.T @ D
counts = [50, 100, 200, 400, 800, 1600]
T, _ = make_triplet_feedback(Phi, counts[-1], kind="equality", sparsity=0.5, random_state=1)
pccs = []
for n in counts:
    est = TripletFeatureLearner(solver="lowrank", rank=r, random_state=2).fit(T[:n])
    pccs.append(feature_matrix_pcc(Phi, est.feature_matrix_))
    print(f"{n:5d} equalities: PCC {pccs[-1]:.3f}")

# %%
# The learned matrix from the largest set next to the true one.
fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), layout="constrained")
axes[0].plot(counts, pccs, marker="o")
axes[0].axvline(p * r, color="grey", linestyle=":", label="p·r (parameters of U)")
axes[0].set_xscale("log")
axes[0].set_xlabel("number of equality triplets")
axes[0].set_ylabel("PCC with the true Φ")
axes[0].set_title(f"p={p}, rank {r}")
axes[0].legend()
limit = np.abs(Phi).max() / np.linalg.norm(Phi)
for ax, matrix, title in ((axes[1], Phi / np.linalg.norm(Phi), "true Φ"), (axes[2], est.feature_matrix_, "learned Φ")):
    ax.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
fig.savefig("plot_triplet_feedback.png")  # run on its own, the example leaves its figure here
print("figure saved to", Path("plot_triplet_feedback.png").resolve())
