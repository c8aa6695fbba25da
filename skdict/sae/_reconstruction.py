"""The reconstruction term of the SAE loss, over nested prefixes of the dictionary (one prefix: the plain loss).

:func:`~skdict.sae._step.loss_and_grads` asks the model for it (``model._reconstruction``):
every SAE uses one prefix, the whole dictionary; :class:`~skdict.MatryoshkaSAE` its nested widths.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from skdict._array import get_namespace
from skdict.ops.codes import CodeMatrix, sampled_row_dots
from skdict.sae._step import sum_of_squares


@dataclass
class Reconstruction:
    """The reconstruction term of the loss, its gradients, and :math:`\\partial L/\\partial z` on request.

    ``upstreams`` holds, per group of latents ``[lo, hi)``, the gradient :math:`C` of the loss
    with respect to the reconstructions those latents write into (B x d_out); :meth:`code_grads`
    turns it into :math:`\\partial L/\\partial z_{nj} = C_n \\cdot W_{dec,j}` at given pairs.
    """

    residual: object  # y_hat - y of the whole dictionary, (B, d_out)
    squared_error: float  # ||y_hat - y||^2 of the whole dictionary, summed over the rows
    loss: float
    grad_components: object
    grad_decoder_bias: object
    upstreams: list = field(repr=False)  # [(lo, hi, C)]
    W_dec: object = field(repr=False)

    def code_grads(self, rows, cols):
        """:math:`\\partial L/\\partial z` at the pairs ``(rows, cols)`` (any order), shape (n_pairs,)."""
        if len(self.upstreams) == 1:
            return sampled_row_dots(self.upstreams[0][2], self.W_dec, rows, cols)
        xp = get_namespace(self.W_dec)
        dZ = xp.empty(rows.shape[0], dtype=self.W_dec.dtype)
        for lo, hi, C, in_group in _column_groups(cols, self.upstreams, xp):
            dZ[in_group] = sampled_row_dots(C, self.W_dec[lo:hi], rows[in_group], cols[in_group] - lo)
        return dZ


def _column_groups(cols, groups, xp):
    """Yield ``(lo, hi, payload, positions of the cols in [lo, hi))`` for contiguous ``groups`` of ``(lo, hi, payload)``."""
    group_of = xp.searchsorted(xp.asarray([hi for _, hi, _ in groups]), cols, side="right")
    for g, (lo, hi, payload) in enumerate(groups):
        yield lo, hi, payload, xp.flatnonzero(group_of == g)


def reconstruction(Z, W_dec, b_dec, Y, prefixes=None):
    """The reconstruction loss of the codes, summed over nested prefixes of the dictionary, and its gradients.

    .. math::

        L_{rec} = \\sum_{g=1}^{G} \\frac{1}{2B} \\sum_n \\|z_{n,:m_g} W_{dec}[:m_g] + b_{dec} - y_n\\|^2

    for prefix widths :math:`m_1 < \\dots < m_G = m` (Bussmann et al., 2025); one prefix
    (``prefixes=None``) is the plain loss :math:`\\tfrac{1}{2B}\\sum_n\\|\\hat y_n - y_n\\|^2`. The
    residuals are cumulative, :math:`r_g = r_{g-1} + z_{[m_{g-1}, m_g)} W_{dec}[m_{g-1}:m_g]` from
    :math:`r_0 = b_{dec} - y`, so decoding costs one sparse product in all. Latent :math:`j` of
    group :math:`g` is in every prefix from the :math:`g`-th on and sees the suffix sum
    :math:`C_g = \\tfrac1B \\sum_{h \\ge g} r_h`: :math:`\\partial L/\\partial z_{nj} = C_{g,n} \\cdot W_{dec,j}`,
    :math:`\\partial L/\\partial W_{dec,j} = \\sum_n z_{nj} C_{g,n}`, :math:`\\partial L/\\partial b_{dec} = \\sum_n C_{1,n}`.
    Extra memory: :math:`G` (B x d_out) residuals.

    Parameters
    ----------
    Z : CodeMatrix of shape (B, m)
    W_dec : array of shape (m, d_out)
    b_dec : array of shape (d_out,)
    Y : array of shape (B, d_out)
    prefixes : sequence of int or None
        Strictly increasing prefix widths ending at ``m``.

    Returns
    -------
    Reconstruction
        ``residual`` and ``squared_error`` are those of the whole dictionary (the last prefix).
    """
    xp = get_namespace(W_dec)
    n_rows, m = Z.shape
    edges = [0, *(prefixes if prefixes is not None else (m,))]
    if len(edges) == 2:
        residual = Z.dot(W_dec)
        residual += b_dec
        residual -= Y
        squared_error = sum_of_squares(residual)
        C = residual / n_rows
        return Reconstruction(residual, squared_error, 0.5 * squared_error / n_rows, Z.tdot(C),
                              xp.sum(C, axis=0), [(0, m, C)], W_dec)
    groups = [(lo, hi, None) for lo, hi in zip(edges[:-1], edges[1:])]
    codes = [CodeMatrix(Z.rows[at], Z.cols[at] - lo, Z.values[at], (n_rows, hi - lo))
             for lo, hi, _, at in _column_groups(Z.cols, groups, xp)]
    residuals, residual = [], b_dec - Y
    for (lo, hi, _), Z_g in zip(groups, codes):
        residual = residual + Z_g.dot(W_dec[lo:hi])
        residuals.append(residual)
    errors = [sum_of_squares(r) for r in residuals]
    upstreams = [None] * len(groups)
    grad_components = xp.empty_like(W_dec)
    C = residuals[-1] / n_rows  # the whole dictionary's residual is returned: C_G is a new array
    for g in range(len(groups) - 1, -1, -1):
        if g < len(groups) - 1:
            C = residuals[g]  # r_g is not needed any more: C_g = r_g / B + C_{g+1}, in its place
            C /= n_rows
            C += upstreams[g + 1][2]
        lo, hi, _ = groups[g]
        upstreams[g] = (lo, hi, C)
        grad_components[lo:hi] = codes[g].tdot(C)
    return Reconstruction(residuals[-1], errors[-1], 0.5 * sum(errors) / n_rows, grad_components,
                          xp.sum(C, axis=0), upstreams, W_dec)
