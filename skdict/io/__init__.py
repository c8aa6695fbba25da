"""Saving, loading and exchanging fitted models: safetensors + JSON, no pickle.

- :func:`save` / :func:`load`: skdict's own folder format (``config.json`` + ``model.safetensors``)
  for every estimator with array parameters; an SAE keeps its optimizer state and trains on.
- :func:`export_saelens` / :func:`load_saelens`: SAELens folders (``cfg.json`` +
  ``sae_weights.safetensors``); :func:`load_gemma_scope`: Gemma Scope ``params.npz``.

Loading never executes code from the file: the class comes from skdict's public names only,
the arrays from safetensors, everything else from JSON.
"""

from skdict.io._gemma_scope import load_gemma_scope
from skdict.io._native import load, save
from skdict.io._saelens import export_saelens, load_saelens

__all__ = ["export_saelens", "load", "load_gemma_scope", "load_saelens", "save"]
