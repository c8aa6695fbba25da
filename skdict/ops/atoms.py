"""Unit-norm dictionary atoms: normalisation and the tangent-space projection of gradients."""

from __future__ import annotations

from skdict._array import get_namespace


def normalize_rows(D, *, out=None, eps=None):
    """Scale each row of ``D`` to unit Euclidean norm (zero rows stay zero).

    Parameters
    ----------
    D : array of shape (n_atoms, n_dims)
    out : array or None
        Where to write the result (``out=D`` normalises in place).
    eps : float or None
        Rows with a norm below ``eps`` are left unscaled; default: the dtype's tiny.
    """
    xp = get_namespace(D)
    if eps is None:
        eps = xp.finfo(D.dtype).tiny
    norms = xp.sqrt(xp.sum(D * D, axis=1, keepdims=True))
    norms = xp.where(norms > eps, norms, 1)
    if out is None:
        return D / norms
    xp.divide(D, norms, out=out)
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
