"""TopK sparse autoencoder (Makhzani & Frey, 2013; Gao et al., 2024)."""

from __future__ import annotations

from numbers import Integral

from sklearn.utils._param_validation import Interval

from skdict.ops.topk import keep_row_topk
from skdict.sae._base import BaseSparseAutoencoder, with_training_parameters
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


@with_training_parameters
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
    k_ : int
    is_transcoder_ : bool
    n_targets_ : int
    {training_attributes}
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
        self.k = k
        self.k_aux = k_aux
        self.aux_coef = aux_coef

    def _check_hyperparameters(self, n_components):
        self.k_ = resolve_k(self, n_components)

    def _support(self, A, training):
        return positive_topk_pairs(A, self.k_)

    def _keep_support(self, A, bias):
        keep_row_topk(A, self.k_, shift=bias, positive=True)
