"""ReLU sparse autoencoder with an L1 penalty (Bricken et al., 2023; Cunningham et al., 2023)."""

from __future__ import annotations

from numbers import Real

import numpy as np

from sklearn.utils._param_validation import Interval

from skdict._array import get_namespace
from skdict.sae._base import BaseSparseAutoencoder
from skdict.sae.crosscoder import check_layer_sizes, decoder_layer_norms


class ReLUSAE(BaseSparseAutoencoder):
    """Sparse autoencoder with ReLU codes and an L1 penalty.

    .. math::

        z = \\mathrm{ReLU}((x - b_{dec}) W_{enc}^\\top + b_{enc}), \\qquad
        L = \\frac{1}{B}\\sum_n \\tfrac12\\|x_n - \\hat x_n\\|^2 + \\alpha \\|z_n\\|_1 .

    With unit-norm atoms this is scikit-learn's sparse-coding objective
    (:math:`\\tfrac12\\|x - zD\\|^2 + \\alpha\\|z\\|_1`) with an amortised encoder,
    so ``alpha`` means what it means in :class:`sklearn.linear_model.Lasso`
    (per sample, in the units of ``X``).

    Parameters
    ----------
    n_components : int or None, default=None
        Number of latents; ``None`` means ``8 * n_features``.
    alpha : float, default=0.1
        L1 weight :math:`\\alpha`, in the units of ``X``.
    layer_sizes : sequence of int or None, default=None
        For a crosscoder (see :mod:`skdict.sae.crosscoder`): the widths of the
        layers stacked in the reconstruction target (``X``, or ``Y`` for a
        transcoder), in order. Each code is then weighted by its atom's summed
        per-layer norms, :math:`\\alpha \\sum_j z_j \\sum_l \\|d_j^{(l)}\\|`
        (between 1 and :math:`\\sqrt{L}` times the plain L1, as atoms are unit).
        ``None``: one layer, the plain L1 penalty.
    learning_rate : float, default=1e-3
        Adam's step size :math:`\\eta`; biases move :math:`\\eta` times the data's RMS scale.
    batch_size : int, default=256
    max_iter : int or None, default=None
        Epochs (passes over the data); ``None``: no limit in epochs. ``max_iter``, ``max_steps``
        and ``max_samples`` are per ``fit`` call, and the learning-rate schedule's horizon is the
        first of them reached.
    max_steps : int or None, default=None
        Optimizer steps (minibatches); ``None``: no limit in steps.
    max_samples : int or None, default=None
        Training samples (tokens) read, over as many epochs as that takes; ``None``: no limit.
        Training ends at the first of ``max_iter``, ``max_steps``, ``max_samples`` reached.
    early_stopping : bool, default=True
        End training once the training loss, averaged over windows of ``log_every`` steps,
        has not improved by a relative ``tol`` for ``n_iter_no_change`` windows: the learning
        rate then decays to zero over ``decay_fraction`` of the run and training ends. With all
        of ``max_iter``, ``max_steps``, ``max_samples`` left at ``None``, a fit runs until early
        stopping, at most 20 000 steps.
    tol : float, default=1e-4
        Early stopping: relative improvement of the windowed loss counted as progress.
    n_iter_no_change : int, default=5
        Windows without progress before stopping.
    log_every : int or None, default=None
        Steps per window: one entry of ``step_history_``, one verbose log line, one early-stopping
        check. ``None``: about one epoch of small data, ``ceil(min(n_samples, 32768) / batch_size)``.
    warmup_fraction, decay_fraction : float, default=0.05, 0.2
        Linear warmup over the first, and linear decay over the last, fraction of steps.
    max_grad_norm : float or None, default=1.0
        Clip the global gradient norm (``None``: no clipping).
    dead_after : int, default=10_000
        A latent that has not fired for this many training samples is dead.
    device : {"auto", "cpu", "cuda"}, default="auto"
        ``"auto"`` trains where the input lives; ``"cuda"`` moves NumPy input to the GPU.
    warm_start : bool, default=False
        Continue from the current parameters and optimizer state on ``fit``.
    checkpoint_dir : str, path-like or None, default=None
        Folder of the fit's checkpoints (parameters, optimizer state, RNG, data position), written
        atomically every ``checkpoint_every`` steps; a fit that finds one there resumes from it.
        ``None``: no checkpoints.
    checkpoint_every : int, default=1000
        Optimizer steps between two checkpoints (with ``checkpoint_dir``).
    verbose : int, default=0
        Print a progress bar (tqdm if installed) with loss, explained variance, L0 and dead fraction.
    random_state : int, RandomState or None, default=None

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
    is_transcoder_ : bool
    n_targets_ : int
    history_ : dict of lists
        Per epoch: ``loss``, ``explained_variance``, ``l0``, ``dead_fraction`` (NaN until
        ``dead_after`` samples were seen); the last epoch of a fit may be partial.
    step_history_ : dict of lists
        Per window of ``log_every`` steps: ``step`` (of the call), ``samples`` (seen since
        initialisation) and the same four statistics over the window.
    n_steps_ : int
        Optimizer steps since initialisation.
    n_samples_seen_ : int
        Training samples read since initialisation.
    n_iter_ : int
        Epochs begun since initialisation (a warm-start ``fit`` and ``partial_fit`` add to it, as to ``history_``).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when ``X`` has string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from skdict import ReLUSAE
    >>> X = np.random.default_rng(0).normal(size=(500, 16))
    >>> sae = ReLUSAE(n_components=64, alpha=0.1, random_state=0).fit(X)
    >>> sae.transform(X).shape
    (500, 64)
    """

    #: The support is decided row by row: the training step forms the pre-activations one block of
    #: rows at a time (memory O(batch x (n_features + k)) plus one block; see skdict.sae._step).
    _rowwise_support = True

    _parameter_constraints = {
        **BaseSparseAutoencoder._parameter_constraints,
        "alpha": [Interval(Real, 0, None, closed="left")],
        "layer_sizes": ["array-like", None],
    }

    def __init__(
        self,
        n_components=None,
        *,
        alpha=0.1,
        layer_sizes=None,
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
        )
        self.alpha = alpha
        self.layer_sizes = layer_sizes

    def _check_hyperparameters(self, n_components):
        self.layer_sizes_ = None
        if self.layer_sizes is not None:
            self.layer_sizes_ = check_layer_sizes(self.layer_sizes, self.n_targets_)

    def _support(self, A, training):
        return get_namespace(A).nonzero(A > 0)

    def _sparsity_penalty(self, A, rows, cols, n_rows, params):
        xp = get_namespace(A)
        codes = A[rows, cols]
        if self.layer_sizes_ is None:
            return self.alpha * float(xp.sum(codes)) / n_rows, self.alpha / n_rows, {}
        # P = (alpha/B) sum_nj z_nj w_j with w_j = sum_l ||d_j^(l)||:
        # dP/dz_nj = alpha w_j / B and dP/dd_j^(l) = (alpha/B) (sum_n z_nj) d_j^(l) / ||d_j^(l)||.
        D = params["components_"]
        norms = decoder_layer_norms(D, self.layer_sizes_)
        weights = xp.sum(norms, axis=1)
        penalty = self.alpha * float(xp.sum(codes * weights[cols])) / n_rows
        code_sums = xp.bincount(cols, weights=codes, minlength=D.shape[0]).astype(D.dtype, copy=False)
        scale = (self.alpha / n_rows) * code_sums[:, None] / xp.where(norms > 0, norms, 1)
        widths = xp.asarray(np.repeat(np.arange(len(self.layer_sizes_)), self.layer_sizes_))
        grad_D = D * scale[:, widths]
        return penalty, (self.alpha / n_rows) * weights[cols], {"components_": grad_D}
