"""Per-feature mean and total variance of rows that arrive in batches (one pass, no overflow).

Explained variance needs :math:`\\sum_n \\|y_n - \\bar y\\|^2`, the total variance
of the target about its per-feature mean. Over a stream the mean is not known in
advance, so each batch's count, mean and centred sum of squares :math:`M_2` are
merged into the running ones (Chan, Golub & LeVeque, 1979):

.. math::

    \\delta = \\bar y_b - \\bar y_a, \\quad
    M_2 = M_{2,a} + M_{2,b} + \\delta^2 \\, n_a n_b / (n_a + n_b),

which avoids the cancellation of :math:`\\sum y^2 - n \\bar y^2` when the mean is
large against the spread. Sums are kept in float64, each row block scaled by its largest magnitude before
squaring (so float32 data near its largest values does not overflow).
"""

from __future__ import annotations

import math

import numpy as np

from skdict._array import get_namespace, to_numpy


#: Elements of one row block squared at once (a float64 copy of the block is the only scratch).
_BLOCK_ELEMENTS = 1 << 20


def batch_moments(Y):
    """Count, per-feature mean and per-feature centred sum of squares of one batch, as float64 NumPy.

    The mean is accumulated in float64 without copying ``Y``; the centred squares are
    summed over row blocks of :data:`_BLOCK_ELEMENTS` elements, each scaled by its
    largest magnitude (so float32 data near its largest values does not overflow),
    so the scratch memory is bounded whatever the batch size.

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
    n_rows, n_features = Y.shape
    if n_rows == 0:
        return 0, np.zeros(n_features), np.zeros(n_features)
    mean = Y.mean(axis=0, dtype=xp.float64)
    m2 = xp.zeros(n_features, dtype=xp.float64)
    step = max(1, _BLOCK_ELEMENTS // max(1, n_features))
    for start in range(0, n_rows, step):
        centred = Y[start : start + step].astype(xp.float64) - mean
        scale = float(xp.max(xp.abs(centred)))
        if scale == 0.0:
            continue
        if math.isfinite(scale) and scale > 1.0:  # above 1 the squares may overflow; below, they stay as they are
            centred /= scale
            m2 += xp.sum(centred * centred, axis=0) * (scale * scale)
        else:
            m2 += xp.sum(centred * centred, axis=0)
    return n_rows, to_numpy(mean), to_numpy(m2)


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
        return self.merge(*batch_moments(Y))

    def merge(self, n_b, mean_b, m2_b):
        """Add a batch given by its :func:`batch_moments` (e.g. computed on another thread)."""
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
