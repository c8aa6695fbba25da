"""Reconstruction quality: explained variance and the fraction of variance unexplained."""

from __future__ import annotations

import math

from skdict._array import get_namespace
from skdict.metrics._validation import _check_matrix
from skdict.ops.scaling import max_exponent


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
    sum of squares overflows at 256). Each sum of squares is computed on its
    array multiplied by an exact power of two that brings its largest entry into
    :math:`[0.5, 1)`, accumulated in float64, and the two exponents are combined
    at the end (:func:`_sum_of_squares`). So any finite input gives the right
    value: float32 data near :math:`10^{38}` and subnormal float64 data near
    :math:`10^{-310}` alike. Only a value below :math:`-1.8 \cdot 10^{308}`
    (a reconstruction error beyond float64's range times the variance) is
    returned as ``-inf``, its correct rounding.
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
    if bool(xp.all(X == X[0])):
        raise ValueError(
            "X has zero variance (all its rows are identical), so explained variance is undefined "
            "(its denominator is 0); pass data whose rows differ."
        )
    common = xp.maximum(max_exponent(X), max_exponent(X_hat))  # X - X_hat cannot overflow at this scale
    ss_res, res_exponent = _sum_of_squares(xp.ldexp(X, -common) - xp.ldexp(X_hat, -common))
    X_unit_exponent = max_exponent(X)
    X_unit = xp.ldexp(X, -X_unit_exponent)
    ss_tot, tot_exponent = _sum_of_squares(X_unit - xp.mean(X_unit, axis=0, dtype=xp.float64))
    shift = 2 * (int(common) + res_exponent - int(X_unit_exponent) - tot_exponent)
    try:
        ratio = math.ldexp(ss_res / ss_tot, shift)
    except OverflowError:
        ratio = math.inf
    return 1.0 - ratio


def _sum_of_squares(A):
    r"""``(m, e)`` with :math:`\sum A^2 = m \cdot 4^{e}`: the squares of :math:`2^{-e} A`, summed in float64.

    :math:`e` is the exponent of :math:`\max|A|`, so every scaled entry is below 1
    in magnitude: no square overflows, and none that matters underflows.
    """
    xp = get_namespace(A)
    exponent = max_exponent(A)
    scaled = xp.ldexp(A, -exponent)
    return float(xp.sum(scaled * scaled, dtype=xp.float64)), int(exponent)


def fvu(X, X_hat):
    r"""Fraction of variance unexplained, :math:`\mathrm{FVU} = 1 - \mathrm{EV}`.

    See :func:`explained_variance` for the definition, the arguments and the errors.

    Returns
    -------
    fvu : float
    """
    return 1.0 - explained_variance(X, X_hat)
