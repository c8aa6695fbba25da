"""One minibatch of SAE training: forward pass, loss and hand-written gradients.

Notation (per minibatch of :math:`B` rows):

.. math::

    \\tilde x = x - c, \\quad a = \\tilde x W_{enc}^\\top + b_{enc}, \\quad
    z = \\sigma(a), \\quad \\hat y = z W_{dec} + b_{dec},

    L = \\frac{1}{B} \\sum_n \\tfrac12 \\|\\hat y_n - y_n\\|^2 + P(a) + \\alpha_{aux} L_{aux},

where :math:`c = b_{dec}` for an SAE (:math:`y = x`, the tied pre-bias
:math:`b_{pre}`) and a fixed input centre for a transcoder. Every activation
:math:`\\sigma` of the family is the identity on its support :math:`S` and zero
elsewhere, so the estimator only says which pairs :math:`(n, j)` are active and
what its penalty :math:`P` adds; the linear algebra lives here, once.

Only :math:`\\tilde x W_{enc}^\\top` is a dense (B x n_components) product. Codes,
decoding and every weight gradient go through :class:`~skdict.ops.codes.CodeMatrix`
and :func:`~skdict.ops.codes.sampled_row_dots`, O(nnz x n_features). A model whose
support is decided row by row sets ``_rowwise_support = True`` (TopK, ReLU, JumpReLU
with its threshold window): :math:`a` is then formed and reduced to its support one
block of rows at a time, in a block buffer per thread, so the step's extra memory is
O(B x (d + k)) plus one block per thread instead of O(B x n_components). BatchTopK's
batch-wide budget takes the same path in two passes: each row's candidates first,
then the selection over the batch, with the few rows that may hold more of the budget
than their candidates encoded again (:func:`_select_over_batch`). A model without the
flag forms the whole (B x n_components) matrix.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

from skdict._array import get_namespace
from skdict.ops.scaling import max_exponent
from skdict.ops._threads import run_blocks, run_row_blocks, split
from skdict.ops.codes import CodeMatrix, sampled_row_dots

#: Elements of one (rows x n_components) block of pre-activations in the row-blocked
#: forward pass (64 MiB of float32, 2048 rows at 8192 latents: as fast as the whole-batch
#: pass in paired measurements here; smaller blocks made the blocked GEMMs slower).
_FORWARD_BLOCK = 1 << 24


#: Elements of one float64 block when summing squares of a large array (8 MiB of scratch).
_SQUARES_BLOCK = 1 << 20


#: Below this a float64 sum of squares has lost digits to gradual underflow (2**-960, about 1e-289).
_SMALLEST_EXACT_SUM = 2.0**-960


def sum_of_squares(A):
    """:math:`\\sum A^2` as a Python float, accumulated in float64 whatever ``A``'s dtype.

    float32 squares overflow from :math:`|a| > 1.8 \\cdot 10^{19}` and a float32 sum loses
    digits over millions of terms; the rows are converted to float64 one block at a
    time, so the scratch stays small for a large ``A``. The result is ``inf`` only
    when the true sum exceeds float64's range (or ``A`` is not finite).
    """
    xp = get_namespace(A)
    if A.ndim < 2:
        A = A.reshape(1, -1)
    rows = max(1, _SQUARES_BLOCK // max(1, math.prod(A.shape[1:])))
    total = 0.0
    for start in range(0, A.shape[0], rows):
        block = A[start : start + rows].astype(xp.float64).ravel()
        total = total + xp.vdot(block, block)  # a device scalar: one read back, below
    return float(total)


def l2_norm(A):
    """:math:`\\|A\\|_2` without overflow or underflow for any finite ``A``.

    When the float64 sum of squares overflows, or is too small to keep its digits
    (data near 1e-160 and below), ``A`` is scaled by the power of two that brings its
    peak into [0.5, 1) (exact) and the norm scaled back.
    """
    xp = get_namespace(A)
    total = sum_of_squares(A)
    if math.isfinite(total) and total >= _SMALLEST_EXACT_SUM:
        return math.sqrt(total)
    peak = float(xp.max(xp.abs(A))) if A.size else 0.0
    if not math.isfinite(peak) or peak == 0.0:
        return peak  # inf or nan entries: the norm is not finite either; all zeros: 0
    exponent = int(max_exponent(A))
    return math.ldexp(math.sqrt(sum_of_squares(xp.ldexp(A, -exponent))), exponent)


def root_mean_square(A):
    """:math:`\\sqrt{\\mathrm{mean}(A^2)}` without overflow for any finite ``A`` (0 for an empty ``A``)."""
    return l2_norm(A) / math.sqrt(A.size) if A.size else 0.0


def preactivations(params, X, centre):
    """:math:`a = (x - c) W_{enc}^\\top + b_{enc}` and the centred input :math:`\\tilde x`."""
    X_centred = X - centre
    return encode_centred(params, X_centred), X_centred


def encode_centred(params, X_centred, out=None):
    """:math:`a = \\tilde x W_{enc}^\\top + b_{enc}` (the bias added by row blocks on threads), in ``out`` if given."""
    A = get_namespace(X_centred).matmul(X_centred, params["encoder_"].T, out=out)
    return add_bias(A, params["encoder_bias_"])


def add_bias(A, bias):
    """``A += bias`` on every row, in place (row blocks on threads); returns ``A``."""

    def work(start, stop):
        A[start:stop] += bias

    run_blocks(work, split(A.shape[0], A.shape[1]), get_namespace(A))
    return A


def pairs_above(A, level):
    """Row-sorted ``(rows, cols)`` of the entries of ``A`` above ``level`` (a scalar, or one per column).

    Through the flat positions of the mask: NumPy's 2-D ``nonzero`` took 4x as long here.
    """
    flat = get_namespace(A).flatnonzero(A > level)
    return flat // A.shape[1], flat % A.shape[1]


def gather_codes(A, rows, cols):
    """The code matrix :math:`z = a` on the support ``(rows, cols)``, zero elsewhere."""
    return CodeMatrix(rows, cols, A[rows, cols], A.shape)


@dataclass
class StepResult:
    """What one forward/backward pass reports to the training loop."""

    loss: float
    squared_error: float
    n_active: int
    active_columns: object
    grads: dict = field(repr=False)


@dataclass
class _Forward:
    """The forward pass up to the support: what the backward pass needs of :math:`a`."""

    rows: object
    cols: object
    values: object  # z = a on the support
    penalty: float
    penalty_grad: object  # dP/da on the support (a scalar or one value per pair)
    penalty_param_grads: dict
    probe: object = None  # (rows, cols, a on those pairs) or None
    aux: object = None  # (rows, cols, values) or None


def _pairs_with_values(A, pairs, row_offset=0):
    """``(rows + row_offset, cols, A[rows, cols])`` for ``pairs = (rows, cols)`` of ``A``; ``None`` stays ``None``."""
    if pairs is None:
        return None
    rows, cols = pairs[0], pairs[1]
    return rows + row_offset, cols, A[rows, cols]


def _forward_whole(model, params, X_centred, dead_mask):
    """The forward pass on the whole (B x m) pre-activation matrix."""
    n_rows = X_centred.shape[0]
    A = encode_centred(params, X_centred)
    rows, cols = model._support(A, training=True)
    penalty, penalty_grad, penalty_param_grads = model._sparsity_penalty(A, rows, cols, n_rows, params)
    aux = _pairs_with_values(A, model._aux_support(A, dead_mask) if dead_mask is not None else None)
    return _Forward(rows, cols, A[rows, cols], penalty, penalty_grad, penalty_param_grads,
                    _pairs_with_values(A, model._probe_pairs(A)), aux)


def encode_in_row_blocks(params, X_centred, reduce):
    """``[reduce(A_block, start) for each block]``, :math:`a` formed one block of rows at a time.

    Each pool thread multiplies its own blocks (BLAS on one thread) into a
    buffer of its own, sized by the blocks it is handed
    (:func:`~skdict.ops._threads.run_row_blocks`); ``reduce`` must copy out what
    it keeps of ``A_block`` (fancy indexing does), since the buffer is reused.
    Results in block order.
    """
    xp = get_namespace(X_centred)
    n_components = params["encoder_"].shape[0]
    dtype = xp.result_type(X_centred, params["encoder_"])
    buffers = {}

    def block(start, stop):
        buffer = buffers.get(threading.get_ident())
        if buffer is None or buffer.shape[0] < stop - start:
            buffer = buffers[threading.get_ident()] = xp.empty((stop - start, n_components), dtype=dtype)
        return reduce(encode_centred(params, X_centred[start:stop], out=buffer[: stop - start]), start)

    return run_row_blocks(block, X_centred.shape[0], max(1, _FORWARD_BLOCK // max(n_components, 1)), xp)


def _joined(parts):
    """Concatenate a list of equal-length tuples of arrays field by field; ``None`` when there are none."""
    parts = [part for part in parts if part is not None]
    if not parts:
        return None
    xp = get_namespace(parts[0][0])
    return tuple(xp.concatenate([part[i] for part in parts]) for i in range(len(parts[0])))


def _forward_in_blocks(model, params, X_centred, dead_mask):
    """The same forward pass, (rows x m) block by block: the (B x m) matrix never exists.

    Valid for models that say so with ``_rowwise_support = True``: their
    penalty, auxiliary support and probe pairs are decided row by row, and so is
    their support, or a first row-local pass keeps candidates from which the
    batch-wide support is selected (:func:`_select_over_batch`). The peak memory
    of the step is then O(B x (d + k)) plus one block per thread.
    """
    xp = get_namespace(X_centred)
    n_rows = X_centred.shape[0]

    def block_forward(A, start):
        rows, cols, bound = model._support_candidates(A)
        penalty, grad, param_grads = model._sparsity_penalty(A, rows, cols, n_rows, params)
        aux = _pairs_with_values(A, model._aux_support(A, dead_mask) if dead_mask is not None else None, start)
        probe = _pairs_with_values(A, model._probe_pairs(A), start)
        grad = xp.broadcast_to(xp.asarray(grad, dtype=A.dtype), rows.shape)
        return _Forward(rows + start, cols, A[rows, cols], penalty, grad, param_grads, probe, aux), bound

    blocks = encode_in_row_blocks(params, X_centred, block_forward)
    penalty_param_grads = {}
    for block, _ in blocks:
        for name, value in block.penalty_param_grads.items():
            penalty_param_grads[name] = penalty_param_grads[name] + value if name in penalty_param_grads else value
    rows, cols, values, penalty_grad = _joined(
        [(block.rows, block.cols, block.values, block.penalty_grad) for block, _ in blocks]
    )
    forward = _Forward(rows, cols, values, sum(block.penalty for block, _ in blocks), penalty_grad,
                       penalty_param_grads, _joined([block.probe for block, _ in blocks]),
                       _joined([block.aux for block, _ in blocks]))
    bounds = [bound for _, bound in blocks]
    if bounds[0] is None:
        return forward  # the candidates are the support
    return _select_over_batch(model, params, X_centred, forward, xp.concatenate(bounds))


def _select_over_batch(model, params, X_centred, forward, bounds):
    """The batch-wide support from the candidates of the row-local pass, exactly.

    ``model._select_candidates(values, n_rows)`` picks the support among the
    candidate values and returns the level :math:`L` above which every entry
    :math:`a_{nj} > L` must have been a candidate. A row whose largest
    non-candidate entry may exceed :math:`L` (``bounds[n] > L``) is encoded
    again and all its entries above :math:`L` become its candidates; one such
    pass suffices, because adding candidates can only raise the level. The
    selection is then made again over the completed candidates, and put in
    row-major order (whatever order the candidates came in).
    """
    xp = get_namespace(X_centred)
    n_rows = X_centred.shape[0]
    if forward.penalty != 0 or forward.penalty_param_grads:
        raise ValueError(
            f"{type(model).__name__} selects its support over the batch and has a sparsity penalty: the row-blocked "
            "step cannot evaluate the penalty on the final support; set _rowwise_support = False."
        )
    rows, cols, values = forward.rows, forward.cols, forward.values
    keep, level = model._select_candidates(values, n_rows)
    revisit = xp.flatnonzero(bounds > level)
    if revisit.shape[0]:
        def above_level(A, start):
            hit_rows, hit_cols = pairs_above(A, level)
            return revisit[hit_rows + start], hit_cols, A[hit_rows, hit_cols]

        revisited = xp.zeros(n_rows, dtype=bool)
        revisited[revisit] = True
        stay = ~revisited[rows]
        extra = _joined(encode_in_row_blocks(params, X_centred[revisit], above_level))
        rows, cols, values = (xp.concatenate([part[stay], more]) for part, more in zip((rows, cols, values), extra))
        keep, _ = model._select_candidates(values, n_rows)
    rows, cols, values = rows[keep], cols[keep], values[keep]
    order = xp.argsort(rows * params["encoder_"].shape[0] + cols)  # row-major, as the dense selection: one order
    forward.rows, forward.cols, forward.values = rows[order], cols[order], values[order]
    forward.penalty_grad = 0.0
    return forward


def loss_and_grads(model, params, X, Y, *, centre, tied, dead_mask=None):
    """Loss of one minibatch and its gradient with respect to every parameter.

    Parameters
    ----------
    model : SAE estimator
        Provides the activation hooks ``_support``, ``_sparsity_penalty``,
        ``_probe_pairs``, ``_probe_grads`` and ``_aux_support`` (see
        :class:`skdict.sae._base.BaseSparseAutoencoder`).
    params : dict of str to array
        ``encoder_`` (m, d_in), ``encoder_bias_`` (m,), ``components_`` (m, d_out),
        ``decoder_bias_`` (d_out,) and any extra parameter of the activation.
    X : array of shape (B, d_in)
    Y : array of shape (B, d_out)
        The reconstruction target (``X`` itself for an SAE).
    centre : array of shape (d_in,)
        :math:`c`, subtracted from ``X`` before encoding.
    tied : bool
        Whether :math:`c` is the trainable ``decoder_bias_`` (an SAE).
    dead_mask : bool array of shape (m,) or None
        Latents counted as dead, for the auxiliary loss.

    Returns
    -------
    StepResult
    """
    xp = get_namespace(X)
    n_rows = X.shape[0]
    W_dec = params["components_"]

    X_centred = X - centre
    rowwise = getattr(model, "_rowwise_support", False)
    forward = (_forward_in_blocks if rowwise else _forward_whole)(model, params, X_centred, dead_mask)
    rows, cols = forward.rows, forward.cols
    shape = (n_rows, W_dec.shape[0])
    Z = CodeMatrix(rows, cols, forward.values, shape)
    fit = model._reconstruction(Z, params, Y)  # the reconstruction term (of every prefix, for Matryoshka)
    residual, squared_error = fit.residual, fit.squared_error
    penalty_grad, penalty_param_grads = forward.penalty_grad, forward.penalty_param_grads
    loss = fit.loss + forward.penalty
    grad_dec, grad_dec_bias = fit.grad_components, fit.grad_decoder_bias

    probe = forward.probe
    pair_rows, pair_cols = rows, cols
    if probe is not None:
        pair_rows = xp.concatenate([rows, probe[0]])
        pair_cols = xp.concatenate([cols, probe[1]])
    dZ = fit.code_grads(pair_rows, pair_cols)
    dA_values = [dZ[: rows.shape[0]] + penalty_grad]
    dA_rows, dA_cols = [rows], [cols]

    extra_grads = {}
    if probe is not None:
        extra_grads = model._probe_grads(probe[2], probe[0], probe[1], dZ[rows.shape[0] :], n_rows)

    if forward.aux is not None:
        aux_rows, aux_cols, aux_values = forward.aux
        Z_aux = CodeMatrix(aux_rows, aux_cols, aux_values, shape)
        # L_aux = 1/(2B) sum ||e_hat - e||^2 with e = y - y_hat held fixed (detached)
        # and e_hat = z_aux W_dec without any bias (Gao et al., 2024, AuxK).
        aux_residual = Z_aux.dot(W_dec)
        aux_residual += residual
        coef = model.aux_coef
        loss += coef * 0.5 * sum_of_squares(aux_residual) / n_rows
        G_aux = (coef / n_rows) * aux_residual
        grad_dec += Z_aux.tdot(G_aux)
        dA_values.append(sampled_row_dots(G_aux, W_dec, aux_rows, aux_cols))
        dA_rows.append(aux_rows)
        dA_cols.append(aux_cols)

    if len(dA_values) > 1:
        order = xp.argsort(xp.concatenate(dA_rows), kind="stable")
        dA = CodeMatrix(
            xp.concatenate(dA_rows)[order],
            xp.concatenate(dA_cols)[order],
            xp.concatenate(dA_values)[order],
            shape,
        )
    else:
        dA = Z.with_values(dA_values[0])  # same support: reuses Z's index structures

    grad_enc_bias = dA.column_sums()
    grads = {
        "encoder_": dA.tdot(X_centred),
        "encoder_bias_": grad_enc_bias,
        "components_": grad_dec,
        "decoder_bias_": grad_dec_bias,
    }
    if tied:
        # x_centred = x - b_dec, so dL/db_dec also gets -sum_n dA_n W_enc.
        grads["decoder_bias_"] = grad_dec_bias - grad_enc_bias @ params["encoder_"]
    grads.update(extra_grads)
    for name, grad in penalty_param_grads.items():
        grads[name] += grad
    return StepResult(
        loss=loss,
        squared_error=squared_error,
        n_active=int(rows.shape[0]),
        active_columns=cols,
        grads=grads,
    )
