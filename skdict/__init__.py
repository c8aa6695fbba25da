"""skdict: sparse dictionary learning for mechanistic interpretability, the scikit-learn way."""

from skdict.coding import SparseCoder, sparse_encode
from skdict.dictionary import LISTA, FISTADictionaryLearning, SoftplusAdamDictionaryLearning
from skdict.exceptions import TrainingDivergedError
from skdict.sae import AnchoredSAE, BatchTopKSAE, GatedSAE, JumpReLUSAE, MatryoshkaSAE, MPSAE, ReLUSAE, TopKSAE
from skdict.triplets import TripletFeatureLearner

__version__ = "0.1.0.dev0"

__all__ = ["AnchoredSAE", "BatchTopKSAE", "FISTADictionaryLearning", "GatedSAE", "LISTA", "SoftplusAdamDictionaryLearning", "JumpReLUSAE", "MatryoshkaSAE", "MPSAE", "ReLUSAE", "SparseCoder", "TopKSAE", "TrainingDivergedError", "TripletFeatureLearner", "__version__", "sparse_encode"]
