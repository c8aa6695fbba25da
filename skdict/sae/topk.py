"""TopK sparse autoencoder (Makhzani & Frey, 2013; Gao et al., 2024)."""

from __future__ import annotations

from numbers import Integral

from sklearn.utils._param_validation import Interval

from skdict.ops.topk import keep_row_topk
from skdict.sae._base import BaseSparseAutoencoder
from skdict.sae._topk_common import AuxKMixin, positive_topk_pairs


def resolve_k(estimator, n_components):
    """``k=None`` means 32, or ``n_components`` when that is smaller; an explicit k > n_components is an error."""
    if estimator.k is None:
        return min(32, n_components)
    if estimator.k > n_components:
        raise ValueError(
            f"k={estimator.k} is larger than n_components={n_components}: lower k or raise n_components."
        )
    return estimator.k


class TopKSAE(AuxKMixin, BaseSparseAutoencoder):
    """Sparse autoencoder whose code keeps the ``k`` largest pre-activations of each sample.

    .. math::

        z = \\mathrm{ReLU}(\\mathrm{TopK}_k((x - b_{dec}) W_{enc}^\\top + b_{enc})), \\qquad
        \\hat x = z W_{dec} + b_{dec},

    trained by minibatch Adam on :math:`\\tfrac{1}{2B}\\sum_n \\|x_n - \\hat x_n\\|^2`
    plus the AuxK loss on dead latents. Decoder atoms (rows of ``components_``)
    are kept at unit norm. ``fit(X, Y)`` with a 2-D ``Y`` trains a transcoder.

    Parameters
    ----------
    n_components : int or None, default=None
        Number of latents :math:`m` (dictionary atoms); ``None`` means ``8 * n_features``.
    k : int or None, default=None
        Active latents per sample; ``None`` means ``min(32, n_components)``.
    k_aux : int or None, default=None
        Dead latents used by AuxK per sample; ``None`` means ``n_targets // 2``.
    aux_coef : float, default=1/32
        Weight :math:`\\alpha_{aux}` of the AuxK loss (0 disables it).
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
    k_ : int
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
    >>> from skdict import TopKSAE
    >>> X = np.random.default_rng(0).normal(size=(500, 16))
    >>> sae = TopKSAE(n_components=64, k=4, random_state=0).fit(X)
    >>> sae.transform(X).shape
    (500, 64)
    """

    #: The support is decided row by row: the training step forms the pre-activations one block of
    #: rows at a time (memory O(batch x (n_features + k)) plus one block; see skdict.sae._step).
    _rowwise_support = True

    _parameter_constraints = {
        **BaseSparseAutoencoder._parameter_constraints,
        **AuxKMixin._auxk_constraints,
        "k": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(
        self,
        n_components=None,
        *,
        k=None,
        k_aux=None,
        aux_coef=1 / 32,
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
        self.k = k
        self.k_aux = k_aux
        self.aux_coef = aux_coef

    def _check_hyperparameters(self, n_components):
        self.k_ = resolve_k(self, n_components)

    def _support(self, A, training):
        return positive_topk_pairs(A, self.k_)

    def _keep_support(self, A, bias):
        keep_row_topk(A, self.k_, shift=bias, positive=True)
