"""
Did the dictionary find the true features?
==========================================

Two reproductions of the identifiability experiments, at sizes that run in a
minute:

1. **Bench table.** On the linear representation bench (sparse codes over known,
   nearly orthogonal features), fit TopK, BatchTopK, ReLU, JumpReLU and
   matching-pursuit SAEs and DL-FISTA, plain and with 8 of the true features
   anchored (:class:`~skdict.AnchoredSAE`), and measure ground-truth recovery
   and M_IP on the features that were *not* anchored.
2. **OOD table.** On a compositional split whose test data combines latents
   never seen together in training, compare the codes' MCC with the true codes
   in and out of distribution; sparse coding on the true features (the FISTA
   oracle) is the ceiling.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from skdict import (
    AnchoredSAE,
    BatchTopKSAE,
    FISTADictionaryLearning,
    JumpReLUSAE,
    MPSAE,
    ReLUSAE,
    SparseCoder,
    TopKSAE,
)
from skdict.datasets import make_compositional_ood, make_linear_representation_bench
from skdict.metrics import gt_recovery, mcc, mean_max_cosine

# %%
# Bench table
X, features, _ = make_linear_representation_bench(4000, n_features=64, n_dims=48, random_state=0)
training = dict(n_components=256, max_iter=15, learning_rate=4e-3, batch_size=128, random_state=0)
saes = {
    "TopK": lambda: TopKSAE(k=2, **training),
    "BatchTopK": lambda: BatchTopKSAE(k=2, **training),
    "ReLU": lambda: ReLUSAE(alpha=0.2, **training),
    "JumpReLU": lambda: JumpReLUSAE(alpha=0.1, **training),
    "MP": lambda: MPSAE(k=2, **training),
}
n_anchors = 8
rows = []
for name, make in saes.items():
    for anchored in (False, True):
        model = AnchoredSAE(make(), anchors=features[:n_anchors], anchor_weight=1.0) if anchored else make()
        model.fit(X)
        skip = n_anchors if anchored else 0
        true, atoms = features[skip:], model.components_[skip:]
        rows.append((name + (" anchored" if anchored else ""), gt_recovery(true, atoms), mean_max_cosine(true, atoms)))
dl = FISTADictionaryLearning(256, alpha=0.05, positive_code=True, max_iter=15, random_state=0).fit(X)
rows.append(("DL-FISTA", gt_recovery(features, dl.components_), mean_max_cosine(features, dl.components_)))

print(f"{'method':<20}{'GT recovery':>12}{'M_IP':>8}")
for name, recovery, mip in rows:
    print(f"{name:<20}{recovery:>12.3f}{mip:>8.3f}")

# %%
# OOD table
data = make_compositional_ood(32, 3, 8000, random_state=0)
ood_methods = {
    "FISTA oracle": SparseCoder(data.features, transform_alpha=0.01, positive_code=True),
    "DL-FISTA": FISTADictionaryLearning(32, alpha=0.2, positive_code=True, max_iter=30, random_state=0),
    "TopK": TopKSAE(n_components=32, k=3, max_iter=60, learning_rate=4e-3, batch_size=128, random_state=0),
    "MP": MPSAE(n_components=32, k=3, max_iter=60, learning_rate=4e-3, batch_size=128, random_state=0),
}
ood_rows = []
for name, model in ood_methods.items():
    model.fit(data.X_train)
    ood_rows.append((name, mcc(data.codes_train, model.transform(data.X_train)), mcc(data.codes_ood, model.transform(data.X_ood))))
print(f"\n{'method':<14}{'MCC in':>8}{'MCC OOD':>9}")
for name, inside, outside in ood_rows:
    print(f"{name:<14}{inside:>8.3f}{outside:>9.3f}")

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
names = [r[0] for r in rows]
left.barh(names, [r[1] for r in rows], label="GT recovery @0.95")
left.barh(names, [r[2] for r in rows], alpha=0.4, label="M_IP")
left.set_xlim(0, 1.05)
left.legend(loc="lower left", fontsize="small")
left.set_title("bench: non-anchored features")
positions = np.arange(len(ood_rows))
right.bar(positions - 0.2, [r[1] for r in ood_rows], 0.4, label="in distribution")
right.bar(positions + 0.2, [r[2] for r in ood_rows], 0.4, label="OOD")
right.set_xticks(positions, [r[0] for r in ood_rows])
right.set_ylim(0, 1.05)
right.set_ylabel("MCC")
right.legend(fontsize="small")
right.set_title("compositional OOD split")
fig.tight_layout()
fig.savefig("plot_identifiability.png")  # run on its own, the example leaves its figure here
print("figure saved to", Path("plot_identifiability.png").resolve())
