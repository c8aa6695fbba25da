"""
The SAE family on digits: explained variance against L0
=======================================================

Fit the four sparse autoencoders of skdict -- :class:`~skdict.TopKSAE`,
:class:`~skdict.BatchTopKSAE`, :class:`~skdict.ReLUSAE` (L1 penalty) and
:class:`~skdict.JumpReLUSAE` (L0 penalty) -- on scikit-learn's 8x8 digits at a
few sparsity levels each, and plot how much variance each one explains against
how many latents it uses per image (L0).

TopK and BatchTopK set their sparsity directly with ``k``; ReLU and JumpReLU
set it indirectly through the penalty weight ``alpha``, so their L0 is measured
on the codes.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from skdict import BatchTopKSAE, JumpReLUSAE, ReLUSAE, TopKSAE
from skdict.metrics import l0
from skdict.plotting import plot_atoms, plot_training_curves

X = (load_digits().data / 16.0).astype(np.float32)  # 1797 images, pixels in [0, 1]

# %%
# One sweep per method. A few hundred Adam steps are all a data set of this size
# gives, so the learning rate is raised from the default 1e-3 and the batches halved.
common = dict(n_components=256, max_iter=30, batch_size=128, learning_rate=4e-3, random_state=0)
sweeps = {
    "TopKSAE": [TopKSAE(k=k, **common) for k in (4, 8, 16, 32)],
    "BatchTopKSAE": [BatchTopKSAE(k=k, **common) for k in (4, 8, 16, 32)],
    "ReLUSAE": [ReLUSAE(alpha=a, **common) for a in (0.4, 0.3, 0.2, 0.1)],
    "JumpReLUSAE": [JumpReLUSAE(alpha=a, **common) for a in (0.05, 0.02, 0.01, 0.005)],
}

points = {}
for name, estimators in sweeps.items():
    points[name] = []
    for sae in estimators:
        sae.fit(X)
        sparsity, fidelity = l0(sae.transform(X)), sae.score(X)
        points[name].append((sparsity, fidelity))
        setting = f"k={sae.k}" if hasattr(sae, "k") else f"alpha={sae.alpha}"
        print(f"{name:13s} {setting:11s} L0 {sparsity:5.1f}  explained variance {fidelity:.3f}")

# %%
# The sparsity--fidelity trade-off: up and to the left is better.
fig, ax = plt.subplots(figsize=(6, 4.2), layout="constrained")
for name, values in points.items():
    values = sorted(values)
    ax.plot([v[0] for v in values], [v[1] for v in values], marker="o", label=name)
ax.set_xscale("log", base=2)
ax.set_xlabel("L0 (mean active latents per image)")
ax.set_ylabel("explained variance")
ax.set_title("SAEs on digits (256 latents)")
ax.grid(alpha=0.3)
ax.legend()
fig.savefig("plot_sae_family.png")  # run on its own, the example leaves its figure here
print("figure saved to", Path("plot_sae_family.png").resolve())

# %%
# How each method trained (the second setting of each sweep): every skdict learner keeps
# ``history_`` in one schema (loss, explained variance, L0, dead fraction per epoch), so
# :func:`skdict.plotting.plot_training_curves` draws them side by side.
middle = {name: estimators[1] for name, estimators in sweeps.items()}
curves = plot_training_curves(middle, fig=plt.figure(figsize=(11, 7), layout="constrained"))
curves.savefig("plot_sae_family_curves.png")
print("figure saved to", Path("plot_sae_family_curves.png").resolve())

# %%
# The atoms TopK learned at k=8, most frequent first, on one shared colour scale: each
# subtitle gives the fraction of images on which the latent fires.
atoms = plot_atoms(sweeps["TopKSAE"][1], image_shape=(8, 8), X=X, n_atoms=32,
                   fig=plt.figure(figsize=(11, 7), layout="constrained"))
atoms.savefig("plot_sae_family_atoms.png")
print("figure saved to", Path("plot_sae_family_atoms.png").resolve())
