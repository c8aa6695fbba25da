"""ReLU sparse autoencoder with an L1 penalty (Bricken et al., 2023; Cunningham et al., 2023)."""

from __future__ import annotations

from numbers import Real

import numpy as np

from sklearn.utils._param_validation import Interval

from skdict._array import get_namespace
from skdict.sae._base import BaseSparseAutoencoder
from skdict.sae._l0_target import L0TargetMixin
from skdict.sae._parameters import Parameter
from skdict.sae.crosscoder import check_layer_sizes, decoder_layer_norms


class ReLUSAE(L0TargetMixin, BaseSparseAutoencoder):
    """Sparse autoencoder with ReLU codes and an L1 penalty.

    .. math::

        z = \\mathrm{ReLU}((x - b_{dec}) W_{enc}^\\top + b_{enc}), \\qquad
        L = \\frac{1}{B}\\sum_n \\tfrac12\\|x_n - \\hat x_n\\|^2 + \\alpha \\|z_n\\|_1 .

    With unit-norm atoms this is scikit-learn's sparse-coding objective
    (:math:`\\tfrac12\\|x - zD\\|^2 + \\alpha\\|z\\|_1`) with an amortised encoder,
    so ``alpha`` means what it means in :class:`sklearn.linear_model.Lasso`
    (per sample, in the units of ``X``).

    {parameters}

    Attributes
    ----------
    alpha_ : float
        The L1 weight the model was trained at: ``alpha``, or where ``target_l0`` steered it.
    {shared_attributes}

    See Also
    --------
    JumpReLUSAE : an L0 penalty and a learned threshold per latent.
    sklearn.linear_model.Lasso : the same objective for a fixed dictionary, solved per sample.
    skdict.sae.crosscoder.stack_layers : the input of a crosscoder (with ``layer_sizes``).

    Examples
    --------
    >>> import numpy as np
    >>> from skdict import ReLUSAE
    >>> X = np.random.default_rng(0).normal(size=(500, 16))
    >>> def mean_l0(alpha):
    ...     codes = ReLUSAE(n_components=64, alpha=alpha, random_state=0).fit(X).transform(X)
    ...     return float((codes != 0).sum(axis=1).mean())
    >>> bool(mean_l0(1.0) < mean_l0(0.1))  # a larger L1 weight, sparser codes
    True
    """

    #: The support is decided row by row: the training step forms the pre-activations one block of
    #: rows at a time (memory O(batch x (n_features + k)) plus one block; see skdict.sae._step).
    _rowwise_support = True

    _parameters = (
        Parameter(
            "alpha", 0.1, [Interval(Real, 0, None, closed="left")], "float",
            "L1 weight :math:`\\alpha`, in the units of ``X`` (with ``target_l0``: its starting value).",
        ),
        Parameter(
            "layer_sizes", None, ["array-like", None], "sequence of int or None",
            "For a crosscoder (see :mod:`skdict.sae.crosscoder`): the widths of the layers stacked in the "
            "reconstruction target (``X``, or ``Y`` for a transcoder), in order. Each code is then weighted by its "
            "atom's summed per-layer norms, :math:`\\alpha \\sum_j z_j \\sum_l \\|d_j^{(l)}\\|` (between 1 and "
            ":math:`\\sqrt{L}` times the plain L1, as atoms are unit). ``None``: one layer, the plain L1 penalty.",
        ),
    )

    def _check_hyperparameters(self, n_components):
        super()._check_hyperparameters(n_components)
        self.layer_sizes_ = None
        if self.layer_sizes is not None:
            self.layer_sizes_ = check_layer_sizes(self.layer_sizes, self.n_targets_)

    def _support(self, A, training):
        return get_namespace(A).nonzero(A > 0)

    def _sparsity_penalty(self, A, rows, cols, n_rows, params):
        xp = get_namespace(A)
        codes = A[rows, cols]
        if self.layer_sizes_ is None:
            return self._penalty_weight * float(xp.sum(codes)) / n_rows, self._penalty_weight / n_rows, {}
        # P = (alpha/B) sum_nj z_nj w_j with w_j = sum_l ||d_j^(l)||:
        # dP/dz_nj = alpha w_j / B and dP/dd_j^(l) = (alpha/B) (sum_n z_nj) d_j^(l) / ||d_j^(l)||.
        D = params["components_"]
        norms = decoder_layer_norms(D, self.layer_sizes_)
        weights = xp.sum(norms, axis=1)
        penalty = self._penalty_weight * float(xp.sum(codes * weights[cols])) / n_rows
        code_sums = xp.bincount(cols, weights=codes, minlength=D.shape[0]).astype(D.dtype, copy=False)
        scale = (self._penalty_weight / n_rows) * code_sums[:, None] / xp.where(norms > 0, norms, 1)
        widths = xp.asarray(np.repeat(np.arange(len(self.layer_sizes_)), self.layer_sizes_))
        grad_D = D * scale[:, widths]
        return penalty, (self._penalty_weight / n_rows) * weights[cols], {"components_": grad_D}
