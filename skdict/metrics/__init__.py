"""Metrics for sparse dictionary learning: reconstruction, sparsity, dictionary geometry,
ground-truth matching (atoms, codes, supports), absorption, and scorers for model selection.

Every function accepts NumPy or CuPy arrays (and, for the code statistics,
SciPy/CuPy sparse matrices). Scores are Python floats; ``match_features`` and
``match_codes`` return the matched index pairs (arrays of the input's backend),
``support_scores`` a named tuple, ``get_scorer``/``make_gt_scorer`` scorer callables.
"""

from skdict.metrics._absorption import absorption_score
from skdict.metrics._coherence import babel
from skdict.metrics._dictionary import gt_recovery, mean_max_cosine, mutual_coherence
from skdict.metrics._feature_matrix import feature_matrix_pcc, make_feature_matrix_scorer
from skdict.metrics._firing import firing_frequency
from skdict.metrics._matching import match_codes, match_features, matched_cosine, mcc
from skdict.metrics._reconstruction import explained_variance, fvu
from skdict.metrics._scorers import get_scorer, make_gt_scorer
from skdict.metrics._sparsity import dead_fraction, l0
from skdict.metrics._support import support_scores

#: Short name for the Pearson correlation of two feature matrices' entries.
pcc = feature_matrix_pcc

__all__ = [
    "absorption_score",
    "babel",
    "dead_fraction",
    "explained_variance",
    "feature_matrix_pcc",
    "firing_frequency",
    "fvu",
    "get_scorer",
    "gt_recovery",
    "l0",
    "make_feature_matrix_scorer",
    "make_gt_scorer",
    "match_codes",
    "match_features",
    "matched_cosine",
    "mcc",
    "mean_max_cosine",
    "mutual_coherence",
    "pcc",
    "support_scores",
]
