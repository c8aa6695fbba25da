"""Pieces shared by the TopK-style SAEs: top-k pairs and the AuxK loss on dead latents."""

from __future__ import annotations

from numbers import Integral, Real

from sklearn.utils._param_validation import Interval

from skdict._array import get_namespace
from skdict.ops.topk import row_topk
from skdict.sae._parameters import Parameter


def positive_topk_pairs(A, k, columns=None):
    """Row-sorted ``(rows, cols)`` of each row's ``k`` largest entries that are also > 0.

    This is :math:`\\mathrm{ReLU}(\\mathrm{TopK}(a))`'s support (Gao et al., 2024).
    With ``columns``, the selection runs over ``A[:, columns]`` only and the
    returned ``cols`` index ``A``.
    """
    xp = get_namespace(A)
    sub = A if columns is None else A[:, columns]
    indices, values = row_topk(sub, k)
    keep = (values > 0).reshape(-1)
    rows = xp.repeat(xp.arange(A.shape[0]), indices.shape[1])[keep]
    cols = indices.reshape(-1)[keep]
    if columns is not None:
        cols = columns[cols]
    return rows, cols


class AuxKMixin:
    """The AuxK auxiliary loss (Gao et al., 2024) for TopK-style SAEs.

    On latents dead for ``dead_after`` samples, the top ``k_aux`` pre-activations of
    each row reconstruct the main model's residual :math:`e = y - \\hat y` (held
    fixed, no decoder bias); :math:`\\alpha_{aux}\\,\\tfrac{1}{2B}\\sum_n\\|e_n - \\hat e_n\\|^2`
    is added to the loss so that dead latents get a gradient back toward the data.
    """

    _parameters = (
        Parameter(
            "k_aux", None, [Interval(Integral, 1, None, closed="left"), None], "int or None",
            "Dead latents used by AuxK per sample; ``None`` means ``n_targets // 2``.",
        ),
        Parameter(
            "aux_coef", 1 / 32, [Interval(Real, 0, None, closed="left")], "float",
            "Weight :math:`\\alpha_{aux}` of the AuxK loss (0 disables it).", shown_default="1/32",
        ),
    )

    def _resolve_k_aux(self):
        """``k_aux=None`` means half the target width (Gao et al. use d/2)."""
        return max(1, self.n_targets_ // 2) if self.k_aux is None else self.k_aux

    def _aux_support(self, A, dead_mask):
        if self.aux_coef == 0:
            return None
        xp = get_namespace(A)
        dead = xp.flatnonzero(dead_mask)
        if dead.shape[0] == 0:
            return None
        return positive_topk_pairs(A, min(self._resolve_k_aux(), dead.shape[0]), columns=dead)
