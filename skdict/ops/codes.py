"""Sparse code matrices: products with dense matrices that never build the dense code.

A code matrix :math:`Z` (n_rows x n_components) with few nonzeros per row is kept
as row-sorted coordinate triples and multiplied through a CSR matrix, so that
decoding :math:`Z W_{dec}` and the weight gradient :math:`Z^\\top G` cost
O(nnz x n_features) instead of O(n_rows x n_components x n_features). Above a
density where a dense GEMM is faster, the same object uses a dense matrix.
"""

from __future__ import annotations

from skdict._array import get_namespace, sparse_namespace

#: Above this fraction of nonzeros, dense GEMMs beat sparse products on a CPU.
DENSE_ABOVE = 0.02
#: Elements of a (pairs x n_features) block gathered at once by :func:`sampled_row_dots`.
_GATHER_BLOCK = 1 << 22


class CodeMatrix:
    """Code matrix given by its nonzeros, sorted by row.

    Parameters
    ----------
    rows, cols : int arrays of shape (nnz,)
        Coordinates of the nonzeros; ``rows`` must be non-decreasing.
    values : array of shape (nnz,)
        The nonzero values :math:`z_{nj}`.
    shape : tuple (n_rows, n_components)
    """

    def __init__(self, rows, cols, values, shape):
        self.rows, self.cols, self.values, self.shape = rows, cols, values, shape
        self.xp = get_namespace(values)
        self._matrix = None

    @property
    def nnz(self):
        return int(self.values.shape[0])

    @property
    def density(self):
        n_rows, n_cols = self.shape
        return self.nnz / max(n_rows * n_cols, 1)

    def _as_matrix(self):
        """CSR matrix when sparse enough, dense array otherwise (built once)."""
        if self._matrix is None:
            xp = self.xp
            if self.density > DENSE_ABOVE:
                self._matrix = self.to_dense()
            else:
                # 32-bit indices: what cuSPARSE wants, and half the memory traffic on a CPU.
                index = xp.int32 if max(self.nnz, self.shape[1]) < 2**31 else xp.int64
                counts = xp.bincount(self.rows, minlength=self.shape[0])
                indptr = xp.concatenate([xp.zeros(1, dtype=index), xp.cumsum(counts).astype(index)])
                sparse = sparse_namespace(xp)
                self._matrix = sparse.csr_matrix(
                    (self.values, self.cols.astype(index, copy=False), indptr), shape=self.shape
                )
        return self._matrix

    def to_dense(self):
        """The dense (n_rows, n_components) array (for outputs, not for training)."""
        xp = self.xp
        n_rows, n_cols = self.shape
        # bincount over flat positions: duplicates add up (as in CSR), on NumPy and CuPy alike.
        flat = xp.bincount(self.rows * n_cols + self.cols, weights=self.values, minlength=n_rows * n_cols)
        return flat.reshape(self.shape).astype(self.values.dtype, copy=False)

    def dot(self, W):
        """:math:`Z W` for a dense ``W`` of shape (n_components, p)."""
        return self.xp.asarray(self._as_matrix() @ W)

    def tdot(self, G):
        """:math:`Z^\\top G` for a dense ``G`` of shape (n_rows, p)."""
        return self.xp.asarray(self._as_matrix().T @ G)

    def column_sums(self):
        """:math:`\\sum_n z_{nj}` for every column ``j``."""
        xp = self.xp
        sums = xp.bincount(self.cols, weights=self.values, minlength=self.shape[1])
        return sums.astype(self.values.dtype, copy=False)


def sampled_row_dots(G, W, rows, cols):
    """:math:`s_p = G_{r_p} \\cdot W_{c_p}` for each pair :math:`p` (an SDDMM).

    The entries of :math:`G W^\\top` at the given coordinates, without the dense
    product: blocks of rows of ``G`` and ``W`` are gathered and multiplied
    elementwise, O(n_pairs x n_features) work and bounded extra memory.

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
    if n_pairs > DENSE_ABOVE * G.shape[0] * W.shape[0]:
        return (G @ W.T)[rows, cols]
    dots = xp.empty(n_pairs, dtype=xp.result_type(G.dtype, W.dtype))  # as the dense branch gives
    block = max(1, _GATHER_BLOCK // max(G.shape[1], 1))
    for start in range(0, n_pairs, block):
        stop = min(start + block, n_pairs)
        dots[start:stop] = xp.sum(G[rows[start:stop]] * W[cols[start:stop]], axis=1)
    return dots
