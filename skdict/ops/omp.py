r"""Batched orthogonal matching pursuit (Batch-OMP of Rubinstein, Zibulevsky & Elad, 2008).

For every row :math:`x` of ``X`` and atoms :math:`d_j` (the rows of ``D``), step
:math:`t = 1, \dots, k` picks the atom most correlated with the residual and
re-fits all chosen atoms by least squares:

.. math::

    j_t = \arg\max_j |c_j|, \quad c = D r^{t-1}, \qquad
    \gamma^t = \arg\min_\gamma \lVert x - \gamma D_{I_t} \rVert_2^2, \quad
    r^t = x - \gamma^t D_{I_t}, \quad I_t = \{j_1, \dots, j_t\}.

Nothing of size (n_features) is touched after the first product: with
:math:`G = D D^\top` and :math:`\alpha^0 = X D^\top`, the least-squares normal
equations read :math:`G_{I I}\, \gamma = \alpha^0_I`, and the correlations are
:math:`c = \alpha^0 - \gamma G_{I,:}`. Every sample keeps the inverse of the
Cholesky factor of its :math:`G_{II}`, :math:`L^{-1}`, grown by one row per step
(all samples at once, batched matrix products):

.. math::

    w = L^{-1} G_{I j}, \quad \delta = \sqrt{G_{jj} - w^\top w}, \quad
    L^{-1} \leftarrow \begin{pmatrix} L^{-1} & 0 \\ -w^\top L^{-1}/\delta & 1/\delta \end{pmatrix},

and :math:`a = L^{-1} \alpha^0_I` gains the entry
:math:`(\alpha^0_j - w^\top a)/\delta`; then :math:`\gamma = L^{-\top} a` and
:math:`\lVert r^t\rVert^2 = \lVert x\rVert^2 - \lVert a\rVert^2`.

A row stops early (its later steps add nothing) when its residual is
numerically orthogonal to every atom, when the best atom is already chosen or
numerically in the span of the chosen ones (:math:`\delta^2 \le \epsilon\, G_{jj}`),
or when :math:`\lVert r\rVert^2 \le` ``tol``.
"""

from __future__ import annotations

from dataclasses import dataclass

from skdict._array import get_namespace
from skdict.ops.codes import CodeMatrix
from skdict.ops.gram import gram_matrix

#: Largest number of elements of the per-block state (correlations and L^{-1}) held at once.
_BLOCK_ELEMENTS = 1 << 23


@dataclass
class OrthogonalPursuitResult:
    """Codes of a batched OMP as (index, value) pairs per row.

    Attributes
    ----------
    indices : int64 array of shape (n, k)
        :math:`j_t`; steps after a row stopped repeat an index with value 0.
    values : array of shape (n, k)
        :math:`\\gamma`, the least-squares codes of the chosen atoms.
    n_active : int64 array of shape (n,)
        Number of atoms each row actually selected (``<= k``).
    n_components : int
    """

    indices: object
    values: object
    n_active: object
    n_components: int

    def codes(self):
        """The code matrix :math:`z` as a :class:`~skdict.ops.codes.CodeMatrix`."""
        return CodeMatrix.from_row_pairs(self.indices, self.values, self.n_components)


def orthogonal_matching_pursuit(X, D, k, *, tol=None, gram=None):
    """Orthogonal matching pursuit with at most ``k`` atoms, for every row of ``X`` at once.

    Parameters
    ----------
    X : array of shape (n, n_features)
        Signals :math:`x`.
    D : array of shape (n_components, n_features)
        Atoms as rows (any norms; correlations are not normalised, as in
        :func:`sklearn.linear_model.orthogonal_mp`).
    k : int
        Largest number of atoms per row, ``1 <= k <= n_components``.
    tol : float or None
        Also stop a row once its squared residual norm :math:`\\lVert r\\rVert^2 \\le` ``tol``.
    gram : array of shape (n_components, n_components) or None
        :math:`G = D D^\\top`, to reuse across calls; computed when ``None``.

    Returns
    -------
    OrthogonalPursuitResult
    """
    xp = get_namespace(X, D, gram)
    n_components = D.shape[0]
    if not 1 <= k <= n_components:
        raise ValueError(f"k must be in [1, n_components={n_components}], got {k}.")
    if tol is not None and not tol >= 0:
        raise ValueError(f"tol must be None or a float >= 0 (a squared residual norm), got {tol!r}.")
    if gram is None:
        gram = gram_matrix(D)
    n = X.shape[0]
    indices = xp.zeros((n, k), dtype=xp.int64)
    values = xp.zeros((n, k), dtype=X.dtype)
    n_active = xp.zeros(n, dtype=xp.int64)
    rows_per_block = max(1, _BLOCK_ELEMENTS // (n_components + k * k))
    for start in range(0, n, rows_per_block):
        stop = min(start + rows_per_block, n)
        block = slice(start, stop)
        _pursue_block(X[block], D, gram, k, tol, indices[block], values[block], n_active[block])
    return OrthogonalPursuitResult(indices, values, n_active, n_components)


def _apply_inverse_factor(inverse_factor, b):
    """:math:`L^{-1} b` per row (batched matrix-vector products; empty for the first step)."""
    if inverse_factor.shape[1] == 0:
        return b
    return (inverse_factor @ b[:, :, None])[:, :, 0]


def _pursue_block(X, D, gram, k, tol, indices, values, n_active):
    """Fill ``indices``, ``values`` and ``n_active`` for one block of rows (in place)."""
    xp = get_namespace(X)
    n, n_components = X.shape[0], D.shape[0]
    eps = float(xp.finfo(X.dtype).eps)
    rows = xp.arange(n)
    correlations0 = X @ D.T  # alpha^0
    correlations = correlations0.copy()
    signal_sq = xp.sum(X * X, axis=1)
    residual_sq = signal_sq.copy()
    diagonal = xp.diagonal(gram)
    chosen = xp.zeros((n, n_components), dtype=bool)
    inverse_factor = xp.zeros((n, k, k), dtype=X.dtype)  # L^{-1}, lower triangular
    projections = xp.zeros((n, k), dtype=X.dtype)  # a = L^{-1} alpha^0_I
    active = xp.ones(n, dtype=bool)
    for t in range(k):
        j = xp.argmax(xp.abs(correlations), axis=1)
        c_j = correlations[rows, j]
        g_jj = diagonal[j]
        w = _apply_inverse_factor(inverse_factor[:, :t, :t], gram[indices[:, :t], j[:, None]])  # L^{-1} G_{Ij}
        delta_sq = g_jj - xp.sum(w * w, axis=1)
        active &= c_j * c_j > eps * signal_sq * g_jj  # residual not yet orthogonal to every atom
        active &= ~chosen[rows, j]
        active &= delta_sq > eps * g_jj  # new atom not in the span of the chosen ones
        if tol is not None and t > 0:
            active &= residual_sq > tol
        w = xp.where(active[:, None], w, 0)
        inverse_delta = xp.where(active, 1 / xp.sqrt(xp.where(active, delta_sq, 1)), 1)
        if t:
            new_row = (w[:, None, :] @ inverse_factor[:, :t, :t])[:, 0, :]  # w^T L^{-1}
            inverse_factor[:, t, :t] = -inverse_delta[:, None] * new_row
        inverse_factor[:, t, t] = inverse_delta
        a_t = (correlations0[rows, j] - xp.sum(w * projections[:, :t], axis=1)) * inverse_delta
        projections[:, t] = xp.where(active, a_t, 0)
        residual_sq = xp.maximum(residual_sq - projections[:, t] ** 2, 0)
        indices[:, t] = j
        chosen[rows, j] |= active
        n_active += active
        gamma = (xp.swapaxes(inverse_factor[:, : t + 1, : t + 1], 1, 2) @ projections[:, : t + 1, None])[:, :, 0]
        values[:, : t + 1] = gamma
        if t + 1 < k:
            step = OrthogonalPursuitResult(indices[:, : t + 1], gamma, n_active, n_components)
            correlations = correlations0 - step.codes().dot(gram)
