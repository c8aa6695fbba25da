"""Synthetic data with known ground-truth features for dictionary-learning benchmarks."""

from skdict.datasets._compositional_ood import make_compositional_ood
from skdict.datasets._hierarchical import make_hierarchical_features
from skdict.datasets._linear_representation import make_linear_representation_bench

__all__ = ["make_compositional_ood", "make_hierarchical_features", "make_linear_representation_bench"]
