"""Unit-norm dictionary atoms: normalisation and the tangent-space projection of gradients."""

from __future__ import annotations

import numpy as np

from skdict._array import get_namespace


def normalize_rows(D, *, out=None, eps=None):
    """Scale each row of ``D`` to unit Euclidean norm (zero rows stay zero).

    Rows whose sum of squares is a normal, finite number are divided by its
    square root (one pass for the norms, one for the scaling). The others —
    whose squares overflow or underflow — are first divided by their largest
    absolute entry, so that rows of any finite scale are normalised, and a
    positive rescaling of a row does not change the result.

    Parameters
    ----------
    D : array of shape (n_atoms, n_dims)
    out : array or None
        Where to write the result (``out=D`` normalises in place).
    eps : float or None
        Rows whose norm is at most ``eps`` are left unscaled; default: the
        dtype's smallest normal number. ``eps=0`` normalises every nonzero row.
    """
    xp = get_namespace(D)
    finfo = xp.finfo(D.dtype)
    if eps is None:
        eps = finfo.tiny
    with np.errstate(over="ignore", under="ignore"):  # such rows are caught below (NumPy's flags; CuPy sets none)
        squares = xp.einsum("ij,ij->i", D, D)
    norms = xp.sqrt(squares)
    # a sum of squares above tiny / eps_machine lost nothing to underflowing squares
    direct = (squares > float(finfo.tiny) / float(finfo.eps)) & (squares < xp.inf) & (norms > eps)
    scale = xp.where(direct, 1.0 / xp.where(direct, norms, 1), 1).astype(D.dtype, copy=False)
    result = D * scale[:, None] if out is None else xp.multiply(D, scale[:, None], out=out)
    if not bool(xp.all(direct)):  # zero rows, or squares that overflowed or underflowed
        rescaled = ~direct
        result[rescaled] = _normalize_by_peak(D[rescaled], eps)
    return result


def _normalize_by_peak(D, eps):
    """:func:`normalize_rows` for rows whose squares overflow or underflow: scaled by their peak first."""
    xp = get_namespace(D)
    peak = xp.max(xp.abs(D), axis=1, keepdims=True)
    scaled = D / xp.where(peak > 0, peak, 1)
    relative_norm = xp.sqrt(xp.sum(scaled * scaled, axis=1, keepdims=True))  # in [1, sqrt(n_dims)] or 0
    too_small = relative_norm * peak <= eps
    return xp.where(too_small, D, scaled / xp.where(relative_norm > 0, relative_norm, 1))


def remove_parallel_component(grad, D):
    """Project each row of ``grad`` onto the tangent space of the unit sphere at ``D``'s row.

    :math:`g_i \\leftarrow g_i - (g_i^\\top d_i)\\, d_i` for unit rows :math:`d_i`, in place.
    Adam then moves the atom along the sphere, and a renormalisation after the
    step only corrects the second-order drift.
    """
    xp = get_namespace(grad, D)
    parallel = xp.einsum("ij,ij->i", grad, D)
    grad -= parallel[:, None] * D
    return grad
