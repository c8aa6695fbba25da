r"""Support recovery: precision, recall and F1 of which latents are active on which samples."""

from __future__ import annotations

from collections import namedtuple
from numbers import Real

from skdict._array import get_namespace
from skdict.metrics._matching import _check_codes_pair, match_codes

#: Precision, recall and F1 of :func:`support_scores`.
SupportScores = namedtuple("SupportScores", ["precision", "recall", "f1"])


def _identity_pairs(xp, n_true, n_learned):
    if n_true != n_learned:
        raise ValueError(
            f"matching='identity' pairs column i of true_codes with column i of learned_codes, so both need "
            f"the same number of columns; got {n_true} and {n_learned}. Use matching='codes', or pass the "
            "pairs (true_index, learned_index), e.g. skdict.metrics.match_features(true_features, learned)[:2]."
        )
    index = xp.arange(n_true)
    return index, index


def _is_index_vector(index):
    return getattr(index, "ndim", None) == 1 and getattr(index, "dtype", None) is not None and index.dtype.kind in "iu"


def _explicit_pairs(xp, matching, n_true, n_learned):
    """Validate a user-given ``(true_index, learned_index)`` pairing: one-to-one and in range."""
    if not (isinstance(matching, (tuple, list)) and len(matching) == 2):
        raise ValueError(
            "matching must be 'identity', 'codes', or a pair (true_index, learned_index) of integer arrays; "
            f"got {matching!r}."
        )
    pairs = []
    for index, name, size in zip(matching, ("true_index", "learned_index"), (n_true, n_learned)):
        index = xp.asarray(index)
        if index.size == 0 and index.ndim == 1:
            index = index.astype(xp.int64)
        if not _is_index_vector(index):
            raise ValueError(f"matching's {name} must be a 1-D integer array; got {index!r}.")
        if index.size and (int(xp.min(index)) < 0 or int(xp.max(index)) >= size):
            raise ValueError(f"matching's {name} must hold indices in [0, {size}); got values outside.")
        if int(xp.unique(index).shape[0]) != index.shape[0]:
            raise ValueError(f"matching's {name} repeats an index; a matching pairs each column at most once.")
        pairs.append(index)
    if pairs[0].shape != pairs[1].shape:
        raise ValueError(
            f"matching's true_index and learned_index must have the same length; got {pairs[0].shape[0]} "
            f"and {pairs[1].shape[0]}."
        )
    return pairs


def _safe_ratio(numerator, denominator):
    return numerator / denominator if denominator else 0.0


def support_scores(true_codes, learned_codes, *, matching="identity", tol=0.0):
    r"""Precision, recall and F1 of the learned code supports against the true ones.

    Entry :math:`(n, i)` of a code matrix is *active* when :math:`|z_{ni}| > \mathrm{tol}`.
    A matching pairs true dimensions :math:`i` with learned dimensions
    :math:`\pi(i)` one to one; then, pooled over all samples and pairs
    (micro-averaged),

    .. math::

        \mathrm{TP} = \#\{(n, i) : z_{ni} \text{ and } \hat z_{n\pi(i)} \text{ both active}\},
        \quad
        \mathrm{precision} = \frac{\mathrm{TP}}{\#\{\text{active } \hat z_{nj}\}},
        \quad
        \mathrm{recall} = \frac{\mathrm{TP}}{\#\{\text{active } z_{ni}\}},

    and :math:`F_1 = 2PR / (P + R)`. Activity of an unmatched learned latent is
    a false positive; activity of an unmatched true feature is a false negative.
    A ratio whose denominator is 0 (no active entry) is 0, as is :math:`F_1`
    when :math:`P + R = 0`.

    Parameters
    ----------
    true_codes : array of shape (n_samples, n_true)
        Ground-truth codes.
    learned_codes : array of shape (n_samples, n_learned)
        Learned codes of the same samples.
    matching : {"identity", "codes"} or (true_index, learned_index), default="identity"
        How learned dimensions correspond to true ones:

        * ``"identity"``: column :math:`i` with column :math:`i` (codes over the
          true dictionary, e.g. from :func:`skdict.sparse_encode`); the widths must agree;
        * ``"codes"``: the Hungarian matching on :math:`|\mathrm{corr}|` of the
          codes, as in :func:`skdict.metrics.mcc`;
        * a pair of 1-D integer arrays, e.g. the first two outputs of
          :func:`skdict.metrics.match_features` (matching by atoms).
    tol : float >= 0, default=0.0
        Entries with :math:`|z| \le` ``tol`` count as inactive (a small ``tol``
        ignores round-off in iterative solvers' codes).

    Returns
    -------
    scores : SupportScores
        Named tuple ``(precision, recall, f1)`` of floats in :math:`[0, 1]`.
    """
    if not isinstance(tol, Real) or isinstance(tol, bool) or not tol >= 0:
        raise ValueError(f"tol must be a float >= 0 (a bound on |z|), got {tol!r}.")
    true_codes, learned_codes = _check_codes_pair(true_codes, learned_codes, min_rows=1)
    xp = get_namespace(true_codes, learned_codes)
    n_true, n_learned = true_codes.shape[1], learned_codes.shape[1]
    if isinstance(matching, str) and matching == "identity":
        true_index, learned_index = _identity_pairs(xp, n_true, n_learned)
    elif isinstance(matching, str) and matching == "codes":
        true_index, learned_index, _ = match_codes(true_codes, learned_codes)
    elif isinstance(matching, str):
        raise ValueError(f"matching must be 'identity', 'codes', or a pair of index arrays; got {matching!r}.")
    else:
        true_index, learned_index = _explicit_pairs(xp, matching, n_true, n_learned)
    true_active = xp.abs(true_codes) > tol
    learned_active = xp.abs(learned_codes) > tol
    hits = int(xp.count_nonzero(true_active[:, true_index] & learned_active[:, learned_index]))
    precision = _safe_ratio(hits, int(xp.count_nonzero(learned_active)))
    recall = _safe_ratio(hits, int(xp.count_nonzero(true_active)))
    return SupportScores(precision, recall, _safe_ratio(2 * precision * recall, precision + recall))
