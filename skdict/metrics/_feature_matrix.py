"""Agreement between feature matrices: Pearson correlation of their entries (PCC), and its scorer."""

from __future__ import annotations

from skdict._array import get_namespace
from skdict.metrics._validation import _check_matrix
from skdict.ops.scaling import max_exponent


def _check_square(x, name):
    x = _check_matrix(x, name)
    if x.shape[0] != x.shape[1]:
        raise ValueError(f"{name} must be square, (n_features, n_features); got shape {x.shape}.")
    return x


def feature_matrix_pcc(true_feature_matrix, feature_matrix):
    r"""Pearson correlation of the entries of two symmetric feature matrices (upper triangle with diagonal).

    .. math::

        \mathrm{PCC}(\Phi^*, \hat\Phi) = \operatorname{corr}\big(
        (\Phi^*_{ij})_{i \le j},\ (\hat\Phi_{ij})_{i \le j} \big),

    the score of the feedback-complexity experiments. It is blind to a positive
    rescaling of either matrix (feedback determines Φ only up to scale) and to
    adding a multiple of the all-ones matrix; 1 means equal up to those.

    Parameters
    ----------
    true_feature_matrix : array of shape (p, p)
        The known :math:`\Phi^*`.
    feature_matrix : array of shape (p, p)
        The estimate :math:`\hat\Phi`, e.g. ``TripletFeatureLearner().fit(T).feature_matrix_``.

    Returns
    -------
    pcc : float
        In :math:`[-1, 1]`.

    Raises
    ------
    ValueError
        When a matrix is not square, the shapes differ, or the entries of either
        matrix are all equal (the correlation is undefined).
    """
    true_feature_matrix = _check_square(true_feature_matrix, "true_feature_matrix")
    feature_matrix = _check_square(feature_matrix, "feature_matrix")
    if true_feature_matrix.shape != feature_matrix.shape:
        raise ValueError(
            "true_feature_matrix and feature_matrix must have the same shape; got "
            f"{true_feature_matrix.shape} and {feature_matrix.shape}."
        )
    xp = get_namespace(true_feature_matrix, feature_matrix)
    rows, cols = xp.triu_indices(feature_matrix.shape[0])
    a, b = true_feature_matrix[rows, cols], feature_matrix[rows, cols]
    # PCC is blind to scale: an exact power-of-two scaling keeps the sums of squares finite and nonzero.
    a = xp.ldexp(a.astype(xp.float64), -max_exponent(a))
    b = xp.ldexp(b.astype(xp.float64), -max_exponent(b))
    a, b = a - xp.mean(a), b - xp.mean(b)
    norm_a, norm_b = float(xp.sqrt(xp.sum(a * a))), float(xp.sqrt(xp.sum(b * b)))
    for norm, name in ((norm_a, "true_feature_matrix"), (norm_b, "feature_matrix")):
        if norm == 0:
            raise ValueError(f"The upper-triangle entries of {name} are all equal; their correlation is undefined.")
    return float(xp.sum((a / norm_a) * (b / norm_b)))


def make_feature_matrix_scorer(true_feature_matrix):
    """A scorer ``scorer(estimator, T, y=None)`` = PCC of ``estimator.feature_matrix_`` with a known Φ*.

    Greater is better; it ignores ``T`` and ``y``, so it can be passed as
    ``scoring=`` to :class:`~sklearn.model_selection.GridSearchCV` when the true
    feature matrix is known (synthetic data).

    Parameters
    ----------
    true_feature_matrix : array of shape (p, p)

    Returns
    -------
    scorer : callable
    """
    true_feature_matrix = _check_square(true_feature_matrix, "true_feature_matrix")

    def feature_matrix_scorer(estimator, T, y=None):
        return feature_matrix_pcc(true_feature_matrix, estimator.feature_matrix_)

    return feature_matrix_scorer
