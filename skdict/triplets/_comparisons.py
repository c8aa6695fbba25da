r"""The triplet model: contrasts of squared Φ-distances, shared by both solvers.

A triplet :math:`(x, y, z)` is turned into its two differences :math:`a = x - y`,
:math:`b = x - z` and its scale :math:`w = \lVert a \rVert^2 + \lVert b \rVert^2`.
Under a PSD feature matrix :math:`\Phi` its *contrast* is

.. math::

    s(\Phi) = \frac{b^\top \Phi b - a^\top \Phi a}{w}
            = \frac{\langle \Phi,\, b b^\top - a a^\top \rangle}{w},

positive when :math:`x` is closer to :math:`y` than to :math:`z` (label :math:`+1`),
negative for label :math:`-1`, zero for an equality (label 0). Dividing by :math:`w`
makes the contrast blind to the scale of the triplet: for :math:`\Phi = I` it lies
in :math:`[-1, 1]`. A triplet with :math:`w = 0` (``x = y = z``) has contrast 0.
"""

from __future__ import annotations

from skdict._array import get_namespace


def triplet_differences(T):
    r"""Differences :math:`A = X - Y`, :math:`B = X - Z` and scales :math:`w` of triplets ``T``.

    Parameters
    ----------
    T : array of shape (n_triplets, 3, n_features)
        Rows :math:`(x, y, z)` of each triplet.

    Returns
    -------
    A, B : arrays of shape (n_triplets, n_features)
    inverse_scale : array of shape (n_triplets,)
        :math:`1 / w`, and 0 where :math:`w = 0`.
    """
    xp = get_namespace(T)
    A = T[:, 0] - T[:, 1]
    B = T[:, 0] - T[:, 2]
    scale = xp.sum(A * A, axis=1) + xp.sum(B * B, axis=1)
    positive = scale > 0
    inverse_scale = positive / xp.where(positive, scale, 1)
    return A, B, inverse_scale.astype(T.dtype, copy=False)


def contrasts_from_matrix(A, B, inverse_scale, Phi):
    r"""Contrasts :math:`s_i = (b_i^\top \Phi b_i - a_i^\top \Phi a_i) / w_i` for a full matrix ``Phi``."""
    xp = get_namespace(A, B, Phi)
    quadratic = xp.sum((B @ Phi) * B, axis=1) - xp.sum((A @ Phi) * A, axis=1)
    return quadratic * inverse_scale


def contrasts_from_factor(A, B, inverse_scale, U):
    r"""Contrasts for :math:`\Phi = U U^\top`: :math:`s_i = (\lVert U^\top b_i \rVert^2 - \lVert U^\top a_i \rVert^2) / w_i`.

    Returns
    -------
    s : array of shape (n_triplets,)
    AU, BU : arrays of shape (n_triplets, rank)
        The projections :math:`A U` and :math:`B U`, reused by the gradient.
    """
    xp = get_namespace(A, B, U)
    AU = A @ U
    BU = B @ U
    s = (xp.sum(BU * BU, axis=1) - xp.sum(AU * AU, axis=1)) * inverse_scale
    return s, AU, BU


def comparison_rows(A, B, inverse_scale):
    r"""Rows :math:`\operatorname{vec}(b_i b_i^\top - a_i a_i^\top) / w_i`, so that ``rows @ vec(Φ)`` are the contrasts.

    Returns an array of shape (n_triplets, n_features ** 2); each row is a
    symmetric matrix flattened, so row-major and column-major ``vec`` agree.
    """
    n, p = A.shape
    outer = B[:, :, None] * B[:, None, :] - A[:, :, None] * A[:, None, :]
    return outer.reshape(n, p * p) * inverse_scale[:, None]
