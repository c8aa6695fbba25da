"""Metrics for sparse dictionary learning: reconstruction, sparsity and dictionary geometry.

Every function accepts NumPy or CuPy arrays (and, for the code statistics,
SciPy/CuPy sparse matrices) and returns a Python float.
"""

from skdict.metrics._dictionary import gt_recovery, mean_max_cosine, mutual_coherence
from skdict.metrics._reconstruction import explained_variance, fvu
from skdict.metrics._sparsity import dead_fraction, l0

__all__ = [
    "dead_fraction",
    "explained_variance",
    "fvu",
    "gt_recovery",
    "l0",
    "mean_max_cosine",
    "mutual_coherence",
]
