r"""One-shot codes from the correlations :math:`C = X D^\top`: keep the k largest per row.

(The other one-shot code, soft thresholding of :math:`C`, is
:func:`skdict.ops.fista.soft_threshold`, FISTA's proximal operator.)
"""

from __future__ import annotations

from skdict._array import get_namespace
from skdict.ops.topk import row_topk


def topk_codes(C, k, *, positive=False):
    r"""The ``k`` largest entries of each row of ``C``, as (index, value) pairs.

    Signed: the ``k`` entries of largest :math:`|c_{nj}|`, keeping their sign.
    Positive: the ``k`` largest :math:`c_{nj}`, clipped at 0 (a row with fewer
    than ``k`` positive entries gets zeros for the rest).

    Parameters
    ----------
    C : array of shape (n, n_components)
        Correlations :math:`c_{nj} = d_j^\top x_n`.
    k : int
        ``1 <= k <= n_components``.
    positive : bool, default=False

    Returns
    -------
    indices : int array of shape (n, k)
        Distinct within each row, in no particular order.
    values : array of shape (n, k)
    """
    xp = get_namespace(C)
    indices, _ = row_topk(C if positive else xp.abs(C), k)
    values = xp.take_along_axis(C, indices, axis=1)
    if positive:
        values = xp.maximum(values, 0)
    return indices, values
