"""Gated sparse autoencoder (Rajamanoharan et al., 2024, "Improving Dictionary Learning with Gated SAEs")."""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real

from sklearn.utils._param_validation import Interval

from skdict._array import get_namespace
from skdict.ops._threads import run_row_blocks
from skdict.ops.codes import CodeMatrix, sampled_row_dots
from skdict.sae._base import BaseSparseAutoencoder
from skdict.sae._l0_target import L0TargetMixin
from skdict.sae._parameters import Parameter
from skdict.sae._step import _FORWARD_BLOCK, StepResult, add_bias, sum_of_squares


@dataclass
class GatedPairs:
    """The forward pass of a gated encoder on the pairs whose gate is open, :math:`\\pi_{gate} > 0`.

    ``rows`` (non-decreasing), ``cols``: the open pairs :math:`S_{gate}`; ``projection``: :math:`\\tilde x W^\\top`
    there; ``gate``: :math:`\\pi_{gate}`; ``magnitude``: :math:`\\pi_{mag}`; ``on``: the pairs of
    :math:`S_{gate}` where also :math:`\\pi_{mag} > 0`, the support :math:`S` of the codes.
    """

    rows: object
    cols: object
    projection: object
    gate: object
    magnitude: object
    on: object
    shape: tuple

    def codes(self):
        """:math:`z = \\mathbb{1}[\\pi_{gate} > 0]\\, \\mathrm{ReLU}(\\pi_{mag})` as a :class:`CodeMatrix`."""
        on = self.on
        return CodeMatrix(self.rows[on], self.cols[on], self.magnitude[on], self.shape)


def gated_pairs(params, X_centred):
    """Open gates of :math:`\\pi_{gate} = \\tilde x W^\\top + b_{gate}` and their magnitudes, in row blocks.

    Only :math:`\\tilde x W^\\top` is a dense product, formed one block of rows at a time (on
    threads) and reduced there to the open pairs; :math:`\\pi_{mag} = e^{r_{mag}} \\odot
    \\tilde x W^\\top + b_{mag}` is then computed on those pairs only (the tied directions).

    Parameters
    ----------
    params : dict
        ``encoder_`` :math:`W` (m, d), ``encoder_bias_`` :math:`b_{gate}` (m,), ``r_mag_`` and ``b_mag_`` (m,).
    X_centred : array of shape (B, d)
        :math:`\\tilde x`.

    Returns
    -------
    GatedPairs
    """
    xp = get_namespace(X_centred)
    W, b_gate = params["encoder_"], params["encoder_bias_"]
    n_rows, n_components = X_centred.shape[0], W.shape[0]
    threshold = -b_gate  # pi_gate > 0  <=>  x W^T > -b_gate: the product is compared without a copy

    def block(start, stop):
        projection = xp.matmul(X_centred[start:stop], W.T)
        rows, cols = xp.nonzero(projection > threshold)
        return rows + start, cols, projection[rows, cols]

    blocks = run_row_blocks(block, n_rows, max(1, _FORWARD_BLOCK // max(n_components, 1)), xp)
    rows, cols, projection = (xp.concatenate([part[i] for part in blocks]) for i in range(3))
    gate = projection + b_gate[cols]
    magnitude = xp.exp(params["r_mag_"])[cols] * projection + params["b_mag_"][cols]
    return GatedPairs(rows, cols, projection, gate, magnitude, magnitude > 0, (n_rows, n_components))


def _column_sums(cols, weights, n_components, dtype):
    xp = get_namespace(weights)
    return xp.bincount(cols, weights=weights, minlength=n_components).astype(dtype, copy=False)


class GatedSAE(L0TargetMixin, BaseSparseAutoencoder):
    """Gated sparse autoencoder: a gate decides which latents fire, a magnitude path how much.

    With :math:`\\tilde x = x - b_{dec}`, the gate's rows :math:`W = W_{gate}` (``encoder_``) and its
    bias :math:`b_{gate}` (``encoder_bias_``):

    .. math::

        \\pi_{gate} = \\tilde x W^\\top + b_{gate}, \\qquad
        \\pi_{mag} = \\tilde x (e^{r_{mag}} \\odot W)^\\top + b_{mag}, \\qquad
        z = \\mathbb{1}[\\pi_{gate} > 0] \\odot \\mathrm{ReLU}(\\pi_{mag}),

        L = \\frac{1}{B}\\sum_n \\Big( \\tfrac12\\|x_n - \\hat x_n\\|^2
        + \\alpha \\sum_j \\mathrm{ReLU}(\\pi_{gate,nj}) \\|d_j\\|
        + \\tfrac12\\|x_n - \\mathrm{ReLU}(\\pi_{gate,n}) \\bar W_{dec} - \\bar b_{dec}\\|^2 \\Big),

    :math:`\\hat x = z W_{dec} + b_{dec}`. The magnitude path shares the gate's directions,
    rescaled per latent by :math:`e^{r_{mag}}`. The Heaviside gate passes no gradient:
    the gate path learns from the L1 term and the auxiliary reconstruction only, which
    decodes :math:`\\mathrm{ReLU}(\\pi_{gate})` through a frozen copy of the decoder
    (:math:`\\bar W_{dec}, \\bar b_{dec}`: no gradient reaches them from that term). The L1
    weight is the atom's norm :math:`\\|d_j\\|`, which the unit-norm atoms keep at 1, so
    ``alpha`` is in the units of :class:`ReLUSAE`'s (per sample, in the units of ``X``). The
    same ``alpha`` is not the same L0: the L1 prices the gate, not the magnitudes, and a gated
    model is denser at small ``alpha`` (on the bench of ``benchmarks/gated_vs_relu.py``, L0 14 against
    ReLU's 4 at 0.05, 2.2 against 2.3 at 0.2). The loss is the paper's (and SAELens's) with the
    reconstruction terms halved, as everywhere in skdict.

    ``fit(X, Y)`` trains a gated transcoder (:math:`\\tilde x = x - c` with a fixed centre :math:`c`).

    {parameters}

    Attributes
    ----------
    alpha_ : float
        The L1 weight the model was trained at: ``alpha``, or where ``target_l0`` steered it.
    r_mag_ : array of shape (n_components,)
        :math:`r_{mag}`, the log-scale of each magnitude direction (:math:`W_{mag} = e^{r_{mag}} W_{gate}`).
    b_mag_ : array of shape (n_components,)
        :math:`b_{mag}`, the magnitude path's bias.
    {shared_attributes}

    See Also
    --------
    ReLUSAE : one path for both decisions, and an L1 penalty that shrinks the magnitudes.
    JumpReLUSAE : a learned threshold per latent instead of a gate.

    Examples
    --------
    >>> import numpy as np
    >>> from skdict import GatedSAE
    >>> rng = np.random.default_rng(0)
    >>> sae = GatedSAE(n_components=64, alpha=0.1, random_state=0).fit(rng.normal(size=(500, 16)))
    >>> X_new = rng.normal(size=(100, 16))
    >>> pi_gate = (X_new - sae.decoder_bias_) @ sae.encoder_.T + sae.encoder_bias_
    >>> bool(np.all(sae.transform(X_new)[pi_gate <= 0] == 0))  # a closed gate, a zero code
    True
    """

    #: The gates are decided row by row: the step forms the products one block of rows at a time.
    _rowwise_support = True

    _parameters = (
        Parameter(
            "alpha", 0.1, [Interval(Real, 0, None, closed="left")], "float",
            "L1 weight :math:`\\alpha` on :math:`\\mathrm{ReLU}(\\pi_{gate})`, in the units of ``X`` (as "
            ":class:`ReLUSAE`'s; with ``target_l0``: its starting value).",
        ),
    )
    _extra_parameters = ("r_mag_", "b_mag_")
    _preactivation_unit_parameters = ("encoder_bias_", "b_mag_")

    def _init_extra_parameters(self, xp, dtype, n_components, rng):
        """:math:`r_{mag} = 0` (the magnitude directions start as the gate's) and :math:`b_{mag} = 0`."""
        return {"r_mag_": xp.zeros(n_components, dtype=dtype), "b_mag_": xp.zeros(n_components, dtype=dtype)}

    def _encode(self, params, X, state=None):
        return gated_pairs(params, X - self._centre()).codes()

    def _keep_support(self, A, bias):
        """:math:`A = \\tilde x W^\\top` becomes :math:`\\mathbb{1}[A + b_{gate} > 0]\\, \\mathrm{ReLU}(e^{r_{mag}} A + b_{mag})` in place."""
        xp = get_namespace(A)
        gate = A > -bias
        A *= xp.exp(self.r_mag_).astype(A.dtype, copy=False)
        add_bias(A, self.b_mag_.astype(A.dtype, copy=False))
        xp.multiply(A, gate, out=A)
        xp.maximum(A, 0, out=A)

    def _loss_and_grads(self, params, X, Y, dead_mask):
        """The loss above and its hand-written gradient (see :func:`gated_loss_and_grads`)."""
        centre, tied = self._centre(), not self.is_transcoder_
        return gated_loss_and_grads(self._penalty_weight, params, X, Y, centre=centre, tied=tied)


def gated_loss_and_grads(alpha, params, X, Y, *, centre, tied):
    """Loss of one minibatch of a gated SAE and its gradient with respect to every parameter.

    With :math:`G = (\\hat y - y)/B` and :math:`G_{aux} = (\\hat y_{aux} - y)/B` (the auxiliary
    reconstruction through the frozen decoder), on the open pairs :math:`S_{gate}` and the
    support :math:`S \\subseteq S_{gate}`:
    :math:`\\partial L/\\partial \\pi_{mag} = (G W_{dec}^\\top)` on :math:`S`;
    :math:`\\partial L/\\partial \\pi_{gate} = (G_{aux} W_{dec}^\\top) + \\alpha \\|d_j\\|/B` on :math:`S_{gate}`;
    :math:`\\partial L/\\partial (\\tilde x W^\\top) = \\partial L/\\partial \\pi_{gate} + e^{r_{mag}}
    \\partial L/\\partial \\pi_{mag}`; :math:`\\partial L/\\partial r_{mag} = \\sum_n \\partial L/\\partial
    \\pi_{mag} \\, e^{r_{mag}} \\tilde x W^\\top`. All of them are sparse products over the pairs.

    Parameters
    ----------
    alpha : float
        The L1 weight.
    params : dict
        ``encoder_`` (m, d_in), ``encoder_bias_``, ``r_mag_``, ``b_mag_`` (m,), ``components_`` (m, d_out),
        ``decoder_bias_`` (d_out,).
    X : array of shape (B, d_in)
    Y : array of shape (B, d_out)
        The target (``X`` for an SAE).
    centre : array of shape (d_in,)
    tied : bool
        Whether the centre is the trainable ``decoder_bias_`` (an SAE).

    Returns
    -------
    StepResult
    """
    xp = get_namespace(X)
    n_rows = X.shape[0]
    W, D, b_dec = params["encoder_"], params["components_"], params["decoder_bias_"]
    m, dtype = D.shape[0], D.dtype
    X_centred = X - centre
    pairs = gated_pairs(params, X_centred)
    rows, cols, on = pairs.rows, pairs.cols, pairs.on

    Z = pairs.codes()
    residual = Z.dot(D)
    residual += b_dec
    residual -= Y
    squared_error = sum_of_squares(residual)
    gates = CodeMatrix(rows, cols, pairs.gate, pairs.shape)  # ReLU(pi_gate) on the open pairs
    aux_residual = gates.dot(D)  # decoded through the frozen decoder: no gradient to D or b_dec
    aux_residual += b_dec
    aux_residual -= Y
    norms = xp.sqrt(xp.sum(D * D, axis=1))
    l1 = float(xp.sum(pairs.gate * norms[cols]))
    loss = 0.5 * (squared_error + sum_of_squares(aux_residual)) / n_rows + alpha * l1 / n_rows

    G = residual / n_rows
    d_mag = sampled_row_dots(G, D, rows[on], cols[on])
    d_gate = sampled_row_dots(aux_residual / n_rows, D, rows, cols) + (alpha / n_rows) * norms[cols]
    scale = xp.exp(params["r_mag_"])
    d_projection = d_gate.copy()
    d_projection[on] += scale[cols[on]] * d_mag
    d_pre = CodeMatrix(rows, cols, d_projection, pairs.shape)
    gate_sums = _column_sums(cols, pairs.gate, m, dtype)
    grads = {
        "encoder_": d_pre.tdot(X_centred),
        "encoder_bias_": _column_sums(cols, d_gate, m, dtype),
        "r_mag_": _column_sums(cols[on], d_mag * scale[cols[on]] * pairs.projection[on], m, dtype),
        "b_mag_": _column_sums(cols[on], d_mag, m, dtype),
        "components_": Z.tdot(G) + (alpha / n_rows) * (gate_sums / xp.where(norms > 0, norms, 1))[:, None] * D,
        "decoder_bias_": xp.sum(G, axis=0),
    }
    if tied:  # x_centred = x - b_dec: the encoder's input moves with b_dec
        grads["decoder_bias_"] = grads["decoder_bias_"] - d_pre.column_sums() @ W
    return StepResult(loss=loss, squared_error=squared_error, n_active=int(Z.nnz), active_columns=cols[on], grads=grads)
