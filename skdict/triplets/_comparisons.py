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

That blindness, :math:`s(tx, ty, tz) = s(x, y, z)`, lets every triplet be computed at
unit scale: far from it (beyond :math:`2^{\pm 16}` in float32, :math:`2^{\pm 128}` in
float64) a triplet and then its differences are multiplied by exact powers of two, so
no difference overflows and no :math:`w` over- or underflows.
"""

from __future__ import annotations

from skdict._array import get_namespace
from skdict.ops.scaling import max_exponent


def _rows_at_unit_scale(*arrays):
    r"""The 2-D ``arrays`` with each row multiplied by one power of two bringing their largest |entry| into [0.5, 1).

    Rows already within :math:`2^{\pm m}` (:math:`m` an eighth of the dtype's exponent
    range, as in :func:`skdict.sparse_encode`) are left as they are.
    """
    xp = get_namespace(*arrays)
    exponent = max_exponent(arrays[0], axis=1)
    for array in arrays[1:]:
        exponent = xp.maximum(exponent, max_exponent(array, axis=1))
    exponent = xp.where(xp.abs(exponent) > xp.finfo(arrays[0].dtype).maxexp // 8, exponent, 0)
    return tuple(xp.ldexp(array, -exponent) for array in arrays)


def triplet_differences(T):
    r"""Differences :math:`A = X - Y`, :math:`B = X - Z` and scales :math:`w` of triplets ``T``, each at a safe scale.

    A triplet far from unit scale is rescaled (exact powers of two) before its
    differences are taken, and its differences again before :math:`w`: its row of
    :math:`A, B` is then :math:`t_i (x_i - y_i), t_i (x_i - z_i)` for some :math:`t_i > 0`,
    which leaves its contrast unchanged (see the module's docstring).

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
    (flat,) = _rows_at_unit_scale(T.reshape(T.shape[0], -1))
    T = flat.reshape(T.shape)
    A, B = _rows_at_unit_scale(T[:, 0] - T[:, 1], T[:, 0] - T[:, 2])
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
