"""Classical dictionary learning: alternating FISTA + least squares, Adam on softplus codes, learned ISTA."""

from skdict.dictionary.fista_dictionary import FISTADictionaryLearning
from skdict.dictionary.lista import LISTA
from skdict.dictionary.softplus_adam import SoftplusAdamDictionaryLearning

__all__ = ["LISTA", "FISTADictionaryLearning", "SoftplusAdamDictionaryLearning"]
