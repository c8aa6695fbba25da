"""Feature anchoring: pin chosen latents of any skdict SAE to known directions."""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, TransformerMixin, clone
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted

from skdict._array import get_namespace, to_numpy
from skdict._validation import check_atoms, check_input, check_target, is_matrix_target
from skdict.exceptions import TrainingDivergedError
from skdict._guards import keeps_state_on_failure
from skdict.sae._base import EncodeDecodeMixin
from skdict.sae._data import is_target
from skdict.sources import PairedSource, as_source, is_out_of_core


class AnchorPenalty:
    """:math:`\\lambda(\\|W_E[:n_a] - A_{in}\\|_F^2 + \\|W_D[:n_a] - A_{out}\\|_F^2)` on a model's parameters.

    The regulariser object that :class:`AnchoredSAE` hands to its wrapped SAE
    (see ``BaseSparseAutoencoder._regularizer``). The encoder term is skipped
    for a tied architecture (no ``encoder_``).

    Parameters
    ----------
    weight : float
        :math:`\\lambda`.
    anchors_in, anchors_out : ndarray of shape (n_anchors, n_features) and (n_anchors, n_targets)
        Unit rows (NumPy); moved to the model's device and dtype at initialisation.
    """

    def __init__(self, weight, anchors_in, anchors_out):
        self.weight = weight
        self.anchors_in = anchors_in
        self.anchors_out = anchors_out

    def initialize(self, model):
        """Start the anchored latents at their anchors (and bring the anchors to the model's arrays)."""
        xp = get_namespace(model.components_)
        dtype = model.components_.dtype
        self.anchors_out = xp.asarray(self.anchors_out, dtype=dtype)
        self.anchors_in = xp.asarray(self.anchors_in, dtype=dtype)
        n_anchors = self.anchors_out.shape[0]
        model.components_[:n_anchors] = self.anchors_out
        if hasattr(model, "encoder_"):
            model.encoder_[:n_anchors] = self.anchors_in

    def add_to(self, params, grads):
        """Add the penalty's gradient to ``grads`` in place and return its value."""
        xp = get_namespace(params["components_"])
        value = 0.0
        pairs = [("components_", self.anchors_out)]
        if "encoder_" in params:
            pairs.append(("encoder_", self.anchors_in))
        for name, anchors in pairs:
            gap = params[name][: anchors.shape[0]] - anchors
            value += self.weight * float(xp.sum(gap * gap))
            grads[name][: anchors.shape[0]] += (2 * self.weight) * gap
        return value


class AnchoredSAE(EncodeDecodeMixin, MetaEstimatorMixin, TransformerMixin, BaseEstimator):
    """Any skdict SAE whose first latents are pinned to known feature directions.

    Adds to the wrapped estimator's training loss the anchoring penalty

    .. math::

        \\lambda \\left(\\|W_E[:n_a] - A_{in}\\|_F^2 + \\|W_D[:n_a] - A_{out}\\|_F^2\\right),

    where :math:`W_E` are the encoder rows (``encoder_``), :math:`W_D` the
    decoder atoms (``components_``) and :math:`n_a` the number of anchors. The
    anchored latents also start at their anchors. Anchors are directions: their
    rows are scaled to unit norm (decoder atoms are unit-norm). For a tied
    architecture (:class:`~skdict.MPSAE`) only the decoder term applies.

    Parameters
    ----------
    estimator : skdict SAE
        Cloned at ``fit``; e.g. ``TopKSAE(n_components=512, k=8)``.
    anchors : array of shape (n_anchors, n_features), a pair of arrays, or None
        Known features. One array anchors both the encoder and the decoder of an
        SAE. For a transcoder (``fit(X, Y)``), a pair ``(anchors_in, anchors_out)``
        of shapes (n_anchors, n_features) and (n_anchors, n_targets). ``None``
        anchors nothing (the wrapped estimator as is, e.g. as a baseline in a grid search).
    anchor_weight : float, default=0.1
        :math:`\\lambda`.

    Attributes
    ----------
    estimator_ : skdict SAE
        The fitted clone.
    n_anchors_ : int
    components_, history_, n_iter_ : as the wrapped estimator's.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from skdict import AnchoredSAE, TopKSAE
    >>> from skdict.datasets import make_linear_representation_bench
    >>> X, features, _ = make_linear_representation_bench(2000, n_features=32, n_dims=24, max_coherence=0.25, random_state=0)
    >>> model = AnchoredSAE(TopKSAE(n_components=64, k=2, random_state=0), anchors=features[:4]).fit(X)
    >>> bool(np.all(np.sum(model.components_[:4] * features[:4], axis=1) > 0.99))
    True
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "transform", "_loss_and_grads"])],
        "anchors": ["array-like", tuple, list, None],
        "anchor_weight": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, estimator, anchors=None, *, anchor_weight=0.1):
        self.estimator = estimator
        self.anchors = anchors
        self.anchor_weight = anchor_weight

    def _anchor_arrays(self, n_features, n_targets, transcoder):
        """Validated unit-row ``(anchors_in, anchors_out)`` as NumPy float64, or None."""
        if self.anchors is None:
            return None
        is_pair = isinstance(self.anchors, (tuple, list)) and len(self.anchors) == 2 and np.ndim(self.anchors[0]) == 2
        if transcoder and not is_pair:
            raise ValueError(
                "anchors: a transcoder (fit(X, Y)) needs a pair (anchors_in, anchors_out) of shapes "
                f"(n_anchors, {n_features}) and (n_anchors, {n_targets})."
            )
        parts = self.anchors if is_pair else (self.anchors, self.anchors)
        arrays = []
        for part, width, side in zip(parts, (n_features, n_targets), ("input", "output")):
            array = np.asarray(to_numpy(part) if hasattr(part, "__cuda_array_interface__") else part)
            if array.dtype.kind not in "fiu":
                raise ValueError(f"anchors ({side} side) must be numeric, got dtype {array.dtype}.")
            if array.ndim == 1:
                array = array[None, :]
            like = np.empty((0, width))  # NumPy float64, moved to the model's arrays at initialisation
            arrays.append(check_atoms(array, None, width, like=like, name=f"anchors ({side} side)", row_name="n_anchors"))
        if arrays[0].shape[0] != arrays[1].shape[0]:
            raise ValueError(
                f"anchors: the input and output sides have {arrays[0].shape[0]} and {arrays[1].shape[0]} rows; "
                "give one row per anchored latent on both."
            )
        return arrays

    @keeps_state_on_failure
    def fit(self, X, y=None):
        """Fit a clone of ``estimator`` with the anchoring penalty.

        Parameters
        ----------
        X, y : as for the wrapped SAE's ``fit``
            ``X`` of shape (n_samples, n_features) or out-of-core data; ``y`` None, 1-D labels
            (ignored) or the 2-D target of a transcoder.

        Returns
        -------
        self : AnchoredSAE

        Raises
        ------
        ValueError
            Bad anchors, parameters, ``X`` or ``Y``: a fitted AnchoredSAE stays as it was.
        TrainingDivergedError
            The wrapped SAE diverged: ``estimator_`` is still set, to the clone with
            its last sane parameters (usable), and the error propagates.
        """
        self._validate_params()
        inner = clone(self.estimator)
        if is_out_of_core(X):  # a file, dataset or stream: its width from the source, read by the inner fit
            X = as_source(X)
            transcoder = is_target(y)
            n_features = self.n_features_in_ = X.n_inputs if isinstance(X, PairedSource) else X.n_features
            self.__dict__.pop("feature_names_in_", None)
            n_targets = as_source(y).n_features if transcoder else n_features
        else:
            X_checked = check_input(self, X, reset=True)
            transcoder = is_matrix_target(y)
            n_features = X_checked.shape[1]
            n_targets = check_target(y, X_checked).shape[1] if transcoder else n_features
        anchors = self._anchor_arrays(n_features, n_targets, transcoder)
        if anchors is not None:
            n_components = inner._resolve_n_components(n_features)
            if anchors[0].shape[0] > n_components:
                raise ValueError(
                    f"anchors: {anchors[0].shape[0]} anchors for n_components={n_components}; "
                    "give at most n_components anchors or raise n_components."
                )
            inner._regularizer = AnchorPenalty(self.anchor_weight, *anchors)
        diverged = None
        try:
            inner.fit(X, y)  # the caller's X: the inner model keeps its feature names
        except TrainingDivergedError as error:
            diverged = error  # the clone keeps its last sane parameters: kept as the model
        finally:
            inner._regularizer = None  # the fitted model is an ordinary SAE
        self.estimator_ = inner
        self.n_anchors_ = 0 if anchors is None else anchors[0].shape[0]
        if diverged is not None:
            raise diverged
        return self

    def transform(self, X):
        """Codes of the fitted SAE."""
        check_is_fitted(self)
        return self.estimator_.transform(X)

    def inverse_transform(self, X):
        """Reconstruction from codes."""
        check_is_fitted(self)
        return self.estimator_.inverse_transform(X)

    def predict(self, X):
        """Reconstruction of the target from ``X``."""
        check_is_fitted(self)
        return self.estimator_.predict(X)

    def score(self, X, y=None):
        """Explained variance of the reconstruction (as the wrapped SAE's ``score``)."""
        check_is_fitted(self)
        return self.estimator_.score(X, y)

    def get_feature_names_out(self, input_features=None):
        """Names of the latents, as the wrapped SAE's (``topksae0``, ...)."""
        check_is_fitted(self)
        return self.estimator_.get_feature_names_out(input_features)

    @property
    def components_(self):
        return self.estimator_.components_

    @property
    def history_(self):
        return self.estimator_.history_

    @property
    def n_iter_(self):
        return self.estimator_.n_iter_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = self.estimator.__sklearn_tags__()
        tags.transformer_tags = inner.transformer_tags
        tags.input_tags = inner.input_tags
        return tags
