r"""The fitted form of a feature matrix: Φ scaled to unit Frobenius norm and its factor U.

Both solvers end here with an eigendecomposition :math:`\Phi = V \operatorname{diag}(\lambda) V^\top`
(the SDP from ``eigh`` of its solution, the low-rank solver from the SVD of
:math:`U`). The factor's rows are the principal axes
:math:`\sqrt{\lambda_k}\, v_k^\top` in decreasing order of :math:`\lambda_k`, so
``components_.T @ components_`` is ``feature_matrix_``, as :math:`D^\top D` for a dictionary
:math:`D` with atoms as rows.
"""

from __future__ import annotations

from skdict._array import get_namespace

#: Eigenvalues below this fraction of the largest one count as zero (the numerical rank).
RANK_TOL = 1e-6


def canonical_factor(eigenvalues, eigenvectors, rank=None):
    r"""Principal-axis factor of a PSD matrix, scaled so that the matrix has unit Frobenius norm.

    Parameters
    ----------
    eigenvalues : array of shape (k,)
        Eigenvalues :math:`\lambda` (negative rounding noise is clipped to 0).
    eigenvectors : array of shape (n_features, k)
        Orthonormal eigenvectors as columns.
    rank : int or None
        Keep at most this many of the largest eigenvalues.

    Returns
    -------
    components : array of shape (rank_, n_features)
        Rows :math:`\sqrt{\lambda_k} v_k^\top`; each row's largest-magnitude entry is positive.
    feature_matrix : array of shape (n_features, n_features)
        ``components.T @ components``, of unit Frobenius norm.
    rank_ : int
        Number of eigenvalues above :data:`RANK_TOL` times the largest one (at most ``rank``).
    """
    xp = get_namespace(eigenvalues, eigenvectors)
    order = xp.argsort(-eigenvalues)
    eigenvalues = xp.maximum(eigenvalues[order], 0)
    eigenvectors = eigenvectors[:, order]
    largest = float(eigenvalues[0]) if eigenvalues.shape[0] else 0.0
    if largest <= 0:
        raise ValueError(
            "The fitted feature matrix is zero; the triplets carry no information about Φ "
            "(e.g. every triplet has x = y = z)."
        )
    rank_ = int(xp.sum(eigenvalues > RANK_TOL * largest))
    if rank is not None:
        rank_ = min(rank_, rank)
    eigenvalues = eigenvalues[:rank_] / float(xp.sqrt(xp.sum(eigenvalues[:rank_] ** 2)))
    components = (eigenvectors[:, :rank_] * xp.sqrt(eigenvalues)).T
    peak = xp.argmax(xp.abs(components), axis=1)
    signs = xp.where(components[xp.arange(rank_), peak] < 0, -1, 1).astype(components.dtype)
    components = xp.ascontiguousarray(components * signs[:, None])
    return components, components.T @ components, rank_
