"""BatchTopK sparse autoencoder (Bussmann, Leask & Nanda, 2024)."""

from __future__ import annotations

import math
from numbers import Real

from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import Interval

from skdict._array import get_namespace
from skdict.ops.topk import batch_topk, row_topk
from skdict.sae._base import BaseSparseAutoencoder
from skdict.sae._parameters import Parameter
from skdict.sae._step import encode_centred
from skdict.sae._topk_common import AuxKMixin
from skdict.sae.topk import resolve_k

#: Rows of the training data (evenly spaced, all of them when fewer) on which the
#: inference threshold is estimated at the end of ``fit`` / ``partial_fit``.
THRESHOLD_SAMPLE = 1 << 16
#: Elements of one (rows x n_components) block of pre-activations while estimating it.
_THRESHOLD_BLOCK = 1 << 22
#: Without a guessed level, the first pass of the row-blocked training step keeps each row's
#: ``CANDIDATES_PER_K x k`` largest entries: rows that may hold more of the batch's budget are encoded
#: a second time (exact either way).
CANDIDATES_PER_K = 2
#: The level guessed for the next step is that of ``GUESS_MARGIN`` times the budget (a little lower).
GUESS_MARGIN = 1.25
#: A block with more than ``GUESS_CAP x k`` entries per row above the guessed level ignores the guess.
GUESS_CAP = 4


def batch_budget(k, n_rows):
    """Active pairs a batch of ``n_rows`` shares: ``round(n_rows * k)``, at least 1 (``k`` may be fractional)."""
    return max(1, int(round(k * n_rows)))


def _largest_entries(blocks, n):
    """The ``n`` largest entries (unordered, fewer if there are fewer) over a stream of arrays.

    Only a buffer of ``n`` values and one block are held at a time.
    """
    top = None
    for block in blocks:
        xp = get_namespace(block)
        values = block.reshape(-1)
        if top is not None and top.shape[0] == n:
            values = values[values > xp.min(top)]
        merged = values if top is None else xp.concatenate([top, values])
        if merged.shape[0] > n:
            merged = xp.partition(merged, merged.shape[0] - n)[merged.shape[0] - n :]
        top = merged
    return top


def batch_threshold(blocks, n_keep):
    """The threshold :math:`\\theta` for which :math:`a > \\theta` keeps the ``n_keep`` largest positive entries.

    :math:`\\theta` is the midpoint of the ``n_keep``-th and ``(n_keep + 1)``-th largest
    entries of all the blocks (the widest margin between the kept and the rest, so
    rounding in another evaluation of the same entries does not move the boundary),
    and at least 0: only positive pre-activations fire, as in training.

    Parameters
    ----------
    blocks : iterable of arrays
        Pre-activations, e.g. row blocks of an (n_rows, n_components) matrix.
    n_keep : int

    Returns
    -------
    theta : float
    """
    top = _largest_entries(blocks, n_keep + 1)
    if top is None or top.shape[0] <= n_keep:  # fewer entries than the budget: every positive one fires
        return 0.0
    xp = get_namespace(top)
    lowest_two = xp.partition(top, 1)[:2]
    return max(0.0, 0.5 * (float(lowest_two[0]) + float(lowest_two[1])))


class BatchTopKSAE(AuxKMixin, BaseSparseAutoencoder):
    """Sparse autoencoder whose minibatch shares a budget of ``batch_size * k`` active latents.

    In training, the :math:`\\mathrm{round}(B k)` (at least 1) largest positive
    pre-activations of the whole minibatch are kept, so a sample may use more or
    fewer than ``k`` latents; ``k`` is a mean and may be fractional (``k=0.5``: one
    latent per two samples on average). At inference a single threshold
    :math:`\\theta` replaces the batch: :math:`z = a\\,\\mathbb{1}[a > \\theta]`.

    :math:`\\theta` is estimated once, at the *final* parameters, at the end of every
    ``fit`` and ``partial_fit``: it is the training rule applied to the training rows
    as one batch. On :data:`THRESHOLD_SAMPLE` evenly spaced rows of the data just
    trained on (all of them when fewer), :math:`\\theta` is the midpoint between the
    :math:`nk`-th and :math:`(nk+1)`-th largest pre-activations (and at least 0), so
    that :math:`a > \\theta` keeps on average exactly ``k`` latents per sample on
    those rows. The pre-activations are streamed in row blocks (never an
    n_samples x n_components matrix). ``partial_fit`` estimates it from the chunk just
    trained on, at the parameters after that chunk: a threshold carried over from
    earlier chunks belongs to earlier parameters (the running average of per-batch
    thresholds often used lags the parameters and leaves the inference L0 well below
    ``k``); a small chunk gives a noisier estimate.

    ``history_`` describes the training rule (the batch budget), ``transform`` the
    threshold; on the training rows both keep the same number of latents, and the
    same latents when one minibatch is the whole sample. Loss, AuxK, constraint and
    optimizer as in :class:`TopKSAE`.

    {parameters}

    Attributes
    ----------
    threshold_ : float
        Inference threshold :math:`\\theta` at the final parameters (a Python float, i.e. float64).
    k_ : int or float
    {shared_attributes}

    See Also
    --------
    TopKSAE : exactly ``k`` latents (at most) for every sample.
    batch_threshold : the inference threshold's rule.

    Examples
    --------
    >>> import numpy as np
    >>> from skdict import BatchTopKSAE
    >>> X = np.random.default_rng(0).normal(size=(500, 16))
    >>> codes = BatchTopKSAE(n_components=64, k=4, random_state=0).fit(X).transform(X)
    >>> float((codes != 0).sum(axis=1).mean())  # k per sample on average, through threshold_
    4.0
    """

    #: The training step forms the pre-activations in row blocks and selects the batch's budget
    #: from each row's candidates (:meth:`_support_candidates`; see skdict.sae._step).
    _rowwise_support = True

    _parameters = (
        Parameter(
            "k", None, [Interval(Real, 0, None, closed="neither"), None], "float or None",
            "Mean active latents per sample, > 0 (fractional values allowed); ``None`` means ``min(32, n_components)``.",
        ),
    )

    def _check_hyperparameters(self, n_components):
        self.k_ = resolve_k(self, n_components)

    def _init_extra_parameters(self, xp, dtype, n_components, rng):
        # estimated by each fit at its final parameters (not a trained parameter)
        self.threshold_ = None
        self._level_guess = None  # the row-blocked step's guess of the next batch level (a cache: results exact without it)
        return {}

    def _support(self, A, training):
        xp = get_namespace(A)
        if not training:
            if not hasattr(self, "threshold_"):  # weights given from outside a fit, without their threshold
                raise NotFittedError(
                    f"{type(self).__name__} has no inference threshold_: it was given its weights without one. Pass "
                    "fitted={'threshold_': value} to skdict.io._build.build_fitted, or call partial_fit on some "
                    "training rows, which estimates it at the current parameters."
                )
            # no threshold estimated yet (a fit interrupted before its end): nothing fires
            threshold = math.inf if self.threshold_ is None else self.threshold_
            return xp.nonzero(A > threshold)
        rows, cols = batch_topk(A, batch_budget(self.k_, A.shape[0]))
        keep = A[rows, cols] > 0
        return rows[keep], cols[keep]

    def _support_candidates(self, A):
        """Pass 1 of the row-blocked step: candidate pairs of a block of rows, and each row's bound.

        With a guess :math:`\\hat L > 0` of the level left by the previous step
        (``_level_guess``), the candidates are the entries above it, and every row's
        bound is :math:`\\hat L`: one comparison, no selection. Without one, or where a
        block holds more than :data:`GUESS_CAP` x ``k`` entries per row above it (the guess
        was far too low: memory stays O(rows x k)), they are each row's
        :data:`CANDIDATES_PER_K` x ``k`` largest positive entries, bounded by the smallest
        of them. No entry left out of a row is above its bound; rows whose bound exceeds
        the batch's level are encoded again (:func:`skdict.sae._step._select_over_batch`),
        so the support is exactly the whole-batch selection's whatever the guess.
        """
        xp = get_namespace(A)
        n_rows, n_cols = A.shape
        guess = getattr(self, "_level_guess", None)
        if guess is not None and guess > 0:
            above = A > guess
            if int(xp.count_nonzero(above)) <= GUESS_CAP * self.k_ * n_rows:
                flat = xp.flatnonzero(above)
                return flat // n_cols, flat % n_cols, xp.full(n_rows, guess, dtype=A.dtype)
        n_top = min(n_cols, math.ceil(CANDIDATES_PER_K * self.k_))
        indices, values = row_topk(A, n_top)
        positive = (values > 0).reshape(-1)
        rows = xp.repeat(xp.arange(n_rows), n_top)[positive]
        bounds = xp.full(n_rows, -xp.inf, dtype=A.dtype) if n_top == n_cols else xp.min(values, axis=1)
        return rows, indices.reshape(-1)[positive], bounds

    def _select_candidates(self, values, n_rows):
        """The batch's ``round(B k)`` largest positive candidates, and the smallest of them as the level (>= 0).

        Also keeps, as the next step's ``_level_guess``, the ``GUESS_MARGIN x round(B k)``-th
        largest candidate: a level a little below this one, so that the next batch's
        level is above it unless the parameters moved far.
        """
        xp = get_namespace(values)
        n_keep = batch_budget(self.k_, n_rows)
        size = values.shape[0]
        if size <= n_keep:  # every positive entry may be kept: all of them must be candidates
            self._level_guess = None
            return xp.arange(size), 0.0
        n_guess = min(size, math.ceil(GUESS_MARGIN * n_keep))
        order = xp.argpartition(values, [size - n_guess, size - n_keep] if n_guess > n_keep else size - n_keep)
        self._level_guess = float(values[order[size - n_guess]])
        return order[size - n_keep :], max(0.0, float(values[order[size - n_keep]]))

    def _after_fit(self, data):
        """Estimate :math:`\\theta` at the final parameters on (up to :data:`THRESHOLD_SAMPLE`) rows just trained on."""
        sample = data.statistics_rows(THRESHOLD_SAMPLE)
        params, centre = self._params(), self._centre()
        step = max(1, _THRESHOLD_BLOCK // self.components_.shape[0])
        blocks = (encode_centred(params, sample[i : i + step] - centre) for i in range(0, sample.shape[0], step))
        self.threshold_ = batch_threshold(blocks, batch_budget(self.k_, sample.shape[0]))
