"""Unit-norm dictionary atoms: normalisation and the tangent-space projection of gradients."""

from __future__ import annotations

from skdict._array import get_namespace


def normalize_rows(D, *, out=None, eps=None):
    """Scale each row of ``D`` to unit Euclidean norm (zero rows stay zero).

    Each row is first divided by its largest absolute entry, so the norm
    neither overflows nor underflows: rows of any finite scale are normalised,
    and a positive rescaling of a row does not change the result.

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
    if eps is None:
        eps = xp.finfo(D.dtype).tiny
    peak = xp.max(xp.abs(D), axis=1, keepdims=True)
    scaled = D / xp.where(peak > 0, peak, 1)
    relative_norm = xp.sqrt(xp.sum(scaled * scaled, axis=1, keepdims=True))  # in [1, sqrt(n_dims)] or 0
    too_small = relative_norm * peak <= eps
    result = xp.where(too_small, D, scaled / xp.where(relative_norm > 0, relative_norm, 1))
    if out is None:
        return result
    out[...] = result
    return out


def remove_parallel_component(grad, D):
    """Project each row of ``grad`` onto the tangent space of the unit sphere at ``D``'s row.

    :math:`g_i \\leftarrow g_i - (g_i^\\top d_i)\\, d_i` for unit rows :math:`d_i`, in place.
    Adam then moves the atom along the sphere, and a renormalisation after the
    step only corrects the second-order drift.
    """
    xp = get_namespace(grad, D)
    parallel = xp.sum(grad * D, axis=1, keepdims=True)
    grad -= parallel * D
    return grad
