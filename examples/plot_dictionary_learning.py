"""
Classical dictionary learning recovers ground-truth features
============================================================

Data from :func:`~skdict.datasets.make_linear_representation_bench` are sparse
non-negative mixtures of known, nearly orthogonal features. We fit
:class:`~skdict.FISTADictionaryLearning` (alternating FISTA codes and
least-squares atoms) in batch and minibatch mode, and the gradient baseline
:class:`~skdict.SoftplusAdamDictionaryLearning`, and follow the fraction of
true features that some learned atom matches with :math:`|\\cos| > 0.95`.
"""

from pathlib import Path

import matplotlib.pyplot as plt

from skdict import FISTADictionaryLearning, SoftplusAdamDictionaryLearning
from skdict.datasets import make_linear_representation_bench
from skdict.metrics import gt_recovery

X, features, _ = make_linear_representation_bench(3000, 96, 48, sparsity=0.98, max_coherence=0.2, random_state=0)

# %%
# Record the recovery after every alternation (batch) or epoch (minibatch): the public
# ``callback(estimator, record)`` runs after each one, with the dictionary just updated
# (``record`` is the entry just added to ``history_``; returning True would stop the fit).
curves = {}
for name, batch_size in [("FISTA DL, batch", None), ("FISTA DL, minibatch 500", 500)]:
    recovery = []

    def follow_recovery(model, record, recovery=recovery):
        recovery.append(gt_recovery(features, model.components_))

    FISTADictionaryLearning(
        96, alpha=0.3, positive_code=True, batch_size=batch_size, max_iter=20, random_state=0,
        callback=follow_recovery,
    ).fit(X)
    curves[name] = recovery

baseline = SoftplusAdamDictionaryLearning(96, alpha=0.05, max_iter=600, random_state=0).fit(X)
print({name: round(values[-1], 3) for name, values in curves.items()})
print("Softplus-Adam after 600 steps:", round(gt_recovery(features, baseline.components_), 3))

# %%
fig, ax = plt.subplots(figsize=(6, 4))
for name, values in curves.items():
    ax.plot(range(1, len(values) + 1), values, marker="o", label=name)
ax.axhline(gt_recovery(features, baseline.components_), color="gray", linestyle="--", label="Softplus-Adam, 600 steps")
ax.set_xlabel("alternation / epoch")
ax.set_ylabel("GT recovery (|cos| > 0.95)")
ax.set_ylim(0, 1.02)
ax.legend()
fig.tight_layout()
fig.savefig("plot_dictionary_learning.png")  # run on its own, the example leaves its figure here
print("figure saved to", Path("plot_dictionary_learning.png").resolve())
