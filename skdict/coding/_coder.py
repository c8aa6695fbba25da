"""``SparseCoder``: :func:`~skdict.sparse_encode` as a scikit-learn transformer over a fixed dictionary."""

from __future__ import annotations

from numbers import Integral, Real

from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions

from skdict._array import device_of, to_device
from skdict._guards import keeps_state_on_failure
from skdict._validation import check_codes, check_input
from skdict.coding._encode import ALGORITHMS, _check_dictionary, check_dictionary, check_matrix, encode_checked


class SparseCoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    r"""Sparse codes on a fixed dictionary, as a transformer.

    ``transform(X)`` returns :func:`~skdict.sparse_encode` codes :math:`Z` with
    :math:`X \approx Z D` for the atoms :math:`d_j`, the rows of ``dictionary``;
    ``inverse_transform(Z)`` returns :math:`Z D`. Nothing is learned: ``fit``
    only validates ``X`` against the dictionary and records ``n_features_in_``,
    and ``transform`` works without it (a stateless transformer, like
    :class:`sklearn.decomposition.SparseCoder`).

    Parameters
    ----------
    dictionary : array of shape (n_components, n_features)
        The atoms, as rows. NumPy or CuPy; used on the device of the data.
    transform_algorithm : {"fista", "ista", "mp", "omp", "topk", "threshold"}, default="fista"
        See :func:`~skdict.sparse_encode`.
    transform_alpha : float, default=1.0
        l1 penalty :math:`\alpha` of fista/ista (objective
        :math:`\tfrac12\lVert x - zD\rVert^2 + \alpha\lVert z\rVert_1` per sample),
        threshold of ``"threshold"``.
    transform_n_nonzero_coefs : int or None, default=None
        Atoms per sample for mp, omp and topk; ``None`` means
        ``max(1, n_features // 10)``, at most ``n_components``.
    positive_code : bool, default=False
        Non-negative codes (not available with ``"omp"``).
    transform_max_iter : int, default=1000
        Largest number of fista/ista iterations.
    transform_tol : float, default=1e-4
        fista/ista stop a sample once its duality gap is at most ``transform_tol``
        times its objective.

    Attributes
    ----------
    components_ : array of shape (n_components, n_features)
        The validated dictionary (set by ``fit``, on the device of the data).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.

    Notes
    -----
    The codes have ``X``'s dtype (float32 stays float32 even with a float64
    dictionary, which is cast) and ``X``'s backend. There is no ``n_iter_``:
    nothing is fitted iteratively; ``sparse_encode(..., return_n_iter=True)``
    reports the iterations of one encoding.

    Examples
    --------
    >>> import numpy as np
    >>> from skdict import SparseCoder
    >>> D = np.eye(3)
    >>> SparseCoder(D, transform_algorithm="threshold", transform_alpha=0.5).transform([[2.0, -0.2, -1.0]])
    array([[ 1.5,  0. , -0.5]])
    """

    _parameter_constraints: dict = {
        "dictionary": ["array-like"],
        "transform_algorithm": [StrOptions(set(ALGORITHMS))],
        "transform_alpha": [Interval(Real, 0, None, closed="left")],
        "transform_n_nonzero_coefs": [Interval(Integral, 1, None, closed="left"), None],
        "positive_code": ["boolean"],
        "transform_max_iter": [Interval(Integral, 1, None, closed="left")],
        "transform_tol": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        dictionary,
        *,
        transform_algorithm="fista",
        transform_alpha=1.0,
        transform_n_nonzero_coefs=None,
        positive_code=False,
        transform_max_iter=1000,
        transform_tol=1e-4,
    ):
        self.dictionary = dictionary
        self.transform_algorithm = transform_algorithm
        self.transform_alpha = transform_alpha
        self.transform_n_nonzero_coefs = transform_n_nonzero_coefs
        self.positive_code = positive_code
        self.transform_max_iter = transform_max_iter
        self.transform_tol = transform_tol

    @keeps_state_on_failure
    def fit(self, X, y=None):
        """Validate ``X`` against the dictionary; nothing is learned.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        self._validate_params()
        X = check_input(self, X, reset=True)
        self.components_ = _check_dictionary(X, self.dictionary)
        return self

    def _is_fitted(self):
        return hasattr(self, "components_")

    def _atoms_like(self, A):
        """The dictionary on ``A``'s device, in ``A``'s dtype.

        Read from the ``dictionary`` parameter at every call (a stateless coder, as
        scikit-learn's): ``set_params(dictionary=...)`` takes effect at once.
        """
        return _check_dictionary(A, self.dictionary).astype(A.dtype, copy=False)

    def transform(self, X, y=None):
        """Sparse codes of ``X``.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        codes : array of shape (n_samples, n_components)
            ``X``'s dtype and backend.

        Warns
        -----
        ConvergenceWarning
            fista/ista: some rows stopped at ``transform_max_iter`` before their
            duality gap reached ``transform_tol``.
        """
        if self._is_fitted():
            X = check_input(self, X, reset=False)
        else:
            self._validate_params()
            X = check_matrix(X, "X")
        codes, _ = encode_checked(
            X,
            self._atoms_like(X),
            algorithm=self.transform_algorithm,
            alpha=self.transform_alpha,
            n_nonzero_coefs=self.transform_n_nonzero_coefs,
            positive=self.positive_code,
            max_iter=self.transform_max_iter,
            tol=self.transform_tol,
            init=None,
            who=self,
            max_iter_name="transform_max_iter",
            tol_name="transform_tol",
        )
        return codes

    def inverse_transform(self, X):
        """Reconstruction :math:`Z D` from codes ``X`` of shape (n_samples, n_components).

        The codes follow the shared rules of :func:`skdict._validation.check_codes`
        (complex values, NaN/inf and a wrong shape raise); the result has their
        dtype (float32 kept) and backend.
        """
        D = check_dictionary(self.dictionary)
        codes = check_codes(X, D.shape[0])
        return codes @ to_device(D, device_of(codes)).astype(codes.dtype, copy=False)

    @property
    def _n_features_out(self):
        return self.components_.shape[0] if self._is_fitted() else len(self.dictionary)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.sparse = False
        return tags
