r"""Triplet feedback about a known feature matrix Φ: teaching sets and sampled feedback.

A teaching agent that knows :math:`\Phi \succeq 0` answers with equalities
":math:`x` is as close to :math:`y` as to :math:`z`". Every generator here writes a
triplet as rows :math:`(x, y, z)` of an array of shape (n_triplets, 3, p), and an
equality between the :math:`\Phi`-norms of two vectors :math:`u, v` as the triplet
:math:`(0, u, v)`, so that :math:`d_\Phi(x, y) = u^\top \Phi u` and
:math:`d_\Phi(x, z) = v^\top \Phi v`. Vectors are first rescaled to unit
:math:`\Phi`-norm (the agent's rescaling); a vector of :math:`\Phi`-norm 0 gives
:math:`(0, u, 0)`.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from skdict._array import to_numpy

#: Eigenvalues (and squared Φ-norms per squared Euclidean norm) below this fraction of the largest eigenvalue are 0.
NULL_TOL = 1e-9


def _check_feature_matrix(feature_matrix):
    """Return ``feature_matrix`` as a symmetric PSD float64 NumPy array, or raise a ValueError that says why not."""
    Phi = np.asarray(to_numpy(feature_matrix), dtype=np.float64)
    if Phi.ndim != 2 or Phi.shape[0] != Phi.shape[1] or Phi.shape[0] < 1:
        raise ValueError(f"feature_matrix must be a square 2-D array (n_features, n_features); got shape {Phi.shape}.")
    if not np.isfinite(Phi).all():
        raise ValueError("feature_matrix contains NaN or infinity.")
    scale = np.abs(Phi).max()
    if scale == 0:
        raise ValueError("feature_matrix is zero; feedback about Φ = 0 carries no information.")
    if np.abs(Phi - Phi.T).max() > 1e-8 * scale:
        raise ValueError("feature_matrix must be symmetric; pass (Phi + Phi.T) / 2, or D.T @ D for a dictionary D.")
    Phi = (Phi + Phi.T) / 2
    eigenvalues = np.linalg.eigvalsh(Phi)
    if eigenvalues[0] < -1e-8 * eigenvalues[-1] or eigenvalues[-1] <= 0:
        raise ValueError(
            f"feature_matrix must be positive semidefinite; its smallest eigenvalue is {eigenvalues[0]:.3g}. "
            "Use D.T @ D for a dictionary D (atoms as rows)."
        )
    return Phi


def _squared_phi_norms(W, Phi):
    """:math:`w^\\top \\Phi w` for every row :math:`w` of ``W``."""
    return np.sum((W @ Phi) * W, axis=1)


def _is_null(W, Phi, squared_norms):
    """Rows whose Φ-norm is 0 up to :data:`NULL_TOL` (relative to the largest eigenvalue and ‖w‖²)."""
    largest = np.linalg.norm(Phi, ord=2)
    return squared_norms <= NULL_TOL * largest * np.sum(W * W, axis=1)


def _equalities_among(W, Phi):
    r"""Equality triplets saying that all rows of ``W`` have the same Φ-norm (0 for null rows).

    Rows of Φ-norm 0 give :math:`(0, w, 0)`; the others are rescaled to unit Φ-norm
    and each but the first non-null one, the reference :math:`\hat w_1`, gives
    :math:`(0, \hat w_1, \hat w)`. Order: the rows' order, the reference left out.
    """
    squared = _squared_phi_norms(W, Phi)
    null = _is_null(W, Phi, squared)
    unit = W / np.sqrt(np.where(null, 1.0, squared))[:, None]
    reference = int(np.flatnonzero(~null)[0])
    keep = np.arange(W.shape[0]) != reference
    T = np.zeros((int(keep.sum()), 3, W.shape[1]))
    T[:, 1] = np.where(null[keep, None], W[keep], unit[reference])
    T[:, 2] = np.where(null[keep, None], 0.0, unit[keep])
    return T


def _pairs(V):
    """Rows :math:`v_i` then :math:`v_i + v_j` (i < j) of the columns :math:`v` of ``V``."""
    i, j = np.triu_indices(V.shape[1], k=1)
    return np.concatenate([V.T, (V[:, i] + V[:, j]).T])


@validate_params({"feature_matrix": ["array-like"]}, prefer_skip_nested_validation=True)
def make_eigendecomposition_teaching_set(feature_matrix):
    r"""The eigendecomposition teaching set of a PSD feature matrix: :math:`r(r+1)/2 + (p - r) - 1` equalities.

    With :math:`\Phi = \sum_{k=1}^r \lambda_k u_k u_k^\top` (eigenvalues above
    ``1e-9`` of the largest) and an orthonormal basis :math:`v_1, \dots, v_{p-r}` of
    its null space, the set says

    * :math:`v_l^\top \Phi v_l = 0` for every null vector: triplets :math:`(0, v_l, 0)`, first;
    * all of :math:`u_k` and :math:`u_k + u_l` (:math:`k < l`) have equal Φ-norm after
      rescaling to unit Φ-norm: triplets :math:`(0, \hat u_1, \hat w)` for the other
      :math:`r(r+1)/2 - 1` vectors :math:`w`, in the order :math:`u_2, \dots, u_r`,
      then :math:`u_1 + u_2, u_1 + u_3, \dots, u_{r-1} + u_r`.

    Together with :math:`\Phi \succeq 0` these determine Φ up to a positive factor,
    and no equality can be dropped.

    Parameters
    ----------
    feature_matrix : array-like of shape (p, p)
        Symmetric positive semidefinite :math:`\Phi`, e.g. :math:`D^\top D`.

    Returns
    -------
    T : ndarray of shape (r(r+1)/2 + p - r - 1, 3, p)
        Equality triplets (labels 0: fit with ``y=None``).
    """
    Phi = _check_feature_matrix(feature_matrix)
    eigenvalues, eigenvectors = np.linalg.eigh(Phi)
    eigenvalues, eigenvectors = eigenvalues[::-1], eigenvectors[:, ::-1]
    r = int(np.sum(eigenvalues > NULL_TOL * eigenvalues[0]))
    null_part = np.zeros((Phi.shape[0] - r, 3, Phi.shape[0]))
    null_part[:, 1] = eigenvectors[:, r:].T
    return np.concatenate([null_part, _equalities_among(_pairs(eigenvectors[:, :r]), Phi)])


@validate_params({"feature_matrix": ["array-like"]}, prefer_skip_nested_validation=True)
def make_sparse_teaching_set(feature_matrix):
    r"""The sparse constructive teaching set :math:`\{e_i\} \cup \{e_i + e_j\}`: :math:`p(p+1)/2 - 1` equalities.

    The :math:`p(p+1)/2` vectors :math:`e_1, \dots, e_p, e_1 + e_2, \dots, e_{p-1} + e_p`
    (2-sparse at most) are rescaled to unit Φ-norm and stated equal to the first one
    of nonzero Φ-norm; a vector of Φ-norm 0 gives :math:`(0, w, 0)`. Their Φ-norms
    :math:`\Phi_{ii}` and :math:`\Phi_{ii} + \Phi_{jj} + 2 \Phi_{ij}` fix every entry,
    so the set determines Φ up to a positive factor without using :math:`\Phi \succeq 0`.

    Parameters
    ----------
    feature_matrix : array-like of shape (p, p)
        Symmetric positive semidefinite :math:`\Phi`.

    Returns
    -------
    T : ndarray of shape (p(p+1)/2 - 1, 3, p)
        Equality triplets, in the order of the vectors above with the reference left out.
    """
    Phi = _check_feature_matrix(feature_matrix)
    return _equalities_among(_pairs(np.eye(Phi.shape[0])), Phi)


def _sparse_activations(n, p, sparsity, rng):
    """Rows with each coordinate 0 with probability ``sparsity``, else U(0, 1]; all-zero rows are redrawn."""
    X = np.zeros((n, p))
    todo = np.arange(n)
    while todo.size:
        draw = np.where(rng.random_sample((todo.size, p)) < sparsity, 0.0, 1.0 - rng.random_sample((todo.size, p)))
        X[todo] = draw
        todo = todo[~draw.any(axis=1)]
    return X


@validate_params(
    {
        "feature_matrix": ["array-like"],
        "n_triplets": [Interval(Integral, 1, None, closed="left")],
        "kind": [StrOptions({"equality", "comparison"})],
        "sparsity": [Interval(Real, 0, 1, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_triplet_feedback(feature_matrix, n_triplets, *, kind="equality", sparsity=0.5, random_state=None):
    r"""Feedback about Φ on random sparse activations.

    Every vector has independent coordinates, 0 with probability :math:`s`
    (``sparsity``) and uniform on :math:`(0, 1]` otherwise (all-zero vectors are redrawn).

    * ``kind="equality"``: for random :math:`u, v` the agent rescales :math:`v` to the
      Φ-norm of :math:`u` and sends :math:`(0, u, v \lVert u \rVert_\Phi / \lVert v \rVert_\Phi)`,
      label 0 (a vector of Φ-norm 0 gives :math:`(0, u, 0)` or :math:`(0, v, 0)`).
    * ``kind="comparison"``: random :math:`(x, y, z)` with the true label
      :math:`\operatorname{sign}(d_\Phi(x, z) - d_\Phi(x, y))`: +1 when :math:`x` is closer to
      :math:`y`, -1 when closer to :math:`z`, 0 for a tie (within 1e-12 relative).

    Parameters
    ----------
    feature_matrix : array-like of shape (p, p)
        Symmetric positive semidefinite :math:`\Phi`.
    n_triplets : int
    kind : {"equality", "comparison"}, default="equality"
    sparsity : float in [0, 1), default=0.5
        Probability :math:`s` that a coordinate is 0.
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    T : ndarray of shape (n_triplets, 3, p)
    y : ndarray of shape (n_triplets,)
        Labels in {-1, 0, +1} (int64); all 0 for ``kind="equality"``.
    """
    Phi = _check_feature_matrix(feature_matrix)
    rng = check_random_state(random_state)
    p = Phi.shape[0]
    if kind == "comparison":
        T = _sparse_activations(3 * n_triplets, p, sparsity, rng).reshape(n_triplets, 3, p)
        to_y = _squared_phi_norms(T[:, 0] - T[:, 1], Phi)
        to_z = _squared_phi_norms(T[:, 0] - T[:, 2], Phi)
        gap = to_z - to_y
        y = np.where(np.abs(gap) <= 1e-12 * (to_y + to_z), 0, np.sign(gap)).astype(np.int64)
        return T, y
    U = _sparse_activations(n_triplets, p, sparsity, rng)
    V = _sparse_activations(n_triplets, p, sparsity, rng)
    norm_u, norm_v = _squared_phi_norms(U, Phi), _squared_phi_norms(V, Phi)
    null_u, null_v = _is_null(U, Phi, norm_u), _is_null(V, Phi, norm_v)
    T = np.zeros((n_triplets, 3, p))
    T[:, 1] = np.where(null_v[:, None] & ~null_u[:, None], V, U)
    ratio = np.sqrt(norm_u / np.where(null_v, 1.0, norm_v))
    T[:, 2] = np.where((null_u | null_v)[:, None], 0.0, V * ratio[:, None])
    return T, np.zeros(n_triplets, dtype=np.int64)
