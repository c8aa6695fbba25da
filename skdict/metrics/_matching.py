r"""One-to-one matching of learned to true features: matched cosine (atoms) and MCC (codes).

Both scores pair every true feature with at most one learned latent and every
learned latent with at most one true feature, choosing the pairing that
maximises the summed similarity (the assignment problem, solved exactly by
:func:`scipy.optimize.linear_sum_assignment`). Unlike the best-match scores of
:mod:`skdict.metrics._dictionary`, one learned latent cannot explain two true
features. The similarity matrix is computed on the arrays' device; the
assignment itself runs on the host (SciPy has no GPU solver), which costs one
copy of the (n_true, n_learned) matrix.
"""

from __future__ import annotations

from scipy.optimize import linear_sum_assignment

from skdict._array import get_namespace, to_numpy
from skdict.metrics._dictionary import _unit_dictionaries
from skdict.metrics._validation import _check_matrix
from skdict.ops.scaling import max_exponent


def _assign(similarity):
    """Rows and columns of the assignment maximising the summed ``similarity``, as arrays of its backend."""
    xp = get_namespace(similarity)
    rows, cols = linear_sum_assignment(to_numpy(similarity), maximize=True)
    return xp.asarray(rows), xp.asarray(cols)


def match_features(true_features, learned):
    r"""Hungarian matching of true atoms to learned atoms by absolute cosine.

    Finds the one-to-one pairing :math:`\pi` maximising
    :math:`\sum_i |\cos(f_i, \hat d_{\pi(i)})|`; when there are fewer learned
    than true atoms, only ``n_learned`` true atoms get a partner.

    Parameters
    ----------
    true_features : array of shape (n_true, n_dims)
        Ground-truth atoms :math:`f_i` as rows (any norm).
    learned : array of shape (n_learned, n_dims)
        Learned atoms :math:`\hat d_j` as rows (any norm), e.g. ``components_``.

    Returns
    -------
    true_index, learned_index : int arrays of shape (n_pairs,)
        The matched pairs, ``true_index`` increasing; ``n_pairs = min(n_true, n_learned)``.
    abs_cosine : array of shape (n_pairs,)
        :math:`|\cos|` of each pair. All three follow the input's backend.
    """
    return _feature_pairs(true_features, learned)[:3]


def _feature_pairs(true_features, learned):
    """:func:`match_features`'s three arrays, and ``n_true``."""
    F, D = _unit_dictionaries(true_features, learned)
    xp = get_namespace(F, D)
    similarity = xp.minimum(xp.abs(F @ D.T), 1)
    rows, cols = _assign(similarity)
    return rows, cols, similarity[rows, cols], F.shape[0]


def matched_cosine(true_features, learned):
    r"""Mean absolute cosine of the Hungarian-matched pairs of true and learned atoms.

    .. math::

        \frac{1}{n_\text{true}} \max_\pi \sum_i |\cos(f_i, \hat d_{\pi(i)})|

    over one-to-one pairings :math:`\pi` (see :func:`match_features`); true atoms
    left without a partner (fewer learned atoms than true ones) count as 0.
    It is blind to the order, sign and scale of the learned atoms, and never
    exceeds :func:`mean_max_cosine`, which lets one learned atom serve several
    true atoms.

    Parameters
    ----------
    true_features : array of shape (n_true, n_dims)
    learned : array of shape (n_learned, n_dims)

    Returns
    -------
    score : float
        In :math:`[0, 1]`.
    """
    _, _, abs_cosine, n_true = _feature_pairs(true_features, learned)
    return float(get_namespace(abs_cosine).sum(abs_cosine)) / n_true


def _check_codes_pair(true_codes, learned_codes, *, min_rows=2):
    """Validate two dense code matrices over the same samples; return them in a common floating dtype."""
    true_codes = _check_matrix(true_codes, "true_codes", min_rows=min_rows)
    learned_codes = _check_matrix(learned_codes, "learned_codes", min_rows=min_rows)
    if true_codes.shape[0] != learned_codes.shape[0]:
        raise ValueError(
            "true_codes and learned_codes must have one row per sample, for the same samples; got "
            f"true_codes.shape={true_codes.shape} and learned_codes.shape={learned_codes.shape}."
        )
    xp = get_namespace(true_codes, learned_codes)
    dtype = xp.result_type(true_codes.dtype, learned_codes.dtype)
    return true_codes.astype(dtype, copy=False), learned_codes.astype(dtype, copy=False)


def _varying(codes):
    """Columns whose entries are not all equal (exact test, free of rounding in the mean)."""
    return get_namespace(codes).any(codes != codes[:1], axis=0)


def _unit_centred_columns(codes):
    """Columns centred and scaled to unit norm; constant columns become 0.

    Each column is first multiplied by the power of two that brings its largest
    :math:`|z|` into [0.5, 1) (exact; correlation is blind to scale), so its mean
    and sum of squares cannot overflow or underflow at any finite scale.
    """
    xp = get_namespace(codes)
    varying = _varying(codes)
    codes = xp.ldexp(codes, -max_exponent(codes, axis=0))
    centred = codes - xp.mean(codes, axis=0)
    norms = xp.sqrt(xp.sum(centred * centred, axis=0))
    return xp.where(varying, centred / xp.where(varying & (norms > 0), norms, 1), 0)


def match_codes(true_codes, learned_codes):
    r"""Hungarian matching of true code dimensions to learned ones by absolute Pearson correlation.

    The correlation between true dimension :math:`i` and learned dimension
    :math:`j` over the samples is
    :math:`\rho_{ij} = \operatorname{corr}(z_{\cdot i}, \hat z_{\cdot j})`; the
    pairing maximises :math:`\sum_i |\rho_{i\pi(i)}|`. True dimensions that never
    vary over these samples (a feature that is always off, or always equal) have
    no correlation and are left out; a constant learned dimension (a dead latent)
    has correlation 0 with everything.

    Parameters
    ----------
    true_codes : array of shape (n_samples, n_true)
        Ground-truth codes :math:`z`, ``n_samples >= 2``.
    learned_codes : array of shape (n_samples, n_learned)
        Learned codes :math:`\hat z` of the same samples, e.g. ``estimator.transform(X)``.

    Returns
    -------
    true_index, learned_index : int arrays of shape (n_pairs,)
        The matched pairs, indices into the original columns; ``true_index``
        increasing and never a constant true dimension.
    abs_correlation : array of shape (n_pairs,)
        :math:`|\rho|` of each pair.

    Raises
    ------
    ValueError
        When no true dimension varies over the samples given.
    """
    return _code_pairs(true_codes, learned_codes)[:3]


def _code_pairs(true_codes, learned_codes):
    """:func:`match_codes`'s three arrays, and the number of varying true dimensions."""
    true_codes, learned_codes = _check_codes_pair(true_codes, learned_codes)
    xp = get_namespace(true_codes, learned_codes)
    kept = xp.nonzero(_varying(true_codes))[0]
    if kept.shape[0] == 0:
        raise ValueError(
            "No column of true_codes varies over these samples, so no correlation is defined; "
            "pass more (or other) samples."
        )
    T = _unit_centred_columns(true_codes[:, kept])
    L = _unit_centred_columns(learned_codes)
    similarity = xp.minimum(xp.abs(T.T @ L), 1)
    rows, cols = _assign(similarity)
    return kept[rows], cols, similarity[rows, cols], int(kept.shape[0])


def mcc(true_codes, learned_codes):
    r"""Mean correlation coefficient: mean Hungarian-matched :math:`|\rho|` over varying true dimensions.

    .. math::

        \mathrm{MCC} = \frac{1}{|V|} \max_\pi \sum_{i \in V}
        |\operatorname{corr}(z_{\cdot i}, \hat z_{\cdot \pi(i)})|,

    with :math:`V` the true dimensions that vary over the samples and
    :math:`\pi` one-to-one (see :func:`match_codes`); true dimensions left
    without a partner (fewer learned than varying true dimensions) count as 0.
    MCC is 1 exactly when each varying true dimension is an affine function of
    its own learned dimension; it is blind to the order, sign, scale and offset
    of the learned dimensions. Dimensions that never vary are left out because
    a correlation with a constant is undefined (e.g. latents absent from an OOD
    split).

    Parameters
    ----------
    true_codes : array of shape (n_samples, n_true)
    learned_codes : array of shape (n_samples, n_learned)

    Returns
    -------
    mcc : float
        In :math:`[0, 1]`.
    """
    _, _, abs_correlation, n_varying = _code_pairs(true_codes, learned_codes)
    return float(get_namespace(abs_correlation).sum(abs_correlation)) / n_varying
