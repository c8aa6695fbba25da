"""Sparse code matrices: products with dense matrices that never build the dense code.

A code matrix :math:`Z` (n_rows x n_components) with few nonzeros per row is kept
as row-sorted coordinate triples and multiplied through a CSR matrix, so that
decoding :math:`Z W_{dec}` and the weight gradient :math:`Z^\\top G` cost
O(nnz x n_features) instead of O(n_rows x n_components x n_features). Above a
density where a dense GEMM is faster, the same object uses a dense matrix.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

from skdict._array import get_namespace, sparse_namespace
from skdict.ops._threads import run_blocks, split

#: Above this fraction of nonzeros, dense GEMMs beat sparse products on a CPU.
DENSE_ABOVE = 0.02
#: Elements of a (pairs x n_features) block gathered at once by :func:`sampled_row_dots`
#: (about 2 MiB of float32: the gathered rows stay in cache while they are used).
_GATHER_BLOCK = 1 << 19
#: The same on a GPU, where fewer, larger kernels are faster (128 MiB of float32).
_GATHER_BLOCK_GPU = 1 << 25
#: :func:`sampled_row_dots` pads rows to a common width when that adds at most this factor of work.
_MAX_PADDING = 2.0


class CodeMatrix:
    """Code matrix given by its nonzeros, sorted by row.

    Parameters
    ----------
    rows, cols : int arrays of shape (nnz,)
        Coordinates of the nonzeros; ``rows`` must be non-decreasing.
    values : array of shape (nnz,)
        The nonzero values :math:`z_{nj}`.
    shape : tuple (n_rows, n_components)

    Notes
    -----
    On NumPy, the sparse products run on threads over row blocks of :math:`Z`
    (for :meth:`dot`) and of :math:`Z^\\top`, built once as its own CSR matrix
    (for :meth:`tdot`), so that every thread writes its own rows of the result.
    :meth:`with_values` gives a matrix with the same nonzero pattern that reuses
    both structures.
    """

    def __init__(self, rows, cols, values, shape):
        self.rows, self.cols, self.values, self.shape = rows, cols, values, shape
        self.xp = get_namespace(values)
        self._matrix = None
        self._pattern = {}  # index structures shared with with_values()

    @property
    def nnz(self):
        return int(self.values.shape[0])

    @property
    def density(self):
        n_rows, n_cols = self.shape
        return self.nnz / max(n_rows * n_cols, 1)

    @property
    def _is_dense(self):
        return self.density > DENSE_ABOVE

    @classmethod
    def from_row_pairs(cls, indices, values, n_components):
        """Codes given as ``k`` (column, value) pairs per row, arrays of shape (n_rows, k).

        What a pursuit records (a repeated column adds up, as in CSR).
        """
        xp = get_namespace(values)
        n_rows, k = indices.shape
        rows = xp.repeat(xp.arange(n_rows, dtype=indices.dtype), k)
        return cls(rows, indices.ravel(), values.ravel(), (n_rows, n_components))

    def with_values(self, values):
        """The code matrix with the same nonzero coordinates and new ``values``."""
        other = CodeMatrix(self.rows, self.cols, values, self.shape)
        other._pattern = self._pattern
        return other

    def _index_dtype(self):
        # 32-bit indices: what cuSPARSE wants, and half the memory traffic on a CPU.
        xp = self.xp
        return xp.int32 if max(self.nnz, max(self.shape)) < 2**31 else xp.int64

    def _row_pointers(self):
        """CSR ``(indptr, indices)`` of :math:`Z` (built once per pattern)."""
        if "csr" not in self._pattern:
            xp = self.xp
            index = self._index_dtype()
            counts = xp.bincount(self.rows, minlength=self.shape[0])
            indptr = xp.concatenate([xp.zeros(1, dtype=index), xp.cumsum(counts).astype(index)])
            self._pattern["csr"] = (indptr, self.cols.astype(index, copy=False))
        return self._pattern["csr"]

    def _transposed_pointers(self):
        """CSR ``(indptr, indices, order)`` of :math:`Z^\\top`: ``values[order]`` are its data."""
        if "csr_t" not in self._pattern:
            xp = self.xp
            index = self._index_dtype()
            if xp is np:
                # SciPy's CSR -> CSC conversion is an O(nnz) counting sort; carrying the
                # positions 0..nnz-1 as data yields the permutation (stable within a column).
                indptr, indices = self._row_pointers()
                positions = np.arange(self.nnz, dtype=np.int64)
                csc = sparse_namespace(xp).csr_matrix((positions, indices, indptr), shape=self.shape).tocsc()
                order = csc.data
                t_indptr, t_indices = csc.indptr.astype(index, copy=False), csc.indices.astype(index, copy=False)
            else:
                order = xp.argsort(self.cols, kind="stable")
                counts = xp.bincount(self.cols, minlength=self.shape[1])
                t_indptr = xp.concatenate([xp.zeros(1, dtype=index), xp.cumsum(counts).astype(index)])
                t_indices = self.rows[order].astype(index, copy=False)
            self._pattern["csr_t"] = (t_indptr, t_indices, order)
        return self._pattern["csr_t"]

    def _as_matrix(self):
        """CSR matrix when sparse enough, dense array otherwise (built once)."""
        if self._matrix is None:
            if self._is_dense:
                self._matrix = self.to_dense()
            else:
                indptr, indices = self._row_pointers()
                sparse = sparse_namespace(self.xp)
                self._matrix = sparse.csr_matrix((self.values, indices, indptr), shape=self.shape)
        return self._matrix

    def to_dense(self):
        """The dense (n_rows, n_components) array (for outputs, not for training)."""
        xp = self.xp
        out = xp.zeros(self.shape, dtype=self.values.dtype)
        self.add_to_dense(out)
        return out

    def add_to_dense(self, out):
        """``out += Z`` for a dense ``out`` of shape (n_rows, n_components), in place.

        Duplicate coordinates add up (as in CSR). Writing the codes of a block of
        rows straight into a zero-filled output this way avoids a dense temporary.
        """
        xp = self.xp
        n_rows, n_cols = self.shape
        if out.shape != (n_rows, n_cols):
            raise ValueError(f"out must have shape {self.shape}, got {out.shape}.")
        if xp is np:
            np.add.at(out, (self.rows, self.cols), self.values)  # unbuffered: duplicates add up
            return out
        # bincount over flat positions: duplicates add up, one kernel on the GPU.
        flat = xp.bincount(self.rows * n_cols + self.cols, weights=self.values, minlength=n_rows * n_cols)
        out += flat.reshape(self.shape).astype(out.dtype, copy=False)
        return out

    def dot(self, W):
        """:math:`Z W` for a dense ``W`` of shape (n_components, p)."""
        xp = self.xp
        if xp is not np or self._is_dense:
            return xp.asarray(self._as_matrix() @ W)
        indptr, indices = self._row_pointers()
        return _threaded_csr_product(indptr, indices, self.values, self.shape[1], W)

    def tdot(self, G):
        """:math:`Z^\\top G` for a dense ``G`` of shape (n_rows, p)."""
        xp = self.xp
        if xp is not np or self._is_dense:
            return xp.asarray(self._as_matrix().T @ G)
        indptr, indices, order = self._transposed_pointers()
        return _threaded_csr_product(indptr, indices, self.values[order], self.shape[0], G)

    def column_sums(self):
        """:math:`\\sum_n z_{nj}` for every column ``j``."""
        xp = self.xp
        sums = xp.bincount(self.cols, weights=self.values, minlength=self.shape[1])
        return sums.astype(self.values.dtype, copy=False)


def _threaded_csr_product(indptr, indices, data, n_cols, B):
    """:math:`S B` for the CSR matrix ``S = (data, indices, indptr)`` (NumPy), row blocks on threads."""
    n_rows = indptr.shape[0] - 1
    dtype = np.result_type(data.dtype, B.dtype)
    nnz = int(indptr[-1])

    def block_product(start, stop):
        lo, hi = int(indptr[start]), int(indptr[stop])
        block = scipy.sparse.csr_matrix(
            (data[lo:hi], indices[lo:hi], indptr[start : stop + 1] - indptr[start]), shape=(stop - start, n_cols)
        )
        return block @ B

    blocks = split(n_rows, max(1, nnz * B.shape[1] // max(n_rows, 1)))
    if len(blocks) == 1:
        return np.asarray(block_product(0, n_rows), dtype=dtype)

    out = np.empty((n_rows, B.shape[1]), dtype=dtype)

    def work(start, stop):
        out[start:stop] = block_product(start, stop)

    run_blocks(work, blocks)
    return out


def sampled_row_dots(G, W, rows, cols):
    """:math:`s_p = G_{r_p} \\cdot W_{c_p}` for each pair :math:`p` (an SDDMM).

    The entries of :math:`G W^\\top` at the given coordinates, without the dense
    product: O(n_pairs x n_features) work and bounded extra memory. When
    ``rows`` is non-decreasing (a :class:`CodeMatrix`'s support), the pairs of a
    row are padded to a common width and each row's dots are one small
    matrix-vector product :math:`W_{[c]} G_r` of gathered rows; otherwise blocks
    of pairs are gathered and contracted. On NumPy, blocks run on threads.

    Parameters
    ----------
    G : array of shape (n_rows, p)
    W : array of shape (n_cols, p)
    rows, cols : int arrays of shape (n_pairs,)

    Returns
    -------
    dots : array of shape (n_pairs,)
    """
    xp = get_namespace(G, W)
    n_pairs = rows.shape[0]
    dtype = xp.result_type(G.dtype, W.dtype)  # as the dense branch gives
    if n_pairs > DENSE_ABOVE * G.shape[0] * W.shape[0]:
        return (G @ W.T)[rows, cols]
    if n_pairs == 0:
        return xp.empty(0, dtype=dtype)
    slots = _row_slots(rows, G.shape[0], xp)
    if slots is not None:
        slot, width = slots
        if G.shape[0] * width <= _MAX_PADDING * n_pairs:
            return _padded_row_dots(G, W, rows, cols, slot, width)[rows, slot]
    return _pair_block_dots(G, W, rows, cols, dtype)


def _gather_block(xp):
    return _GATHER_BLOCK if xp is np else _GATHER_BLOCK_GPU


def _row_slots(rows, n_rows, xp):
    """Position of each pair within its row and the widest row, or ``None`` if ``rows`` is not sorted."""
    if not bool(xp.all(rows[1:] >= rows[:-1])):
        return None
    counts = xp.bincount(rows, minlength=n_rows)
    starts = xp.cumsum(counts) - counts
    slot = xp.arange(rows.shape[0]) - starts[rows]
    return slot, int(counts.max())


def _padded_row_dots(G, W, rows, cols, slot, width):
    """(n_rows, width) dots of each row of ``G`` with its (padded) chosen rows of ``W``."""
    xp = get_namespace(G, W)
    n_rows, p = G.shape
    chosen = xp.zeros((n_rows, width), dtype=cols.dtype)  # padding points at row 0 of W, then is dropped
    chosen[rows, slot] = cols
    dots = xp.empty((n_rows, width), dtype=xp.result_type(G.dtype, W.dtype))
    rows_per_block = max(1, _gather_block(xp) // max(width * p, 1))

    def work(start, stop):
        for lo in range(start, stop, rows_per_block):
            hi = min(lo + rows_per_block, stop)
            # (rows, width, p) @ (rows, p, 1): one small matrix-vector product per row.
            dots[lo:hi] = xp.matmul(W[chosen[lo:hi]], G[lo:hi, :, None])[:, :, 0]

    run_blocks(work, split(n_rows, width * p), xp)
    return dots


def _pair_block_dots(G, W, rows, cols, dtype):
    """Dots of arbitrary pairs: gathered blocks of rows of ``G`` and ``W``, contracted."""
    xp = get_namespace(G, W)
    n_pairs, p = rows.shape[0], G.shape[1]
    dots = xp.empty(n_pairs, dtype=dtype)
    block = max(1, _gather_block(xp) // max(p, 1))

    def work(start, stop):
        for lo in range(start, stop, block):
            hi = min(lo + block, stop)
            dots[lo:hi] = xp.einsum("ij,ij->i", G[rows[lo:hi]], W[cols[lo:hi]])

    run_blocks(work, split(n_pairs, p), xp)
    return dots
