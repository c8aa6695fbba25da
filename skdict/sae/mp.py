"""Matching-pursuit sparse autoencoder (MP-SAE; Costa et al., 2025)."""

from __future__ import annotations

import dataclasses

from sklearn.utils._param_validation import StrOptions

from skdict._array import get_namespace
from skdict._validation import check_params_read
from skdict.ops.matching_pursuit import (
    SELECTIONS,
    matching_pursuit,
    matching_pursuit_backward,
    resolve_selection,
    unit_gram,
)
from skdict.sae._base import BaseSparseAutoencoder
from skdict.sae._parameters import Parameter
from skdict.sae._step import StepResult
from skdict.sae.topk import K, resolve_k


class MPSAE(BaseSparseAutoencoder):
    """Sparse autoencoder whose encoder is ``k`` steps of matching pursuit on its own decoder.

    With unit atoms :math:`d_j` (rows of ``components_``) and the pre-bias
    :math:`b_{pre}`, the residual starts at :math:`r^0 = x - b_{pre}` and each of
    ``k`` steps chooses :math:`j = \\arg\\max_j d_j^\\top r`, adds
    :math:`z_j \\mathrel{+}= d_j^\\top r` and removes :math:`r \\leftarrow r -
    (d_j^\\top r)\\, d_j`; the reconstruction is :math:`\\hat x = b_{pre} + z D`
    (Algorithm 1 of the MP-SAE paper).
    Encoder and decoder are one dictionary (tied). Training is minibatch Adam on
    :math:`\\tfrac{1}{2B}\\sum_n \\|x_n - \\hat x_n\\|^2`, differentiated through
    the unrolled pursuit with the choices held fixed
    (:func:`~skdict.ops.matching_pursuit.matching_pursuit_backward`).

    Every step removes :math:`(d_j^\\top r)^2` from :math:`\\|r\\|^2`, so whatever the
    rule the residual norm never grows with the steps (nor with an inference ``k``).
    The rules differ in what they pick:

    - ``selection="signed"`` (default): :math:`\\arg\\max_j d_j^\\top r`, the paper's
      Algorithm 1 (as in overcomplete's ``MpSAE``). Codes are positive while some
      correlation is positive; when none is, the least negative atom is taken and
      its code is negative (a small step: it removes the least energy).
    - ``selection="absolute"``: :math:`\\arg\\max_j |d_j^\\top r|`, classical matching
      pursuit (Mallat & Zhang, 1993), the largest decrease of :math:`\\|r\\|^2` at
      every step; codes of either sign, an atom and its negative are one feature.
    - ``positive=True`` (with ``"signed"``): non-negative codes, as the other SAEs
      give and SAELens's ``MatchingPursuitSAE`` (ReLU of the correlations): a sample
      whose correlations are all :math:`\\le 0` stops, its remaining steps add nothing.

    ``k``, ``selection`` and ``positive`` are read at inference, so ``set_params(k=...)`` after ``fit`` changes
    the number of pursuit steps of ``transform``/``predict``/``score``; the
    reconstruction error never grows with ``k``. ``k_`` keeps the training value.
    There is no transcoder form (``fit(X, Y)`` with a 2-D ``Y`` raises): codes
    and reconstruction share the atoms.

    {parameters}

    Attributes
    ----------
    components_ : array of shape (n_components, n_features)
        The dictionary :math:`D`, unit rows.
    decoder_bias_ : array of shape (n_features,)
        :math:`b_{pre}`, initialised at the geometric median.
    k_ : int
        ``k`` used in training.
    {shared_attributes}

    See Also
    --------
    skdict.sparse_encode : matching pursuit and OMP codes for a fixed dictionary.
    TopKSAE : ``k`` latents from one linear encoder, and a transcoder form.

    Examples
    --------
    >>> import numpy as np
    >>> from skdict import MPSAE
    >>> X = np.random.default_rng(0).normal(size=(500, 16))
    >>> sae = MPSAE(n_components=64, k=4, random_state=0).fit(X[:400])
    >>> scores = [sae.set_params(k=k).score(X[400:]) for k in (1, 2, 4, 8)]
    >>> scores == sorted(scores)  # more pursuit steps never reconstruct worse, on unseen rows too
    True
    """

    _parameters = (
        dataclasses.replace(K, doc="Pursuit steps per sample; ``None`` means ``min(32, n_components)``."),
        Parameter(
            "selection", "signed", [StrOptions(set(SELECTIONS))], '{"signed", "absolute"}',
            "Which correlation picks the atom at each step: the signed one (the MP-SAE paper's rule) or its "
            "absolute value (classical MP), see above.",
        ),
        Parameter(
            "positive", False, ["boolean"], "bool",
            'Non-negative codes: stop a sample once no correlation is positive. Needs ``selection="signed"``.',
        ),
    )
    _parameter_names = ("components_", "decoder_bias_")
    _preactivation_unit_parameters = ()
    _supports_transcoder = False

    def _check_hyperparameters(self, n_components):
        self.k_ = resolve_k(self, n_components)
        self._pursuit_rule()

    def _pursuit_rule(self):
        """The pursuit's keyword arguments, validated where they are read (``fit`` and inference)."""
        return {"selection": resolve_selection(self.selection, self.positive), "positive": self.positive}

    def _init_encoder(self, xp, dtype, n_features, rng):
        """Tied: the encoder is the dictionary itself."""

    def _loss_and_grads(self, params, X, Y, dead_mask):
        xp = get_namespace(X)
        n_rows = X.shape[0]
        D = params["components_"]
        trace = matching_pursuit(X - params["decoder_bias_"], D, self.k_, **self._pursuit_rule())
        residual = trace.residual  # x - x_hat
        squared_error = float(xp.sum(residual * residual))
        grad_D, grad_R = matching_pursuit_backward(trace, residual / n_rows)
        _, active = trace.active_pairs()  # distinct latents per sample, as the L0 of transform's codes
        return StepResult(
            loss=0.5 * squared_error / n_rows,
            squared_error=squared_error,
            n_active=int(active.shape[0]),
            active_columns=active,
            grads={"components_": grad_D, "decoder_bias_": -xp.sum(grad_R, axis=0)},
        )

    def _encoding_state(self, params):
        check_params_read(self, ("k", "selection", "positive"))  # inference reads them (set_params after fit)
        return {"gram": unit_gram(params["components_"])}

    def _dense_codes(self, X):
        # pursuit codes are not a cut of one product: each block's sparse codes are added to zeros
        codes = get_namespace(X).zeros((X.shape[0], self.components_.shape[0]), dtype=X.dtype)
        for start, stop, Z in self._encode_blocks(X):
            Z.add_to_dense(codes[start:stop])
        return codes

    def _encode(self, params, X, state=None):
        k = resolve_k(self, params["components_"].shape[0])
        gram = None if state is None else state["gram"]
        trace = matching_pursuit(X - params["decoder_bias_"], params["components_"], k, gram=gram, **self._pursuit_rule())
        return trace.codes()
