"""
LISTA: a few learned ISTA layers approximate the lasso code
===========================================================

:class:`~skdict.LISTA` unrolls ISTA on a dictionary into ``n_layers`` layers
and learns their weights and thresholds to predict the converged lasso codes.
We compare, on held-out samples, the code error of ISTA and of LISTA with the
same number of layers.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from skdict import LISTA
from skdict.datasets import make_linear_representation_bench
from skdict.ops.fista import fista

X, features, _ = make_linear_representation_bench(3000, 64, 32, sparsity=0.95, max_coherence=0.35, random_state=0)
train, test = X[:2500], X[2500:]
alpha = 0.1
target, _ = fista(test, features, alpha, max_iter=3000, tol=1e-10)

# %%
depths = [1, 2, 4, 8]
ista_error, lista_error = [], []
for n_layers in depths:
    ista, _ = fista(test, features, alpha, max_iter=n_layers, tol=0, momentum=False)
    ista_error.append(np.mean((ista - target) ** 2))
    model = LISTA(64, n_layers=n_layers, dictionary=features, alpha=alpha, learning_rate=3e-3, max_iter=20, random_state=0)
    lista_error.append(np.mean((model.fit(train).transform(test) - target) ** 2))
print("ISTA :", np.round(ista_error, 5))
print("LISTA:", np.round(lista_error, 5))

# %%
fig, ax = plt.subplots(figsize=(5, 4))
ax.semilogy(depths, ista_error, marker="o", label="ISTA")
ax.semilogy(depths, lista_error, marker="o", label="LISTA (trained)")
ax.set_xlabel("layers (iterations)")
ax.set_ylabel("mean squared error to the lasso code")
ax.legend()
fig.tight_layout()
fig.savefig("plot_lista.png")  # run on its own, the example leaves its figure here
print("figure saved to", Path("plot_lista.png").resolve())
