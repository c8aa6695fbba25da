"""Dictionary geometry: ground-truth recovery, mean max cosine and mutual coherence.

Atoms are rows. Every cosine here is between rows scaled to unit norm by
:func:`_unit_rows`; a zero row has cosine 0 with everything.
"""

from __future__ import annotations

from numbers import Real

from skdict._array import get_namespace
from skdict.ops.atoms import normalize_rows
from skdict.metrics._validation import _check_matrix, _check_same_n_dims

# Largest number of cosines held at once by _max_abs_cosine (2**24 float64 = 128 MiB).
_BLOCK_ELEMENTS = 2**24


def _unit_rows(D):
    """``D`` with every nonzero row scaled to unit norm, whatever its scale; zero rows stay zero."""
    return normalize_rows(D, eps=0.0)


def _abs_cosine_blocks(A, B, *, exclude_diagonal=False):
    r"""Yield ``(start, stop, |A[start:stop] B^T|)``: the absolute cosines of unit rows, by row blocks of ``A``.

    Blocks hold at most about ``_BLOCK_ELEMENTS`` entries, so memory stays bounded
    for large dictionaries. With ``exclude_diagonal`` (``A`` is ``B``) the entries
    :math:`j = i` are set to 0.
    """
    xp = get_namespace(A, B)
    n_rows, n_cols = A.shape[0], B.shape[0]
    step = max(1, _BLOCK_ELEMENTS // n_cols)
    for start in range(0, n_rows, step):
        stop = min(start + step, n_rows)
        cosines = xp.abs(A[start:stop] @ B.T)
        if exclude_diagonal:
            cosines[xp.arange(stop - start), xp.arange(start, stop)] = 0
        yield start, stop, cosines


def _max_abs_cosine(A, B, *, exclude_diagonal=False):
    r"""For unit-row ``A`` and ``B``, return :math:`\max_j |\langle a_i, b_j \rangle|` for every row :math:`i`.

    See :func:`_abs_cosine_blocks` for the blocks and ``exclude_diagonal``.
    Values are clipped to at most 1.
    """
    xp = get_namespace(A, B)
    best = xp.empty(A.shape[0], dtype=A.dtype)
    for start, stop, cosines in _abs_cosine_blocks(A, B, exclude_diagonal=exclude_diagonal):
        best[start:stop] = xp.max(cosines, axis=1)
    return xp.minimum(best, 1)


def _unit_dictionaries(true_features, learned):
    """Validate both dictionaries; return them with unit rows, in their common floating dtype."""
    true_features = _check_matrix(true_features, "true_features")
    learned = _check_matrix(learned, "learned")
    _check_same_n_dims(true_features, learned, "true_features", "learned")
    dtype = get_namespace(true_features, learned).result_type(true_features.dtype, learned.dtype)
    return _unit_rows(true_features.astype(dtype)), _unit_rows(learned.astype(dtype))


def _best_cosines(true_features, learned):
    """Validate both dictionaries and return, per true atom, its best |cos| with a learned atom."""
    return _max_abs_cosine(*_unit_dictionaries(true_features, learned))


def gt_recovery(true_features, learned, threshold=0.95):
    r"""Fraction of true atoms recovered by some learned atom.

    True atom :math:`f_i` counts as recovered when
    :math:`\max_j |\cos(f_i, \hat d_j)| > \tau`, with :math:`\tau` = ``threshold``.
    The absolute value makes the score blind to sign flips; it is also blind to
    the order and the (positive) scale of the learned atoms.

    Parameters
    ----------
    true_features : array of shape (n_true, n_dims)
        Ground-truth atoms :math:`f_i` as rows (any norm).
    learned : array of shape (n_learned, n_dims)
        Learned atoms :math:`\hat d_j` as rows (any norm), e.g. ``components_``.
    threshold : float in [0, 1], default=0.95
        Recovery threshold :math:`\tau` on the absolute cosine.

    Returns
    -------
    recovery : float
        In :math:`[0, 1]`.
    """
    if not isinstance(threshold, Real) or not 0 <= threshold <= 1:
        raise ValueError(f"threshold must be a float in [0, 1] (a bound on |cos|), got {threshold!r}.")
    best = _best_cosines(true_features, learned)
    xp = get_namespace(best)
    return float(xp.mean(best > threshold))


def mean_max_cosine(true_features, learned):
    r"""Mean over true atoms of the best absolute cosine with any learned atom.

    .. math::

        M_\mathrm{IP} = \frac{1}{n_\text{true}} \sum_i \max_j |\cos(f_i, \hat d_j)|,

    the "M_IP" score of the identifiability literature: 1 when every true atom
    is matched exactly (up to sign and scale).

    Parameters
    ----------
    true_features : array of shape (n_true, n_dims)
        Ground-truth atoms :math:`f_i` as rows (any norm).
    learned : array of shape (n_learned, n_dims)
        Learned atoms :math:`\hat d_j` as rows (any norm).

    Returns
    -------
    m_ip : float
        In :math:`[0, 1]`.
    """
    best = _best_cosines(true_features, learned)
    return float(get_namespace(best).mean(best))


def mutual_coherence(D):
    r"""Mutual coherence :math:`\mu(D) = \max_{i \ne j} |\cos(d_i, d_j)|` of the rows of ``D``.

    Parameters
    ----------
    D : array of shape (n_atoms, n_dims)
        Atoms :math:`d_i` as rows (any norm), :math:`n_\text{atoms} \ge 2`.

    Returns
    -------
    mu : float
        In :math:`[0, 1]`; 0 for orthogonal atoms, 1 when two atoms are parallel.
    """
    D = _unit_rows(_check_matrix(D, "D", min_rows=2))
    best = _max_abs_cosine(D, D, exclude_diagonal=True)
    return float(get_namespace(best).max(best))
