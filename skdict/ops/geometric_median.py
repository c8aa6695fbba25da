"""Geometric median by Weiszfeld's iteration."""

from __future__ import annotations

from skdict._array import get_namespace


def geometric_median(X, *, max_iter=100, tol=1e-6):
    """Point minimising the sum of Euclidean distances to the rows of ``X``.

    Weiszfeld's fixed point :math:`m \\leftarrow \\sum_n w_n x_n / \\sum_n w_n`,
    :math:`w_n = 1/\\max(\\|x_n - m\\|, \\epsilon)`, started at the mean. Used to
    initialise the decoder bias :math:`b_{pre}` of an SAE (Bricken et al., 2023).

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    max_iter : int
    tol : float
        Stop when the median moves by less than ``tol`` times the data's scale.

    Returns
    -------
    median : array of shape (n_features,), in ``X``'s dtype.
    """
    xp = get_namespace(X)
    work = X.astype(xp.float64, copy=False)
    median = work.mean(axis=0)
    scale = float(xp.sqrt(xp.mean(xp.sum((work - median) ** 2, axis=1)))) or 1.0
    floor = 1e-12 * scale
    for _ in range(max_iter):
        distances = xp.sqrt(xp.sum((work - median) ** 2, axis=1))
        weights = 1.0 / xp.maximum(distances, floor)
        updated = weights @ work / xp.sum(weights)
        shift = float(xp.sqrt(xp.sum((updated - median) ** 2)))
        median = updated
        if shift <= tol * scale:
            break
    return median.astype(X.dtype, copy=False)
