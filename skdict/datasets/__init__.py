"""Synthetic data with known ground-truth features for dictionary-learning benchmarks."""

from skdict.datasets._linear_representation import make_linear_representation_bench

__all__ = ["make_linear_representation_bench"]
