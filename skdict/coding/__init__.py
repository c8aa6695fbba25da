"""Sparse coding on a fixed dictionary: :func:`sparse_encode` and the :class:`SparseCoder` transformer."""

from skdict.coding._coder import SparseCoder
from skdict.coding._encode import sparse_encode

__all__ = ["SparseCoder", "sparse_encode"]
