"""Learning the feature matrix Φ from triplet feedback (:class:`TripletFeatureLearner`)."""

from skdict.triplets._estimator import TripletFeatureLearner

__all__ = ["TripletFeatureLearner"]
