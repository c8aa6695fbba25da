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
support is decided row by row sets ``_rowwise_support = True`` (TopK and ReLU do):
:math:`a` is then formed and reduced to its support one block of rows at a time, in
a block buffer per thread, so the step's extra memory is O(B x (d + k)) plus one block
per thread instead of O(B x n_components); the others (BatchTopK's batch-wide selection,
JumpReLU's threshold window) form the whole (B x n_components) matrix.
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
    probe: object = None  # (rows, cols) or None
    A: object = None  # the whole pre-activation matrix, kept only for _probe_grads
    aux: object = None  # (rows, cols, values) or None


def _forward_whole(model, params, X_centred, dead_mask):
    """The forward pass on the whole (B x m) pre-activation matrix."""
    n_rows = X_centred.shape[0]
    A = encode_centred(params, X_centred)
    rows, cols = model._support(A, training=True)
    penalty, penalty_grad, penalty_param_grads = model._sparsity_penalty(A, rows, cols, n_rows, params)
    aux = model._aux_support(A, dead_mask) if dead_mask is not None else None
    if aux is not None:
        aux = (aux[0], aux[1], A[aux[0], aux[1]])
    probe = model._probe_pairs(A)
    return _Forward(rows, cols, A[rows, cols], penalty, penalty_grad, penalty_param_grads, probe,
                    A if probe is not None else None, aux)


def _forward_in_blocks(model, params, X_centred, dead_mask):
    """The same forward pass, (rows x m) block by block: the (B x m) matrix never exists.

    Valid for activations whose support, penalty and auxiliary support are
    decided row by row and that probe no extra pairs (the model says so with
    ``_rowwise_support = True``); then the peak memory of the step is
    O(B x (d + k)) plus one block per thread. Each pool thread multiplies its
    own blocks (BLAS on one thread) into a buffer of its own and reduces them
    to their support there (:func:`~skdict.ops._threads.run_row_blocks`).
    """
    xp = get_namespace(X_centred)
    n_rows, n_components = X_centred.shape[0], params["encoder_"].shape[0]
    dtype = xp.result_type(X_centred, params["encoder_"])
    rows_per_block = max(1, _FORWARD_BLOCK // max(n_components, 1))
    buffers = {}  # one per thread: what is kept of a block is copied out of it (fancy indexing)

    def block_forward(start, stop):
        buffer = buffers.get(threading.get_ident())
        if buffer is None or buffer.shape[0] < stop - start:  # sized by the blocks this thread is handed
            buffer = buffers[threading.get_ident()] = xp.empty((stop - start, n_components), dtype=dtype)
        A = encode_centred(params, X_centred[start:stop], out=buffer[: stop - start])
        rows, cols = model._support(A, training=True)
        if model._probe_pairs(A) is not None:
            raise ValueError(f"{type(model).__name__} probes extra pairs: it cannot set _rowwise_support = True.")
        penalty, grad, param_grads = model._sparsity_penalty(A, rows, cols, n_rows, params)
        aux = model._aux_support(A, dead_mask) if dead_mask is not None else None
        if aux is not None:
            aux = (aux[0] + start, aux[1], A[aux[0], aux[1]])
        grad = xp.broadcast_to(xp.asarray(grad, dtype=A.dtype), rows.shape)
        return _Forward(rows + start, cols, A[rows, cols], penalty, grad, param_grads, aux=aux)

    blocks = run_row_blocks(block_forward, n_rows, rows_per_block, xp)
    penalty_param_grads = {}
    for block in blocks:
        for name, value in block.penalty_param_grads.items():
            penalty_param_grads[name] = penalty_param_grads[name] + value if name in penalty_param_grads else value
    joined = {name: xp.concatenate([getattr(block, name) for block in blocks])
              for name in ("rows", "cols", "values", "penalty_grad")}
    aux_blocks = [block.aux for block in blocks if block.aux is not None]
    aux = tuple(xp.concatenate([part[i] for part in aux_blocks]) for i in range(3)) if aux_blocks else None
    return _Forward(joined["rows"], joined["cols"], joined["values"], sum(block.penalty for block in blocks),
                    joined["penalty_grad"], penalty_param_grads, aux=aux)


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
        extra_grads = model._probe_grads(forward.A, probe[0], probe[1], dZ[rows.shape[0] :], n_rows)

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
