"""The scikit-learn face shared by the classical dictionary learners.

:class:`BaseDictionaryLearner` holds validation and device placement, the
initial dictionary (``dict_init`` or data rows), ``transform`` (through the
estimator's ``_encode``), ``inverse_transform`` and ``score``. A concrete
learner implements ``fit`` and ``_encode``.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from skdict._array import device_of, get_namespace, is_cupy_array, like_input, resolve_device, to_device
from skdict._validation import check_atoms, check_input
from skdict.ops.atoms import normalize_rows


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
        zero = xp.sum(D * D, axis=1) == 0
        D[zero] = gaussian[zero]
        return normalize_rows(D)

    def _encode(self, X):
        """Codes of a validated, on-device ``X``."""
        raise NotImplementedError

    def transform(self, X):
        """Sparse codes :math:`z` of ``X``, a dense array of shape (n_samples, n_components)."""
        return self._like_input(self._encode(self._model_input(X)), X)

    def inverse_transform(self, X):
        """Reconstruction :math:`\\hat x = z D` from codes of shape (n_samples, n_components)."""
        check_is_fitted(self)
        codes = X if is_cupy_array(X) else np.asarray(X)
        if codes.ndim != 2 or codes.shape[1] != self.components_.shape[0]:
            raise ValueError(
                f"inverse_transform expects codes of shape (n_samples, n_components={self.components_.shape[0]}), "
                f"got shape {tuple(codes.shape)}."
            )
        codes = to_device(codes, device_of(self.components_)).astype(self.components_.dtype, copy=False)
        return self._like_input(codes @ self.components_, X)

    def score(self, X, y=None):
        """Explained variance of the reconstruction :math:`zD` of ``X`` (see :func:`skdict.metrics.explained_variance`)."""
        from skdict.metrics import explained_variance

        X = self._model_input(X)
        return explained_variance(X, self._encode(X) @ self.components_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
