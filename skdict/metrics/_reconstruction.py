"""Reconstruction quality: explained variance and the fraction of variance unexplained."""

from __future__ import annotations

from skdict._array import get_namespace
from skdict.metrics._validation import _check_matrix, _max_exponent


def explained_variance(X, X_hat):
    r"""Fraction of the variance of ``X`` that the reconstruction ``X_hat`` explains.

    .. math::

        \mathrm{EV} = 1 - \frac{\sum_i \lVert x_i - \hat x_i \rVert_2^2}
                               {\sum_i \lVert x_i - \bar x \rVert_2^2},

    with :math:`\bar x` the per-feature mean of ``X``; both sums run over samples
    and features. This equals scikit-learn's
    ``r2_score(X, X_hat, multioutput="variance_weighted")`` when no feature of
    ``X`` is constant. Perfect reconstruction gives 1, predicting :math:`\bar x`
    gives 0, and worse reconstructions are negative.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        The data, :math:`n_\text{samples} \ge 2`, not all rows identical.
    X_hat : array of shape (n_samples, n_features)
        Its reconstruction.

    Returns
    -------
    ev : float

    Raises
    ------
    ValueError
        Shapes differ, fewer than 2 rows, NaN/inf, complex values, or all rows of ``X`` equal.

    Notes
    -----
    Any dtype is accepted; float16 and integers are read as float64 (a float16
    sum of squares overflows at 256). Both arrays are first multiplied by one
    power of two (exact) that brings :math:`\max(|X|, |\hat X|)` into
    :math:`[0.5, 1)`, and sums are accumulated in float64, so any finite input
    gives a finite answer: float32 data near :math:`10^{38}` and subnormal
    float64 data near :math:`10^{-310}` alike.
    """
    X = _check_matrix(X, "X")
    X_hat = _check_matrix(X_hat, "X_hat")
    if X.shape != X_hat.shape:
        raise ValueError(f"X and X_hat must have the same shape; got X.shape={X.shape} and X_hat.shape={X_hat.shape}.")
    if X.shape[0] < 2:
        raise ValueError(
            f"explained_variance needs at least 2 samples (rows) in X to measure its variance; got X.shape={X.shape}."
        )
    xp = get_namespace(X, X_hat)
    # EV is a ratio, blind to a common scale: both arrays are multiplied by one power of two (exact)
    # so that max(|X|, |X_hat|) is in [0.5, 1) and no square over- or underflows in the input's dtype.
    exponent = -xp.maximum(_max_exponent(X), _max_exponent(X_hat))
    X, X_hat = xp.ldexp(X, exponent), xp.ldexp(X_hat, exponent)
    residual = X - X_hat
    centred = X - xp.mean(X, axis=0, dtype=xp.float64)
    ss_res = xp.sum(residual * residual, dtype=xp.float64)
    ss_tot = xp.sum(centred * centred, dtype=xp.float64)
    if bool(xp.all(X == X[0])):
        raise ValueError(
            "X has zero variance (all its rows are identical), so explained variance is undefined "
            "(its denominator is 0); pass data whose rows differ."
        )
    if float(ss_tot) == 0.0:
        raise ValueError(
            "The variance of X is too small relative to its largest value to be represented in float64 "
            "(its rows differ by less than about 1e-150 times max |X|), so explained variance is undefined; "
            "subtract the common value from X and X_hat first."
        )
    return float(1.0 - ss_res / ss_tot)


def fvu(X, X_hat):
    r"""Fraction of variance unexplained, :math:`\mathrm{FVU} = 1 - \mathrm{EV}`.

    See :func:`explained_variance` for the definition, the arguments and the errors.

    Returns
    -------
    fvu : float
    """
    return 1.0 - explained_variance(X, X_hat)
