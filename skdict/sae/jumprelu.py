"""JumpReLU sparse autoencoder with an L0 penalty (Rajamanoharan et al., 2024)."""

from __future__ import annotations

from numbers import Real

from sklearn.utils._param_validation import Interval, StrOptions

from skdict._array import get_namespace
from skdict.sae._base import BaseSparseAutoencoder
from skdict.sae._l0_target import L0TargetMixin
from skdict.sae._parameters import Parameter
from skdict.sae._step import pairs_above

#: Default bandwidth for data whose per-coordinate RMS is 1: ten times the paper's 0.001,
#: because scikit-learn-sized data sets give thousands, not millions, of steps, and the
#: threshold only learns from pre-activations that fall inside the window.
DEFAULT_BANDWIDTH = 1e-2
#: The paper's initial threshold, for data whose per-coordinate RMS is 1.
PAPER_THRESHOLD_INIT = 1e-3


class JumpReLUSAE(L0TargetMixin, BaseSparseAutoencoder):
    """Sparse autoencoder with JumpReLU codes, a learned threshold per latent and an L0 penalty.

    .. math::

        z_j = a_j\\, H(a_j - \\theta_j), \\qquad
        L = \\frac{1}{B}\\sum_n \\tfrac12\\|x_n - \\hat x_n\\|^2 + \\lambda \\|z_n\\|_0 .

    The thresholds :math:`\\theta` are raw (not log) parameters, kept :math:`\\ge 0`.
    The gradient reaches them through the straight-through estimator with the
    rectangle kernel :math:`K(u) = \\mathbb{1}[|u| < 1/2]` and bandwidth :math:`\\varepsilon`:

    .. math::

        \\frac{\\partial z_j}{\\partial \\theta_j} := -\\frac{\\theta_j}{\\varepsilon}
        K\\!\\left(\\frac{a_j - \\theta_j}{\\varepsilon}\\right), \\qquad
        \\frac{\\partial H(a_j - \\theta_j)}{\\partial \\theta_j} := -\\frac{1}{\\varepsilon}
        K\\!\\left(\\frac{a_j - \\theta_j}{\\varepsilon}\\right),

    while :math:`\\partial z_j / \\partial a_j = H(a_j - \\theta_j)` exactly.

    {parameters}

    Attributes
    ----------
    threshold_ : array of shape (n_components,)
        Thresholds :math:`\\theta`.
    bandwidth_ : float
        The bandwidth used.
    alpha_ : float
        The L0 weight the model was trained at: ``alpha``, or where ``target_l0`` steered it.
    {shared_attributes}

    See Also
    --------
    ReLUSAE : the L1 penalty, with a threshold of zero.
    TopKSAE : a fixed number of latents per sample instead of a penalty.

    Examples
    --------
    >>> import numpy as np
    >>> from skdict import JumpReLUSAE
    >>> X = np.random.default_rng(0).normal(size=(500, 16))
    >>> thresholds = JumpReLUSAE(n_components=64, alpha=0.01, random_state=0).fit(X).threshold_
    >>> thresholds.shape, bool(thresholds.min() >= 0)  # one learned threshold per latent, kept >= 0
    ((64,), True)
    """

    _parameters = (
        Parameter(
            "alpha", 0.1, [Interval(Real, 0, None, closed="left")], "float",
            "L0 weight :math:`\\lambda` (per active latent, in squared units of ``X``; the paper's :math:`\\lambda` "
            "is twice this, as its loss has no 1/2; with ``target_l0``: its starting value).",
        ),
        Parameter(
            "bandwidth", "auto", [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})], 'float or "auto"',
            ":math:`\\varepsilon`; ``\"auto\"`` is 0.01 times the data's per-coordinate RMS. The paper uses 0.001 on "
            "data normalised to RMS 1 over millions of steps; a wider window lets the thresholds learn in the few "
            "thousand steps of a scikit-learn-sized fit. Set 0.001 times the RMS to match the paper.",
        ),
        Parameter(
            "threshold_init", "auto", [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})], 'float or "auto"',
            "Initial :math:`\\theta`; ``\"auto\"`` is 0.001 times the data's RMS, as above.",
        ),
    )
    _extra_parameters = ("threshold_",)
    _preactivation_unit_parameters = ("encoder_bias_", "threshold_")
    #: With ``target_l0`` the L0 weight is a signed multiplier (see skdict.sae._l0_target).
    _signed_coefficient = True
    #: Support, L0 penalty and threshold window are decided row by row: the training step forms the
    #: pre-activations one block of rows at a time (see skdict.sae._step).
    _rowwise_support = True

    def _init_extra_parameters(self, xp, dtype, n_components, rng):
        scale = self._data_scale
        theta = PAPER_THRESHOLD_INIT * scale if self.threshold_init == "auto" else float(self.threshold_init)
        return {"threshold_": xp.full(n_components, theta, dtype=dtype)}

    def _init_training_scalars(self):
        """:math:`\\varepsilon` (``bandwidth_``) from the data scale, also for thresholds given from outside."""
        self.bandwidth_ = DEFAULT_BANDWIDTH * self._data_scale if self.bandwidth == "auto" else float(self.bandwidth)

    def _support(self, A, training):
        return pairs_above(A, self.threshold_)

    def _sparsity_penalty(self, A, rows, cols, n_rows, params):
        return self._penalty_weight * rows.shape[0] / n_rows, 0.0, {}

    def _probe_pairs(self, A):
        """The window :math:`\\theta_j - \\varepsilon/2 < a_{nj} < \\theta_j + \\varepsilon/2`, row by row.

        One comparison pass over ``A`` (its lower edge, which few entries pass), then the
        upper edge on those pairs only: no (B x m) temporaries.
        """
        half = 0.5 * self.bandwidth_
        rows, cols = pairs_above(A, self.threshold_ - half)
        inside = A[rows, cols] < self.threshold_[cols] + half
        return rows[inside], cols[inside]

    def _probe_grads(self, values, rows, cols, dZ, n_rows):
        """dL/dθ_j = Σ_n K(.)·(−1/ε)·(θ_j dL/dz_nj + λ/B) over the window pairs."""
        xp = get_namespace(dZ)
        theta = self.threshold_
        weights = -(theta[cols] * dZ + self._penalty_weight / n_rows) / self.bandwidth_
        grad = xp.bincount(cols, weights=weights, minlength=theta.shape[0])
        return {"threshold_": grad.astype(theta.dtype, copy=False)}

    def _after_step(self, result):
        xp = get_namespace(self.threshold_)
        xp.maximum(self.threshold_, 0, out=self.threshold_)
