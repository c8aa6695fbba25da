"""Scorers ``scorer(estimator, X, y=None) -> float`` (greater is better) for model selection.

They plug into :class:`~sklearn.model_selection.GridSearchCV` and
:func:`~sklearn.model_selection.cross_validate` as ``scoring={"ev":
get_scorer("explained_variance"), "gt": make_gt_scorer(F)}``. Every scorer works
on any fitted transformer with ``transform`` and ``inverse_transform`` (an SAE,
a :class:`~sklearn.pipeline.Pipeline` ending in one, scikit-learn's
decompositions), on NumPy or CuPy ``X``.
"""

from __future__ import annotations

from numbers import Real

from skdict._array import device_of, to_device
from skdict._validation import is_matrix_target
from skdict.metrics._dictionary import gt_recovery, mean_max_cosine
from skdict.metrics._matching import matched_cosine
from skdict.metrics._reconstruction import explained_variance, fvu
from skdict.metrics._sparsity import dead_fraction, l0
from skdict.metrics._validation import _check_matrix


def _reconstruction_pair(estimator, X, y):
    """``(target, reconstruction)``: ``X`` or, for a transcoder, the 2-D ``y``, and its reconstruction."""
    target = y if is_matrix_target(y) else X
    return target, estimator.inverse_transform(estimator.transform(X))


def _explained_variance(estimator, X, y):
    return explained_variance(*_reconstruction_pair(estimator, X, y))


def _fvu(estimator, X, y):
    return fvu(*_reconstruction_pair(estimator, X, y))


def _l0(estimator, X, y):
    return l0(estimator.transform(X))


def _dead_fraction(estimator, X, y):
    return dead_fraction(estimator.transform(X))


class _Scorer:
    """``sign * measure(estimator, X, y)``, with a readable repr (it shows in ``cv_results_``)."""

    def __init__(self, name, measure, sign):
        self.name, self._measure, self._sign = name, measure, sign

    def __call__(self, estimator, X, y=None):
        return self._sign * float(self._measure(estimator, X, y)) + 0.0  # + 0.0: no -0.0

    def __repr__(self):
        return f"get_scorer({self.name!r})"


# name: (measure, sign); the "neg_" scorers negate a measure where lower is better.
_SCORERS = {
    "explained_variance": (_explained_variance, 1.0),
    "neg_fvu": (_fvu, -1.0),
    "neg_l0": (_l0, -1.0),
    "neg_dead_fraction": (_dead_fraction, -1.0),
}


def get_scorer(name):
    """Return the scorer called ``name``.

    ==========================  ==========================================================
    name                        score (greater is better)
    ==========================  ==========================================================
    ``"explained_variance"``    EV of ``inverse_transform(transform(X))`` against ``X``
                                (against the 2-D ``y`` for a transcoder)
    ``"neg_fvu"``               :math:`-\\mathrm{FVU} = \\mathrm{EV} - 1`
    ``"neg_l0"``                minus the mean number of active latents per sample
    ``"neg_dead_fraction"``     minus the fraction of latents silent on every sample of ``X``
    ==========================  ==========================================================

    Ground-truth scorers need the true features: see :func:`make_gt_scorer`.

    Parameters
    ----------
    name : str

    Returns
    -------
    scorer : callable ``scorer(estimator, X, y=None) -> float``
    """
    if name not in _SCORERS:
        raise ValueError(
            f"Unknown scorer name {name!r}; skdict.metrics.get_scorer knows {sorted(_SCORERS)}. "
            "For ground-truth scores use skdict.metrics.make_gt_scorer(true_features); for scikit-learn's "
            "own scorers use sklearn.metrics.get_scorer."
        )
    return _Scorer(name, *_SCORERS[name])


def _components(estimator):
    """``components_`` of the estimator, or of the last step of a Pipeline that has one."""
    if hasattr(estimator, "components_"):
        return estimator.components_
    for _, step in reversed(getattr(estimator, "steps", [])):
        if hasattr(step, "components_"):
            return step.components_
    raise ValueError(
        f"{type(estimator).__name__} has no components_ (dictionary atoms as rows), so a ground-truth "
        "scorer cannot compare it with the true features; fit it first, or use a dictionary estimator."
    )


class _GroundTruthScorer:
    """``metric(true_features, estimator.components_)``; ``X`` and ``y`` are not used."""

    def __init__(self, true_features, metric, threshold):
        self.true_features, self.metric, self.threshold = true_features, metric, threshold

    def __call__(self, estimator, X=None, y=None):
        learned = _components(estimator)
        true_features = to_device(self.true_features, device_of(learned))  # the scorer itself is not changed
        if self.metric == "gt_recovery":
            return gt_recovery(true_features, learned, threshold=self.threshold)
        return _GT_METRICS[self.metric](true_features, learned)

    def __repr__(self):
        return f"make_gt_scorer(<{self.true_features.shape[0]} true features>, metric={self.metric!r})"


_GT_METRICS = {"gt_recovery": gt_recovery, "mean_max_cosine": mean_max_cosine, "matched_cosine": matched_cosine}


def make_gt_scorer(true_features, metric="gt_recovery", threshold=0.95):
    r"""A scorer comparing ``estimator.components_`` with known true features.

    Parameters
    ----------
    true_features : array of shape (n_true, n_dims)
        Ground-truth atoms as rows (NumPy or CuPy; moved to the device of the
        scored estimator's ``components_`` when they differ).
    metric : {"gt_recovery", "mean_max_cosine", "matched_cosine"}, default="gt_recovery"
        :func:`gt_recovery` (fraction of true atoms with a learned atom at
        :math:`|\cos| >` ``threshold``), :func:`mean_max_cosine` (:math:`M_\mathrm{IP}`)
        or :func:`matched_cosine` (Hungarian).
    threshold : float in [0, 1], default=0.95
        Used by ``"gt_recovery"`` only.

    Returns
    -------
    scorer : callable ``scorer(estimator, X=None, y=None) -> float``
        Greater is better; ``X`` and ``y`` are ignored (the score depends on the
        dictionary only), so it is the same on every cross-validation fold's test set.
        The estimator (or the last step of a Pipeline holding ``components_``)
        must have atoms in the space of the true features.
    """
    if metric not in _GT_METRICS:
        raise ValueError(f"metric must be one of {sorted(_GT_METRICS)}, got {metric!r}.")
    if not isinstance(threshold, Real) or not 0 <= threshold <= 1:
        raise ValueError(f"threshold must be a float in [0, 1] (a bound on |cos|), got {threshold!r}.")
    return _GroundTruthScorer(_check_matrix(true_features, "true_features"), metric, threshold)
