"""BatchTopK sparse autoencoder (Bussmann, Leask & Nanda, 2024)."""

from __future__ import annotations

import math

from numbers import Integral

from sklearn.utils._param_validation import Interval

from skdict._array import get_namespace
from skdict.ops.topk import batch_topk
from skdict.sae._base import BaseSparseAutoencoder
from skdict.sae._topk_common import AuxKMixin
from skdict.sae.topk import resolve_k

#: Weight of the past in the running estimate of the inference threshold.
THRESHOLD_MOMENTUM = 0.99


class BatchTopKSAE(AuxKMixin, BaseSparseAutoencoder):
    """Sparse autoencoder whose minibatch shares a budget of ``batch_size * k`` active latents.

    In training, the :math:`B k` largest positive pre-activations of the whole
    minibatch are kept, so a sample may use more or fewer than ``k`` latents. At
    inference a single threshold :math:`\\theta` replaces the batch:
    :math:`z = a\\,\\mathbb{1}[a > \\theta]`, where :math:`\\theta` is a running
    average (momentum 0.99, kept in float64) of the smallest activation kept in each
    training batch. Loss, AuxK, constraint and optimizer as in :class:`TopKSAE`.

    Parameters
    ----------
    n_components : int or None, default=None
        Number of latents; ``None`` means ``8 * n_features``.
    k : int or None, default=None
        Mean active latents per sample; ``None`` means ``min(32, n_components)``.
    k_aux : int or None, default=None
        Dead latents used by AuxK per sample; ``None`` means ``n_targets // 2``.
    aux_coef : float, default=1/32
        Weight of the AuxK loss (0 disables it).
    learning_rate : float, default=1e-3
        Adam's step size :math:`\\eta`; biases move :math:`\\eta` times the data's RMS scale.
    batch_size : int, default=256
    max_iter : int, default=30
        Epochs.
    tol : float, default=1e-4
        Early stopping: relative improvement of the epoch loss counted as progress.
    n_iter_no_change : int, default=5
        Epochs without progress before stopping.
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
    threshold_ : float
        Inference threshold :math:`\\theta` (a Python float, i.e. float64).
    k_ : int
    is_transcoder_ : bool
    n_targets_ : int
    history_ : dict of lists
        Per epoch: ``loss``, ``explained_variance``, ``l0``, ``dead_fraction``.
    n_iter_ : int
        Epochs run since initialisation (a warm-start ``fit`` and ``partial_fit`` add to it, as to ``history_``).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when ``X`` has string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from skdict import BatchTopKSAE
    >>> X = np.random.default_rng(0).normal(size=(500, 16))
    >>> sae = BatchTopKSAE(n_components=64, k=4, random_state=0).fit(X)
    >>> sae.transform(X).shape
    (500, 64)
    """

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
        max_iter=30,
        tol=1e-4,
        n_iter_no_change=5,
        warmup_fraction=0.05,
        decay_fraction=0.2,
        max_grad_norm=1.0,
        dead_after=10_000,
        device="auto",
        warm_start=False,
        verbose=0,
        random_state=None,
    ):
        super().__init__(
            n_components,
            learning_rate=learning_rate,
            batch_size=batch_size,
            max_iter=max_iter,
            tol=tol,
            n_iter_no_change=n_iter_no_change,
            warmup_fraction=warmup_fraction,
            decay_fraction=decay_fraction,
            max_grad_norm=max_grad_norm,
            dead_after=dead_after,
            device=device,
            warm_start=warm_start,
            verbose=verbose,
            random_state=random_state,
        )
        self.k = k
        self.k_aux = k_aux
        self.aux_coef = aux_coef

    def _check_hyperparameters(self, n_components):
        self.k_ = resolve_k(self, n_components)

    def _init_extra_parameters(self, xp, dtype, n_components, rng):
        # the inference threshold is estimated from scratch by each new fit (not a trained parameter)
        self.threshold_ = None
        self._batch_threshold = None
        return {}

    def _support(self, A, training):
        xp = get_namespace(A)
        if not training:
            # no positive pre-activation was ever selected in training: nothing fires at inference either
            threshold = math.inf if self.threshold_ is None else self.threshold_
            return xp.nonzero(A > threshold)
        rows, cols = batch_topk(A, self.k_ * A.shape[0])
        values = A[rows, cols]
        keep = values > 0
        if bool(keep.any()):
            self._batch_threshold = float(values[keep].min())
        return rows[keep], cols[keep]

    def _after_step(self, result):
        if self._batch_threshold is None:
            return
        if self.threshold_ is None:
            self.threshold_ = self._batch_threshold
        else:
            self.threshold_ = THRESHOLD_MOMENTUM * self.threshold_ + (1 - THRESHOLD_MOMENTUM) * self._batch_threshold
        self._batch_threshold = None
