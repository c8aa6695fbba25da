"""The SAE family: ReLU (L1), TopK, BatchTopK, JumpReLU and matching-pursuit sparse autoencoders and transcoders."""

from skdict.sae.anchored import AnchoredSAE
from skdict.sae.batchtopk import BatchTopKSAE
from skdict.sae.gated import GatedSAE
from skdict.sae.jumprelu import JumpReLUSAE
from skdict.sae.matryoshka import MatryoshkaSAE
from skdict.sae.mp import MPSAE
from skdict.sae.relu import ReLUSAE
from skdict.sae.topk import TopKSAE

__all__ = ["AnchoredSAE", "BatchTopKSAE", "GatedSAE", "JumpReLUSAE", "MatryoshkaSAE", "MPSAE", "ReLUSAE", "TopKSAE"]
