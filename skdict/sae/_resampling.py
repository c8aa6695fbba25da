"""Dead-latent resampling (``resample_dead=True``): dead latents restart along poorly reconstructed inputs.

The recipe of Anthropic's *Towards Monosemanticity* (Bricken et al., 2023), on the current
minibatch instead of an extra pass over the data. Every time the samples seen cross a
multiple of ``dead_after`` (so at most once per ``dead_after`` samples), the latents
:math:`j \\in \\mathcal{D}` dead for ``dead_after`` samples are re-initialised:

1. each row :math:`n` of the minibatch gets the weight :math:`w_n = \\|y_n - \\hat y_n\\|^2`,
   its squared reconstruction error at the current parameters (the support used in training);
2. :math:`\\min(|\\mathcal{D}|, \\#\\{w_n > 0\\})` rows are drawn without replacement with
   probability :math:`\\propto w_n`, one per resampled latent (when more latents are dead than
   rows can be drawn, a random subset of them is resampled now, the rest at the next crossing);
3. the decoder atom becomes the drawn target direction, :math:`d_j = (y_n - b_{dec}) /
   \\|y_n - b_{dec}\\|`; the encoder row the drawn input direction :math:`(x_n - c)/\\|x_n - c\\|`
   (:math:`c = b_{dec}` for an SAE, ``input_center_`` for a transcoder) scaled to
   :data:`ENCODER_SCALE` times the mean norm of the alive encoder rows; :math:`b_{enc,j} = 0`;
   an extra per-latent parameter (e.g. JumpReLU's threshold) goes back to its initial value;
4. Adam's moments :math:`m, v` of those rows and entries are set to 0. The dead-latent clock is
   left as it is: a resampled latent counts as dead (in ``dead_fraction``, for AuxK) until it fires,
   and one that has not fired by the next crossing is resampled again.

A tied model without an encoder (:class:`~skdict.MPSAE`) resamples its atoms only. Latents pinned
by a regulariser (:class:`~skdict.AnchoredSAE`'s anchored latents) are never resampled.

The draws come from the model's own ``_resample_rng`` (a ``RandomState`` derived from the
training RNG when training starts, without consuming it, and saved in checkpoints): the training
RNG, which a prefetch thread may be drawing minibatches from, is never read during an epoch, so a
fit is deterministic with ``random_state`` and a resumed fit is bitwise that of an uninterrupted one.
"""

from __future__ import annotations

import numpy as np

from skdict._array import get_namespace, to_numpy
from skdict.ops.atoms import normalize_rows
from skdict.sae._step import gather_codes, preactivations

#: A resampled encoder row's norm, as a fraction of the mean norm of the alive encoder rows (Bricken et al., 2023).
ENCODER_SCALE = 0.2
#: Mixed into the seed of the resampling RNG, so its draws are not the training RNG's.
_STREAM_TAG = 0x5E5A3D


def start_resampling(model):
    """At the start of a training call: the resampling RNG and the ``history_`` key, when ``resample_dead``.

    A model that starts training (``n_steps_ == 0``) or has no resampling RNG gets one derived from
    the state of the training RNG (which is not advanced); a model resumed from a checkpoint keeps
    the saved one. ``history_["n_resampled"]`` is added (0 for epochs trained before resampling was
    switched on) so that every epoch from now on records how many latents it resampled.
    """
    if not getattr(model, "resample_dead", False):
        return
    if model.n_steps_ == 0 or not hasattr(model, "_resample_rng"):
        model._resample_rng = derived_rng(model._rng)
    model.history_.setdefault("n_resampled", [0] * len(model.history_["loss"]))


def derived_rng(rng):
    """A ``RandomState`` seeded from ``rng``'s state (its key and position), leaving ``rng`` as it is."""
    _, keys, position, _, _ = rng.get_state()
    entropy = [int(position), _STREAM_TAG, *np.asarray(keys, dtype=np.uint32).tolist()]
    return np.random.RandomState(np.random.SeedSequence(entropy).generate_state(8))


def is_due(model, n_rows):
    """Whether the step that just read ``n_rows`` samples crossed a multiple of ``dead_after`` samples seen."""
    seen, period = model.n_samples_seen_, model.dead_after
    return seen // period > (seen - n_rows) // period


def resample_dead_latents(model, params, X, Y):
    """After a step on the minibatch ``(X, Y)``: resample the dead latents if due (see the module); returns how many.

    Parameters
    ----------
    model : SAE estimator
        In training, with ``resample_dead``, ``dead_after``, the dead-latent clock and Adam's state.
    params : dict of str to array
        The model's parameters (``model._params()``), written in place.
    X : array of shape (B, n_features)
    Y : array of shape (B, n_targets)
        The minibatch just trained on (``Y`` is ``X`` for an SAE).

    Returns
    -------
    n_resampled : int
    """
    if not model.resample_dead or not is_due(model, X.shape[0]):
        return 0
    xp = get_namespace(X)
    pinned = _n_pinned(model)
    candidates = to_numpy(xp.flatnonzero(model._dead_mask()[pinned:])) + pinned
    if candidates.shape[0] == 0:
        return 0
    drawn_rows, latents = _draw(model, params, X, Y, candidates)
    if latents.shape[0] == 0:
        return 0
    latents, drawn_rows = xp.asarray(latents), xp.asarray(drawn_rows)
    _reinitialize(model, params, latents, X[drawn_rows], Y[drawn_rows])
    return int(latents.shape[0])


def _n_pinned(model):
    """Leading latents a regulariser pins to fixed directions (AnchoredSAE's anchors): never resampled."""
    anchors = getattr(model._regularizer, "anchors_out", None)
    return 0 if anchors is None else int(anchors.shape[0])


def _draw(model, params, X, Y, candidates):
    """``(rows, latents)``: minibatch rows drawn without replacement :math:`\\propto` squared error, one per latent.

    Rows whose target equals :math:`b_{dec}` have no direction to give and are never drawn.
    """
    errors, offsets = squared_errors(model, params, X, Y), Y - params["decoder_bias_"]
    weights = np.where(to_numpy(get_namespace(Y).sum(offsets * offsets, axis=1)) > 0, errors, 0.0)
    rng = model._resample_rng
    n = min(candidates.shape[0], int(np.count_nonzero(weights > 0)))
    if n == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    rows = rng.choice(X.shape[0], size=n, replace=False, p=weights / weights.sum())
    latents = candidates if n == candidates.shape[0] else np.sort(rng.choice(candidates, size=n, replace=False))
    return rows, latents


def squared_errors(model, params, X, Y):
    """:math:`\\|y_n - \\hat y_n\\|^2` per row (float64, NumPy) with the codes of training.

    A linear-encoder SAE's codes come from its training support (``_support(A, training=True)``:
    BatchTopK's batch-wide selection, not its inference threshold); an architecture with its own
    encoder (matching pursuit) codes through its ``_encode``.
    """
    from skdict.sae._base import BaseSparseAutoencoder

    if type(model)._encode is BaseSparseAutoencoder._encode:
        A, _ = preactivations(params, X, model._centre())
        codes = gather_codes(A, *model._support(A, training=True))
    else:
        codes = model._encode(params, X, model._encoding_state(params))
    residual = codes.dot(params["components_"])
    residual += params["decoder_bias_"]
    residual -= Y
    residual = to_numpy(residual).astype(np.float64)
    return np.einsum("ij,ij->i", residual, residual)


def _reinitialize(model, params, latents, X, Y):
    """Set the latents' parameters from their drawn rows ``X``, ``Y``; zero their Adam moments."""
    xp = get_namespace(X)
    params["components_"][latents] = normalize_rows(Y - params["decoder_bias_"])
    if "encoder_" in params:
        encoder = params["encoder_"]
        alive = ~model._dead_mask()
        norms = xp.sqrt(xp.sum(encoder * encoder, axis=1))
        scale = ENCODER_SCALE * float(xp.mean(norms[alive]) if bool(xp.any(alive)) else xp.mean(norms))
        encoder[latents] = normalize_rows(X - model._centre()) * encoder.dtype.type(scale)
        params["encoder_bias_"][latents] = 0
    if model._extra_parameters:
        n_components = params["components_"].shape[0]
        initial = model._init_extra_parameters(xp, params["components_"].dtype, n_components, model._resample_rng)
        for name in model._extra_parameters:
            params[name][latents] = initial[name][latents]
    for name in per_latent_parameters(model, params):
        model._adam.m[name][latents] = 0
        model._adam.v[name][latents] = 0


def per_latent_parameters(model, params):
    """The parameters with one row or entry per latent: the encoder's, the decoder atoms, the extra ones."""
    linear = ("encoder_", "encoder_bias_", "components_")
    return [name for name in params if name in linear or name in model._extra_parameters]
