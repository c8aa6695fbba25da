"""Matryoshka sparse autoencoder (Bussmann, Nabeshima, Karvonen & Nanda, 2025)."""

from __future__ import annotations

from numbers import Integral, Real

from sklearn.utils._param_validation import Interval, StrOptions

from skdict.ops.topk import keep_row_topk
from skdict.sae._parameters import Parameter
from skdict.sae._reconstruction import reconstruction
from skdict.sae._topk_common import positive_topk_pairs
from skdict.sae.batchtopk import BatchTopKSAE

#: The default prefix widths as fractions of ``n_components`` (the paper's nesting m/16, m/4, m).
DEFAULT_FRACTIONS = (1 / 16, 1 / 4, 1)


def resolve_widths(widths, n_components):
    """The prefix widths :math:`m_1 < \\dots < m_G = m` as a tuple of int.

    ``None`` means ``round(m/16), round(m/4), m`` (each at least 1, repeats dropped).

    Raises
    ------
    ValueError
        Widths that are not whole, not strictly increasing from at least 1, or do not end at ``n_components``.
    """
    if widths is None:
        return tuple(sorted({max(1, round(n_components * f)) for f in DEFAULT_FRACTIONS}))
    resolved = tuple(int(w) for w in widths if isinstance(w, Integral) and not isinstance(w, bool))
    fine = len(resolved) == len(widths) > 0 and resolved[0] >= 1 and resolved[-1] == n_components
    if not fine or any(a >= b for a, b in zip(resolved[:-1], resolved[1:])):
        m = n_components
        raise ValueError(
            f"matryoshka_widths={list(widths)!r} must be strictly increasing whole numbers >= 1 ending at "
            f"n_components={m} (the whole dictionary is the last prefix): e.g. {[max(1, m // 16), max(1, m // 4), m]}, "
            "or None for that default."
        )
    return resolved


class MatryoshkaSAE(BatchTopKSAE):
    """Sparse autoencoder whose nested prefixes of latents must each reconstruct the input.

    The latents are ordered; the first :math:`m_1`, the first :math:`m_2`, ..., all
    :math:`m_G = m` of them are nested dictionaries, and each prefix reconstructs the
    target on its own (with the decoder bias):

    .. math::

        L = \\sum_{g=1}^{G} \\frac{1}{2B} \\sum_n \\|y_n - (z_{n,:m_g} W_{dec}[:m_g] + b_{dec})\\|^2
            + \\alpha_{aux} L_{aux},

    summed over the prefixes as in the paper and SAELens (not averaged). The early latents
    are trained to carry general features by themselves, so a child feature cannot absorb
    its parent's direction (the parent's latent has to reconstruct it in a smaller prefix
    where the child's latent is absent): the remedy for feature absorption.

    The code :math:`z` is that of the whole dictionary, from a BatchTopK activation
    (``activation="batchtopk"``, the paper's: ``k`` latents per sample on average over a
    minibatch in training, a single threshold ``threshold_`` at inference, as in
    :class:`BatchTopKSAE`) or a TopK one (``"topk"``: at most ``k`` per sample, as in
    :class:`TopKSAE`). AuxK on dead latents (against the whole dictionary's residual),
    unit decoder atoms, the optimizer and ``fit(X, Y)`` for a transcoder are those of the family.
    ``transform`` and ``inverse_transform`` use all the latents; a prefix of them is a smaller SAE
    (``codes[:, :m_g] @ components_[:m_g] + decoder_bias_``).

    {parameters}

    Attributes
    ----------
    matryoshka_widths_ : tuple of int
        The prefix widths :math:`m_1 < \\dots < m_G = m` trained with.
    threshold_ : float or None
        BatchTopK's inference threshold :math:`\\theta` at the final parameters (``None`` with ``"topk"``).
    k_ : int or float
    {shared_attributes}

    See Also
    --------
    BatchTopKSAE : the same activation with the plain (one prefix) reconstruction loss.
    TopKSAE : at most ``k`` latents per sample.
    skdict.metrics.absorption_score : how often a child latent takes over its parent's direction.

    Examples
    --------
    The first 8 latents alone, an SAE of their own, reconstruct the parents of a hierarchy:

    >>> from skdict import MatryoshkaSAE
    >>> from skdict.datasets import make_hierarchical_features
    >>> data = make_hierarchical_features(2000, n_parents=8, n_dims=32, random_state=0)
    >>> sae = MatryoshkaSAE(40, k=2, matryoshka_widths=[8, 40], random_state=0).fit(data.X)
    >>> z = sae.transform(data.X)
    >>> parents_only = data.codes[:, :8] @ data.features[:8]
    >>> inner = z[:, :8] @ sae.components_[:8] + sae.decoder_bias_
    >>> bool(((inner - parents_only) ** 2).sum() < ((data.X - parents_only) ** 2).sum())
    True
    """

    _parameters = (
        Parameter(
            "k", None, [Interval(Real, 0, None, closed="neither"), None], "float or None",
            "Active latents per sample: a mean over the minibatch with ``activation=\"batchtopk\"`` (may be "
            "fractional), at most per sample with ``\"topk\"`` (whole); ``None`` means ``min(32, n_components)``.",
        ),
        Parameter(
            "matryoshka_widths", None, ["array-like", None], "sequence of int or None",
            "Cumulative prefix widths :math:`m_1 < \\dots < m_G`, ending at ``n_components`` (SAELens's name); "
            "``None`` means ``(round(m/16), round(m/4), m)``.",
        ),
        Parameter(
            "activation", "batchtopk", [StrOptions({"batchtopk", "topk"})], '{"batchtopk", "topk"}',
            "The code of the whole dictionary: BatchTopK (the paper's) or TopK.",
        ),
    )

    @property
    def _rowwise_support(self):
        """TopK decides each row alone (the step then works in row blocks); BatchTopK as :class:`BatchTopKSAE`."""
        return self.activation == "topk" or super()._rowwise_support

    def _check_hyperparameters(self, n_components):
        super()._check_hyperparameters(n_components)
        if self.activation == "topk" and self.k_ != int(self.k_):
            raise ValueError(
                f"k={self.k_} must be a whole number with activation='topk' (latents per sample); "
                "use activation='batchtopk' for a fractional mean."
            )
        if self.activation == "topk":
            self.k_ = int(self.k_)
        self.matryoshka_widths_ = resolve_widths(self.matryoshka_widths, n_components)

    def _reconstruction(self, Z, params, Y):
        return reconstruction(Z, params["components_"], params["decoder_bias_"], Y, prefixes=self.matryoshka_widths_)

    def _support(self, A, training):
        if self.activation == "topk":
            return positive_topk_pairs(A, self.k_)
        return super()._support(A, training)

    def _support_candidates(self, A):
        if self.activation == "topk":  # TopK's support is final row by row: no batch-wide selection
            rows, cols = self._support(A, training=True)
            return rows, cols, None
        return super()._support_candidates(A)

    def _keep_support(self, A, bias):
        if self.activation == "topk":
            keep_row_topk(A, self.k_, shift=bias, positive=True)
        else:
            super()._keep_support(A, bias)

    def _after_fit(self, data):
        """BatchTopK's inference threshold; with TopK there is none."""
        if self.activation == "topk":
            self.threshold_ = None
        else:
            super()._after_fit(data)
