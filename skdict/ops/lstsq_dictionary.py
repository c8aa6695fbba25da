r"""The least-squares dictionary update from sufficient statistics.

Given codes :math:`Z` (n_samples × n_components) of data :math:`X`, the
dictionary minimising :math:`\tfrac12\lVert X - Z D\rVert_F^2 + \tfrac{\varepsilon}{2}\lVert D\rVert_F^2`
is :math:`D = (A + \varepsilon I)^{-1} B` with the sufficient statistics
:math:`A = Z^\top Z` and :math:`B = Z^\top X`. They are sums over samples, so a
stream can accumulate them minibatch by minibatch (Mairal et al., 2010,
"Online learning for matrix factorization and sparse coding").
"""

from __future__ import annotations

from skdict._array import get_namespace
from skdict.ops.gram import gram_matrix


def code_statistics(Z, X):
    r"""Sufficient statistics :math:`A = Z^\top Z` (n_components²) and :math:`B = Z^\top X` (n_components × n_features)."""
    return gram_matrix(Z.T), Z.T @ X


def least_squares_dictionary(A, B, ridge):
    r"""Solve :math:`(A + \varepsilon I) D = B` for the dictionary :math:`D` (atoms as rows).

    Parameters
    ----------
    A : array of shape (n_components, n_components)
        :math:`Z^\top Z` (symmetric positive semi-definite).
    B : array of shape (n_components, n_features)
        :math:`Z^\top X`.
    ridge : float
        Relative ridge :math:`r \ge 0`: :math:`\varepsilon = r \cdot \operatorname{tr}(A) / n_\text{components}`,
        so the update does not depend on the scale of the codes. An atom that
        no code uses (zero row and column of :math:`A`, zero row of :math:`B`)
        comes out as a zero row when :math:`\varepsilon > 0`.

    Returns
    -------
    D : array of shape (n_components, n_features)
        Unnormalised atoms.

    Raises
    ------
    numpy.linalg.LinAlgError
        When :math:`A + \varepsilon I` is singular (only possible with ``ridge=0``).
    """
    xp = get_namespace(A, B)
    n_components = A.shape[0]
    epsilon = ridge * float(xp.trace(A)) / n_components
    if epsilon == 0.0 and ridge > 0:  # all codes zero: any positive ridge keeps the system solvable
        epsilon = ridge
    system = A + epsilon * xp.eye(n_components, dtype=A.dtype)
    return xp.linalg.solve(system, B)
