"""JumpReLU sparse autoencoder with an L0 penalty (Rajamanoharan et al., 2024)."""

from __future__ import annotations

from numbers import Real

from sklearn.utils._param_validation import Interval, StrOptions

from skdict._array import get_namespace
from skdict.sae._base import BaseSparseAutoencoder, with_training_parameters

#: Default bandwidth for data whose per-coordinate RMS is 1: ten times the paper's 0.001,
#: because scikit-learn-sized data sets give thousands, not millions, of steps, and the
#: threshold only learns from pre-activations that fall inside the window.
DEFAULT_BANDWIDTH = 1e-2
#: The paper's initial threshold, for data whose per-coordinate RMS is 1.
PAPER_THRESHOLD_INIT = 1e-3


@with_training_parameters
class JumpReLUSAE(BaseSparseAutoencoder):
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

    Parameters
    ----------
    n_components : int or None, default=None
        Number of latents; ``None`` means ``8 * n_features``.
    alpha : float, default=0.1
        L0 weight :math:`\\lambda` (per active latent, in squared units of ``X``;
        the paper's :math:`\\lambda` is twice this, as its loss has no 1/2).
    bandwidth : float or "auto", default="auto"
        :math:`\\varepsilon`; ``"auto"`` is 0.01 times the data's per-coordinate RMS.
        The paper uses 0.001 on data normalised to RMS 1 over millions of steps;
        a wider window lets the thresholds learn in the few thousand steps of a
        scikit-learn-sized fit. Set 0.001 times the RMS to match the paper.
    threshold_init : float or "auto", default="auto"
        Initial :math:`\\theta`; ``"auto"`` is 0.001 times the data's RMS, as above.
    {training_parameters}

    Attributes
    ----------
    components_ : array of shape (n_components, n_targets)
        Decoder atoms :math:`W_{dec}` as unit rows.
    encoder_ : array of shape (n_components, n_features)
        Encoder rows :math:`W_{enc}`.
    encoder_bias_ : array of shape (n_components,)
    decoder_bias_ : array of shape (n_targets,)
        :math:`b_{dec}` (the pre-bias :math:`b_{pre}` of an SAE), initialised at the geometric median.
    input_center_ : array of shape (n_features,) or None
        Fixed centre subtracted from ``X`` by a transcoder (``None`` for an SAE).
    threshold_ : array of shape (n_components,)
        Thresholds :math:`\\theta`.
    bandwidth_ : float
        The bandwidth used.
    is_transcoder_ : bool
    n_targets_ : int
    {training_attributes}
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when ``X`` has string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from skdict import JumpReLUSAE
    >>> X = np.random.default_rng(0).normal(size=(500, 16))
    >>> sae = JumpReLUSAE(n_components=64, alpha=0.01, random_state=0).fit(X)
    >>> sae.transform(X).shape
    (500, 64)
    """

    _parameter_constraints = {
        **BaseSparseAutoencoder._parameter_constraints,
        "alpha": [Interval(Real, 0, None, closed="left")],
        "bandwidth": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "threshold_init": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
    }
    _extra_parameters = ("threshold_",)
    _preactivation_unit_parameters = ("encoder_bias_", "threshold_")

    def __init__(
        self,
        n_components=None,
        *,
        alpha=0.1,
        bandwidth="auto",
        threshold_init="auto",
        learning_rate=1e-3,
        batch_size=256,
        max_iter=None,
        max_steps=None,
        max_samples=None,
        early_stopping=True,
        tol=1e-4,
        n_iter_no_change=5,
        log_every=None,
        warmup_fraction=0.05,
        decay_fraction=0.2,
        max_grad_norm=1.0,
        dead_after=10_000,
        device="auto",
        warm_start=False,
        checkpoint_dir=None,
        checkpoint_every=1000,
        verbose=0,
        random_state=None,
        callback=None,
    ):
        super().__init__(
            n_components,
            learning_rate=learning_rate,
            batch_size=batch_size,
            max_iter=max_iter,
            max_steps=max_steps,
            max_samples=max_samples,
            early_stopping=early_stopping,
            tol=tol,
            n_iter_no_change=n_iter_no_change,
            log_every=log_every,
            warmup_fraction=warmup_fraction,
            decay_fraction=decay_fraction,
            max_grad_norm=max_grad_norm,
            dead_after=dead_after,
            device=device,
            warm_start=warm_start,
            checkpoint_dir=checkpoint_dir,
            checkpoint_every=checkpoint_every,
            verbose=verbose,
            random_state=random_state,
            callback=callback,
        )
        self.alpha = alpha
        self.bandwidth = bandwidth
        self.threshold_init = threshold_init

    def _init_extra_parameters(self, xp, dtype, n_components, rng):
        scale = self._data_scale
        theta = PAPER_THRESHOLD_INIT * scale if self.threshold_init == "auto" else float(self.threshold_init)
        return {"threshold_": xp.full(n_components, theta, dtype=dtype)}

    def _init_training_scalars(self):
        """:math:`\\varepsilon` (``bandwidth_``) from the data scale, also for thresholds given from outside."""
        self.bandwidth_ = DEFAULT_BANDWIDTH * self._data_scale if self.bandwidth == "auto" else float(self.bandwidth)

    def _support(self, A, training):
        return get_namespace(A).nonzero(A > self.threshold_)

    def _sparsity_penalty(self, A, rows, cols, n_rows, params):
        return self.alpha * rows.shape[0] / n_rows, 0.0, {}

    def _probe_pairs(self, A):
        xp = get_namespace(A)
        return xp.nonzero(xp.abs(A - self.threshold_) < 0.5 * self.bandwidth_)

    def _probe_grads(self, A, rows, cols, dZ, n_rows):
        """dL/dθ_j = Σ_n K(.)·(−1/ε)·(θ_j dL/dz_nj + λ/B) over the window pairs."""
        xp = get_namespace(A)
        theta = self.threshold_
        weights = -(theta[cols] * dZ + self.alpha / n_rows) / self.bandwidth_
        grad = xp.bincount(cols, weights=weights, minlength=theta.shape[0])
        return {"threshold_": grad.astype(theta.dtype, copy=False)}

    def _after_step(self, result):
        xp = get_namespace(self.threshold_)
        xp.maximum(self.threshold_, 0, out=self.threshold_)
