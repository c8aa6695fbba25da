"""The scikit-learn face shared by the classical dictionary learners.

:class:`BaseDictionaryLearner` holds validation and device placement, the
initial dictionary (``dict_init`` or data rows), ``transform`` (through the
estimator's ``_encode``, a block of rows at a time), ``inverse_transform`` and
``score``. A concrete learner implements ``fit``, ``_encode`` and
``_budget_fix``.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from skdict._array import device_of, get_namespace, like_input, resolve_device, to_device
from skdict._guards import warn_not_converged
from skdict._validation import check_atoms, check_codes, check_input
from skdict.ops.atoms import normalize_rows
from skdict.ops.moments import RunningMoments

#: Largest (rows x n_components) block of codes computed at once. A code step keeps a few arrays of
#: this size (FISTA's iterates and correlations, Adam's moments, LISTA's layers), so its memory beyond
#: its output is O(block x n_components) whatever the number of samples: 8 MiB per float64 array.
CODE_BLOCK_ELEMENTS = 1 << 20


def row_blocks(n_samples, n_components, block_elements=None):
    """Consecutive row slices of at most ``block_elements // n_components`` rows (at least one) covering ``n_samples``."""
    block_elements = CODE_BLOCK_ELEMENTS if block_elements is None else block_elements
    rows = max(1, block_elements // max(n_components, 1))
    return [slice(start, min(start + rows, n_samples)) for start in range(0, n_samples, rows)]


def encode_in_blocks(X, n_components, encode_block, *, out=None):
    """Codes of every row of ``X``, one block of rows at a time (see :data:`CODE_BLOCK_ELEMENTS`).

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    n_components : int
    encode_block : callable
        ``encode_block(rows)`` for a slice ``rows`` returns ``(codes, n_unconverged)``: the codes of
        ``X[rows]``, shape (len(rows), n_components), and how many of its rows ran out of budget.
    out : array of shape (n_samples, n_components) or None
        Where the codes go (may be a warm start that ``encode_block`` reads first); ``None``: a new array.

    Returns
    -------
    codes : array of shape (n_samples, n_components)
    n_unconverged : int
        Rows, over all blocks, that ran out of budget.
    """
    xp = get_namespace(X)
    codes = xp.empty((X.shape[0], n_components), dtype=X.dtype) if out is None else out
    n_unconverged = 0
    for rows in row_blocks(X.shape[0], n_components):
        codes[rows], block_unconverged = encode_block(rows)
        n_unconverged += int(block_unconverged)
    return codes, n_unconverged


class BaseDictionaryLearner(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Base class of the classical dictionary learners (not an estimator by itself)."""

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def _resolve_n_components(self, n_features):
        """``n_components=None``: as many atoms as ``dict_init`` has, else one per input feature."""
        if self.n_components is not None:
            return self.n_components
        dict_init = getattr(self, "dict_init", None)
        return n_features if dict_init is None else len(dict_init)

    def _fit_input(self, X):
        """Validate ``X`` for fitting and move it to the training device."""
        X = check_input(self, X, reset=True)
        return to_device(X, resolve_device(self.device, X))

    def _model_input(self, X):
        """Validate ``X`` for a fitted method and move it to the model's device."""
        check_is_fitted(self)
        X = check_input(self, X, reset=False)
        return to_device(X, device_of(self.components_))

    _like_input = staticmethod(like_input)

    def _initial_dictionary(self, X, n_components, rng):
        """``dict_init`` (validated, unit rows), else distinct random rows of ``X`` (Gaussian where rows run out or are 0)."""
        xp = get_namespace(X)
        if getattr(self, "dict_init", None) is not None:
            return check_atoms(self.dict_init, n_components, X.shape[1], like=X, name="dict_init")
        n_from_data = min(n_components, X.shape[0])
        picked = xp.asarray(np.sort(rng.choice(X.shape[0], size=n_from_data, replace=False)))
        gaussian = xp.asarray(rng.standard_normal((n_components, X.shape[1])), dtype=X.dtype)
        D = gaussian.copy()
        D[:n_from_data] = X[picked]
        zero = xp.all(D == 0, axis=1)  # not a sum of squares: it overflows at 1e155 and underflows at 1e-155
        D[zero] = gaussian[zero]
        return normalize_rows(D)

    def _encode(self, X):
        """Codes of a validated, on-device ``X``, computed in row blocks (:func:`encode_in_blocks`).

        Returns
        -------
        codes : array of shape (n_samples, n_components)
        n_unconverged : int
            Rows whose code ran out of the estimator's budget before its tolerance.
        """
        raise NotImplementedError

    def _budget_fix(self):
        """``(what ran out, the fix)`` for the ConvergenceWarning of codes that ran out of budget."""
        raise NotImplementedError

    def _warn_max_iter(self, unit, quantity="loss"):
        """ConvergenceWarning from ``fit``: ``max_iter`` ``unit`` ended before ``quantity`` changed by at most ``tol``."""
        warn_not_converged(
            self, f"max_iter={self.max_iter} {unit} ended before the {quantity} changed by at most tol={self.tol:g} "
            "relative", "raise max_iter or tol", stacklevel=4,
        )

    def _codes(self, X):
        """Codes of a validated ``X``; a :class:`~sklearn.exceptions.ConvergenceWarning` if rows ran out of budget."""
        codes, n_unconverged = self._encode(X)
        if n_unconverged:
            what, fix = self._budget_fix()
            warn_not_converged(
                self, f"the codes of {n_unconverged} of {X.shape[0]} samples are not converged ({what})", fix,
                stacklevel=4,
            )
        return codes

    def transform(self, X):
        """Sparse codes :math:`z` of ``X``, a dense array of shape (n_samples, n_components).

        The codes are computed a block of rows at a time, so the memory beyond the
        output is O(block x n_components) (see :data:`CODE_BLOCK_ELEMENTS`).

        Warns
        -----
        sklearn.exceptions.ConvergenceWarning
            When the codes of some samples ran out of the iteration budget before
            meeting the estimator's tolerance.
        """
        return self._like_input(self._codes(self._model_input(X)), X)

    def inverse_transform(self, X):
        """Reconstruction :math:`\\hat x = z D` from codes of shape (n_samples, n_components).

        Raises
        ------
        ValueError
            Codes that are not real, finite and of shape (n_samples, n_components).
        """
        check_is_fitted(self)
        codes = check_codes(X, self.components_.shape[0], like=self.components_)
        return self._like_input(codes @ self.components_, X)

    def score(self, X, y=None):
        """Explained variance of the reconstruction :math:`zD` of ``X`` (see :func:`skdict.metrics.explained_variance`)."""
        from skdict.metrics import explained_variance

        X = self._model_input(X)
        return explained_variance(X, self._codes(X) @ self.components_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def total_variance(X):
    """:math:`\\sum_n \\lVert x_n - \\bar x\\rVert^2` of the rows of ``X``, accumulated in float64 (the EV denominator)."""
    moments = RunningMoments()
    moments.update(X)
    return moments.total_variance
