"""Per-feature mean and total variance of rows that arrive in batches (one pass, no overflow).

Explained variance needs :math:`\\sum_n \\|y_n - \\bar y\\|^2`, the total variance
of the target about its per-feature mean. Over a stream the mean is not known in
advance, so each batch's count, mean and centred sum of squares :math:`M_2` are
merged into the running ones (Chan, Golub & LeVeque, 1979):

.. math::

    \\delta = \\bar y_b - \\bar y_a, \\quad
    M_2 = M_{2,a} + M_{2,b} + \\delta^2 \\, n_a n_b / (n_a + n_b),

which avoids the cancellation of :math:`\\sum y^2 - n \\bar y^2` when the mean is
large against the spread. Each batch is scaled by its largest magnitude before
squaring (so float32 data near 1e30 does not overflow) and sums are kept in float64.
"""

from __future__ import annotations

import math

import numpy as np

from skdict._array import get_namespace, to_numpy


def batch_moments(Y):
    """Count, per-feature mean and per-feature centred sum of squares of one batch, as float64 NumPy.

    Parameters
    ----------
    Y : array of shape (n_rows, n_features), NumPy or CuPy

    Returns
    -------
    n : int
    mean : ndarray of shape (n_features,), float64
    m2 : ndarray of shape (n_features,), float64
        :math:`\\sum_n (y_{nj} - \\bar y_j)^2`.
    """
    xp = get_namespace(Y)
    Y64 = Y.astype(xp.float64, copy=False)
    mean = Y64.mean(axis=0)
    centred = Y64 - mean
    scale = float(xp.max(xp.abs(centred))) if centred.size else 0.0
    if scale == 0.0 or not math.isfinite(scale):
        m2 = xp.zeros(Y.shape[1], dtype=xp.float64) if scale == 0.0 else xp.sum(centred * centred, axis=0)
    else:
        centred /= scale
        m2 = xp.sum(centred * centred, axis=0) * (scale * scale)
    return Y.shape[0], to_numpy(mean), to_numpy(m2)


class RunningMoments:
    """Per-feature mean and centred sum of squares over batches, merged as they come.

    Attributes
    ----------
    n : int
        Rows seen.
    mean : ndarray of shape (n_features,) or None
    m2 : ndarray of shape (n_features,) or None
    """

    def __init__(self):
        self.n, self.mean, self.m2 = 0, None, None

    def update(self, Y):
        """Add the rows of ``Y`` (NumPy or CuPy, shape (n_rows, n_features))."""
        n_b, mean_b, m2_b = batch_moments(Y)
        if n_b == 0:
            return self
        if self.n == 0:
            self.n, self.mean, self.m2 = n_b, mean_b, m2_b
            return self
        n = self.n + n_b
        delta = mean_b - self.mean
        self.m2 = self.m2 + m2_b + delta * delta * (self.n * n_b / n)
        self.mean = self.mean + delta * (n_b / n)
        self.n = n
        return self

    @property
    def total_variance(self):
        """:math:`\\sum_n \\|y_n - \\bar y\\|^2` over every row seen (0.0 before any row)."""
        return 0.0 if self.m2 is None else float(np.sum(self.m2))
