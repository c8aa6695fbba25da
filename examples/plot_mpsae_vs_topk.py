"""
Matching pursuit against TopK on digits
=======================================

:class:`~skdict.MPSAE` encodes by ``k`` steps of matching pursuit on its own
dictionary: each step picks the atom most correlated with what is left of the
image and removes its projection. :class:`~skdict.TopKSAE` encodes in one shot,
keeping the ``k`` largest pre-activations of a linear encoder. At the same
number of atoms and the same ``k``, the pursuit explains more of the variance of
scikit-learn's digits, because each choice accounts for what the earlier ones
already explained.

Because ``k`` is read at inference, one fitted MPSAE can also be evaluated at
other ``k`` with ``set_params``; its reconstruction error never grows with ``k``.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from skdict import MPSAE, TopKSAE

X = (load_digits().data / 16.0).astype(np.float32)
common = dict(n_components=256, max_iter=30, batch_size=128, learning_rate=4e-3, random_state=0)

# %%
# Fit both at the same k, for a few k.
ks = (2, 4, 8, 16)
scores = {"TopKSAE": [], "MPSAE": []}
for k in ks:
    scores["TopKSAE"].append(TopKSAE(k=k, **common).fit(X).score(X))
    scores["MPSAE"].append(MPSAE(k=k, **common).fit(X).score(X))
for name, values in scores.items():
    print(name, " ".join(f"k={k}: {v:.3f}" for k, v in zip(ks, values)))

# %%
# One MPSAE trained at k=8, evaluated at other k after the fit.
pursuit = MPSAE(k=8, **common).fit(X)
inference_ks = (1, 2, 4, 8, 16, 32)
inference_scores = [pursuit.set_params(k=k).score(X) for k in inference_ks]

fig, ax = plt.subplots(figsize=(6, 4))
for name, values in scores.items():
    ax.plot(ks, values, "o-", label=f"{name}, trained and evaluated at k")
ax.plot(inference_ks, inference_scores, "s--", label="MPSAE trained at k=8, evaluated at k")
ax.set_xscale("log", base=2)
ax.set_xlabel("k (active atoms per image)")
ax.set_ylabel("explained variance")
ax.legend()
ax.set_title("digits, 256 atoms")
fig.tight_layout()
fig.savefig("plot_mpsae_vs_topk.png")  # run on its own, the example leaves its figure here
print("figure saved to", Path("plot_mpsae_vs_topk.png").resolve())
