"""
Surgeries on a trained SAE
==========================

Which part of an SAE falls short: its encoder or its decoder? Starting from a
ReLU-L1 SAE trained on the linear representation bench, this example

* codes the data with FISTA on the SAE's **frozen decoder** (an optimal encoder
  for the same atoms) and compares the L1 objective;
* **refits the values** on the SAE's own support by least squares;
* **warm-starts dictionary learning** from the SAE's atoms
  (``FISTADictionaryLearning(dict_init=sae.components_)``);
* measures the **stationarity gaps** of the SAE and of the refined dictionary;
* records the **learning dynamics** (M_IP with the true features per epoch).
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from skdict import FISTADictionaryLearning, ReLUSAE
from skdict.datasets import make_linear_representation_bench
from skdict.inspection import frozen_decoder_codes, stationarity_gaps, support_refit, track_learning_dynamics
from skdict.metrics import explained_variance, gt_recovery

X, features, _ = make_linear_representation_bench(4000, n_features=64, n_dims=48, random_state=0)
alpha = 0.1
sae, dynamics = track_learning_dynamics(
    ReLUSAE(n_components=128, alpha=alpha, max_iter=20, learning_rate=4e-3, batch_size=128, random_state=0),
    X, true_features=features,
)
centred = X - sae.decoder_bias_


def objective(codes, D):
    return 0.5 * np.sum((centred - codes @ D) ** 2) / len(X) + alpha * np.abs(codes).sum() / len(X)


# %%
# Encoder against decoder.
sae_codes = sae.transform(X)
optimal_codes, D = frozen_decoder_codes(sae, X, alpha)
refit = support_refit(sae, X)
print(f"L1 objective per sample: SAE codes {objective(sae_codes, D):.4f}, "
      f"FISTA on the frozen decoder {objective(optimal_codes, D):.4f}")
print(f"explained variance: SAE {sae.score(X):.3f}, support refit "
      f"{explained_variance(X, refit @ sae.components_ + sae.decoder_bias_):.3f}")

# %%
# Decoder: warm-start dictionary learning from the SAE's atoms.
refined = FISTADictionaryLearning(
    dict_init=sae.components_, alpha=alpha, positive_code=True, max_iter=10, random_state=0
).fit(centred)
print(f"GT recovery: SAE {gt_recovery(features, sae.components_):.3f}, "
      f"DL-FISTA warm-started from it {gt_recovery(features, refined.components_):.3f}")
for name, D_used, codes in (
    ("SAE", sae.components_, sae_codes),
    ("refined", refined.components_, refined.transform(centred)),
):
    gaps = stationarity_gaps(centred, D_used, codes, alpha)
    print(f"stationarity {name}: code gap {gaps.code_gap:.3f}, off-support {gaps.off_support_violation:.4f}, "
          f"atom gap {gaps.atom_gap:.3f}")

# %%
# Learning dynamics.
fig, ax = plt.subplots(figsize=(5, 3.5))
epochs = np.arange(1, len(dynamics.mean_max_cosine) + 1)
ax.plot(epochs, dynamics.mean_max_cosine, "o-", label="M_IP with the true features")
ax.plot(epochs, dynamics.gt_recovery, "s-", label="GT recovery @0.95")
ax.plot(epochs, dynamics.explained_variance, "^-", label="explained variance")
ax.set_xlabel("epoch")
ax.set_ylim(0, 1.02)
ax.legend(fontsize="small")
fig.tight_layout()
fig.savefig("plot_surgeries.png")  # run on its own, the example leaves its figure here
print("figure saved to", Path("plot_surgeries.png").resolve())
