"""TopK sparse autoencoder (Makhzani & Frey, 2013; Gao et al., 2024)."""

from __future__ import annotations

from numbers import Integral

from sklearn.utils._param_validation import Interval

from skdict.ops.topk import keep_row_topk
from skdict.sae._base import BaseSparseAutoencoder
from skdict.sae._parameters import Parameter
from skdict.sae._topk_common import AuxKMixin, positive_topk_pairs

#: ``k`` of TopKSAE (and, with its own doc line, MPSAE): a whole number of latents per sample.
K = Parameter(
    "k", None, [Interval(Integral, 1, None, closed="left"), None], "int or None",
    "Active latents per sample; ``None`` means ``min(32, n_components)``.",
)


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

    {parameters}

    Attributes
    ----------
    k_ : int
    {shared_attributes}

    See Also
    --------
    BatchTopKSAE : ``k`` as a mean over the minibatch, a threshold at inference.
    MPSAE : ``k`` matching-pursuit steps on a tied dictionary instead of one linear encoder.
    skdict.AnchoredSAE : pin chosen latents to known feature directions.

    Examples
    --------
    >>> import numpy as np
    >>> from skdict import TopKSAE
    >>> X = np.random.default_rng(0).normal(size=(500, 16))
    >>> sae = TopKSAE(n_components=64, k=4, random_state=0).fit(X)
    >>> codes = sae.transform(X)
    >>> codes.shape, int((codes != 0).sum(axis=1).max())  # never more than k active latents
    ((500, 64), 4)
    """

    #: The support is decided row by row: the training step forms the pre-activations one block of
    #: rows at a time (memory O(batch x (n_features + k)) plus one block; see skdict.sae._step).
    _rowwise_support = True

    _parameters = (K,)

    def _check_hyperparameters(self, n_components):
        self.k_ = resolve_k(self, n_components)

    def _support(self, A, training):
        return positive_topk_pairs(A, self.k_)

    def _keep_support(self, A, bias):
        keep_row_topk(A, self.k_, shift=bias, positive=True)
