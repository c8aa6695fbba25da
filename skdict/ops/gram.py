r"""The Gram matrix :math:`G = A A^\top` of a matrix's rows, computed in row blocks.

Every solver that needs the inner products of a dictionary's atoms
(:math:`G = D D^\top`, FISTA's Lipschitz constant, OMP, matching pursuit, the
working-set solver) or of a code matrix's columns (:math:`Z^\top Z`, the
least-squares dictionary) takes it from :func:`gram_matrix`.

Why not ``A @ A.T``: NumPy hands a product of an array with its own transpose to
BLAS as a symmetric rank-k update (``?syrk``), and the multithreaded ``syrk`` of
the OpenBLAS in NumPy's wheels can crash the process (SIGSEGV, no traceback) on
large outputs. Measured on this project's CI machine (NumPy 2.4.6, OpenBLAS
0.3.31, 2 threads): ``D @ D.T`` for a C-ordered float64 ``D`` of 16,000 × 768
crashes, 14,000 × 768 does not; float32 crashes at 32,000 × 768; with
``OPENBLAS_NUM_THREADS=1`` or a copied transpose it runs. It is the NumPy issue
numpy/numpy#19685 (open since 2021, 80,000 × 3,072). A 16,000-atom dictionary is
the width of seed 000's Table 1, so this is not a corner.

A block of rows times the rows from it on, ``A[i:j] @ A[i:].T``, is not a
product with the operand's own transpose (the shapes differ), so BLAS runs a
general product (``?gemm``) for it and writes the block's part of the upper
triangle straight into the output; the lower triangle is its mirror. That is
the floating-point work of ``syrk`` (half a full product, plus the diagonal
blocks) with no copy of ``A``, and ``G`` is exactly symmetric. A matrix of at
most :data:`GRAM_BLOCK_ROWS` rows is one ``A @ A.T`` (the crash needs far larger).
"""

from __future__ import annotations

from skdict._array import get_namespace

#: Rows of ``A`` per general matrix product; matrices with no more rows are one product.
GRAM_BLOCK_ROWS = 4096


def gram_matrix(A, *, block_rows=GRAM_BLOCK_ROWS):
    r"""Gram matrix :math:`G = A A^\top` of the rows of ``A``, in blocks of rows.

    Parameters
    ----------
    A : array of shape (n_rows, n_cols)
        NumPy or CuPy. For the Gram of the columns (:math:`Z^\top Z`), pass
        ``Z.T`` (a view; nothing is copied).
    block_rows : int, default=GRAM_BLOCK_ROWS
        Rows of ``A`` per product; ``A`` with at most this many rows is one product.

    Returns
    -------
    G : array of shape (n_rows, n_rows)
        ``A``'s dtype and namespace; ``G[i, j]`` is the inner product of rows ``i``
        and ``j``; exactly symmetric.

    Raises
    ------
    ValueError
        When ``A`` is not 2-D or ``block_rows`` is not a positive integer.

    Notes
    -----
    ``A @ A.T`` would let NumPy call ``syrk``, whose multithreaded OpenBLAS kernel
    can crash the process on large outputs (numpy/numpy#19685; see the module).
    """
    if getattr(A, "ndim", None) != 2:
        raise ValueError(f"A must be a 2-D array, got shape {getattr(A, 'shape', None)}.")
    if isinstance(block_rows, bool) or not isinstance(block_rows, int) or block_rows < 1:
        raise ValueError(f"block_rows must be a positive integer, got {block_rows!r}.")
    n = A.shape[0]
    if n <= block_rows:
        return A @ A.T
    xp = get_namespace(A)
    G = xp.empty((n, n), dtype=A.dtype)
    for start in range(0, n, block_rows):
        stop = min(start + block_rows, n)
        G[start:stop, start:] = A[start:stop] @ A[start:].T  # this block's rows, on and right of the diagonal
        G[stop:, start:stop] = G[start:stop, stop:].T  # mirrored below it
    return G
