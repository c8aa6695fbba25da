"""Dictionary geometry diagnostics: antipodal atoms and the wide-dictionary closed form."""

from __future__ import annotations

from skdict._array import get_namespace
from skdict.ops.atoms import normalize_rows
from skdict.ops.gram import gram_matrix


def antipodal_pairs(dictionary, *, threshold=-0.99):
    """Pairs of atoms pointing in (nearly) opposite directions, :math:`\\cos(d_i, d_j) \\le` ``threshold``.

    An L1 dictionary can split one feature into an atom and its negation (each
    carrying one sign of a signed feature); ReLU codes cannot use one atom for both.

    Returns
    -------
    pairs : int array of shape (n_pairs, 2)
        ``i < j``, with NumPy/CuPy following the input.
    """
    xp = get_namespace(dictionary)
    unit = normalize_rows(dictionary, eps=0.0)
    cosines = gram_matrix(unit)
    upper = xp.triu(xp.ones(cosines.shape, dtype=bool), k=1)
    rows, cols = xp.nonzero((cosines <= threshold) & upper)
    return xp.stack([rows, cols], axis=1)


def wide_dictionary_solution(X, alpha):
    """The wide-dictionary limit: one unit atom per sample and its code.

    With :math:`d_n = x_n / \\|x_n\\|` and :math:`z_{nn} = (\\|x_n\\| - \\alpha)_+`
    (zero off the diagonal), each sample is reconstructed by its own atom,
    shrunk by :math:`\\alpha`. When the samples are orthogonal this is the exact
    minimiser of :math:`\\tfrac12\\|x_n - z_n D\\|^2 + \\alpha\\|z_n\\|_1` for that
    dictionary, and a stationary point of the joint objective; it serves as a
    closed-form oracle for the solvers and for :func:`stationarity_gaps`.

    Returns
    -------
    dictionary : array of shape (n_samples, n_features)
    codes : array of shape (n_samples, n_samples)
    """
    xp = get_namespace(X)
    norms = xp.sqrt(xp.sum(X * X, axis=1))
    codes = xp.zeros((X.shape[0], X.shape[0]), dtype=X.dtype)
    index = xp.arange(X.shape[0])
    codes[index, index] = xp.maximum(norms - alpha, 0)
    return normalize_rows(X, eps=0.0), codes
