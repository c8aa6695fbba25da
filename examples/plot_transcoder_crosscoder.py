"""
Transcoders and crosscoders on the bench's target mode
======================================================

:func:`~skdict.datasets.make_linear_representation_bench` with ``target_dims``
writes one sparse code into two spaces: an input ``X = codes @ features`` and a
target ``Y = codes @ target_features`` of another width -- two "layers" that
share their features.

* A **transcoder** (``fit(X, Y)``) encodes ``X`` and reconstructs ``Y``: its
  atoms (``components_``) live in the target space and should match
  ``target_features``.
* A **crosscoder** reads and writes both layers at once: an SAE on the layers
  stacked side by side (:func:`~skdict.sae.crosscoder.stack_layers`). Each atom
  is the concatenation of one block per layer
  (:func:`~skdict.sae.crosscoder.split_layers`); with ``layer_sizes``, the L1
  family weights each code by its atom's summed per-layer norms.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from skdict import ReLUSAE, TopKSAE
from skdict.datasets import make_linear_representation_bench
from skdict.metrics import gt_recovery
from skdict.sae.crosscoder import decoder_layer_norms, split_layers, stack_layers

X, Y, features, target_features, codes = make_linear_representation_bench(
    8000, n_features=64, n_dims=48, target_dims=32, max_coherence=0.2, random_state=0
)
training = dict(max_iter=20, learning_rate=4e-3, batch_size=128, random_state=0)

# %%
# Transcoder: codes from X, reconstruction of Y.
transcoder = TopKSAE(n_components=256, k=2, **training).fit(X, Y)
print(f"transcoder: explained variance of Y {transcoder.score(X, Y):.3f}, "
      f"target features recovered {gt_recovery(target_features, transcoder.components_):.2f}")

# %%
# Crosscoder: both layers in, both layers out, L1 weighted by per-layer decoder norms.
stacked, sizes = stack_layers([X, Y])
crosscoder = ReLUSAE(n_components=256, alpha=0.05, layer_sizes=sizes, **training).fit(stacked)
input_atoms, output_atoms = split_layers(crosscoder.components_, sizes)
print(f"crosscoder: explained variance {crosscoder.score(stacked):.3f}; recovered per layer: "
      f"X {gt_recovery(features, input_atoms):.2f}, Y {gt_recovery(target_features, output_atoms):.2f}")

# %%
# How each used latent splits its unit norm between the two layers.
used = np.abs(crosscoder.transform(stacked)).sum(axis=0) > 0
norms = decoder_layer_norms(crosscoder.components_, sizes)[used]
fig, ax = plt.subplots(figsize=(5, 4))
ax.scatter(norms[:, 0], norms[:, 1], s=8)
ax.set_xlabel("decoder norm in layer X")
ax.set_ylabel("decoder norm in layer Y")
ax.set_title("crosscoder latents: shared features write to both layers")
fig.tight_layout()
fig.savefig("plot_transcoder_crosscoder.png")  # run on its own, the example leaves its figure here
print("figure saved to", Path("plot_transcoder_crosscoder.png").resolve())
