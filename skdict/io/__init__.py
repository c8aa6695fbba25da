"""Saving, loading and exchanging fitted models: safetensors + JSON, no pickle.

- :func:`save` / :func:`load`: skdict's own folder format (``config.json`` + ``model.safetensors``)
  for every estimator with array parameters; an SAE keeps its optimizer state and trains on.

Loading never executes code from the file: the class comes from skdict's public names only,
the arrays from safetensors, everything else from JSON.
"""
