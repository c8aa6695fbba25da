"""Synthetic data with known ground-truth features for dictionary-learning benchmarks."""

from skdict.datasets._compositional_ood import make_compositional_ood
from skdict.datasets._hierarchical import make_hierarchical_features
from skdict.datasets._linear_representation import make_linear_representation_bench
from skdict.datasets._triplets import (
    make_eigendecomposition_teaching_set,
    make_sparse_teaching_set,
    make_triplet_feedback,
)

__all__ = [
    "make_compositional_ood",
    "make_eigendecomposition_teaching_set",
    "make_hierarchical_features",
    "make_linear_representation_bench",
    "make_sparse_teaching_set",
    "make_triplet_feedback",
]
