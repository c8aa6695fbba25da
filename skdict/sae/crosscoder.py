"""Crosscoders: SAEs over several layers stacked side by side, with one decoder block per layer.

A crosscoder (Lindsey et al., 2024) reads the activations of several layers
and writes each latent back to every layer. In skdict it is any SAE fitted on
the layers stacked along the feature axis (``fit(stack_layers(...))``, or a
transcoder ``fit(X_layers, Y_layers)``): the decoder atom :math:`d_j` is then
the concatenation of per-layer blocks :math:`d_j^{(l)}`. For the L1 family,
:class:`~skdict.ReLUSAE` with ``layer_sizes`` weights each code by its summed
per-layer decoder norms, :math:`\\alpha \\sum_j z_j \\sum_l \\|d_j^{(l)}\\|`, the
crosscoder's sparsity penalty.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

from skdict._array import get_namespace


def check_layer_sizes(layer_sizes, width, *, name="layer_sizes"):
    """Validated tuple of per-layer widths that add up to ``width``."""
    sizes = tuple(layer_sizes)
    if not sizes or not all(isinstance(s, Integral) and s > 0 for s in sizes):
        raise ValueError(f"{name} must be a non-empty sequence of positive integers (layer widths), got {layer_sizes!r}.")
    if sum(sizes) != width:
        raise ValueError(
            f"{name}={list(sizes)} adds up to {sum(sizes)}, but the stacked layers have {width} columns: "
            "give the width of every stacked layer, in order."
        )
    return sizes


def stack_layers(layers):
    """Stack per-layer activations side by side: ``(X, layer_sizes)``.

    Parameters
    ----------
    layers : sequence of arrays of shape (n_samples, d_l)
        NumPy or CuPy, the same number of rows each.

    Returns
    -------
    X : array of shape (n_samples, sum_l d_l)
    layer_sizes : tuple of int
    """
    layers = list(layers)
    if not layers:
        raise ValueError("layers is empty: pass one (n_samples, d_l) array per layer.")
    xp = get_namespace(*layers)
    arrays = [xp.asarray(layer) for layer in layers]
    for index, array in enumerate(arrays):
        if array.ndim != 2:
            raise ValueError(f"layers[{index}] must be 2-D (n_samples, d_l), got shape {array.shape}.")
        if array.shape[0] != arrays[0].shape[0]:
            raise ValueError(
                f"layers[{index}] has {array.shape[0]} rows but layers[0] has {arrays[0].shape[0]}: "
                "every layer needs the activations of the same samples."
            )
    return xp.concatenate(arrays, axis=1), tuple(int(a.shape[1]) for a in arrays)


def split_layers(array, layer_sizes):
    """Split the columns of ``array`` (stacked data, reconstructions or ``components_``) into per-layer blocks."""
    sizes = check_layer_sizes(layer_sizes, array.shape[1])
    edges = np.cumsum((0,) + sizes)
    return [array[:, start:stop] for start, stop in zip(edges[:-1], edges[1:])]


def decoder_layer_norms(components, layer_sizes):
    """:math:`\\|d_j^{(l)}\\|` for every atom ``j`` (rows) and layer ``l`` (columns)."""
    xp = get_namespace(components)
    blocks = split_layers(components, layer_sizes)
    return xp.stack([xp.sqrt(xp.sum(block * block, axis=1)) for block in blocks], axis=1)
