"""Learning dynamics: how close a dictionary is to the true features after every epoch."""

from __future__ import annotations

from sklearn.base import clone
from sklearn.utils import Bunch

from skdict._array import to_numpy
from skdict.metrics import gt_recovery, mean_max_cosine


def track_learning_dynamics(estimator, X, y=None, *, true_features, threshold=0.95):
    """Fit a clone of an SAE and record its ground-truth agreement after every epoch.

    Parameters
    ----------
    estimator : skdict SAE (unfitted; cloned)
    X, y : passed to ``fit``
    true_features : array of shape (n_true, n_targets)
        The features the dictionary should find (rows).
    threshold : float, default=0.95
        Cosine for :func:`~skdict.metrics.gt_recovery`.

    Returns
    -------
    estimator : the fitted clone
    dynamics : Bunch of lists, one entry per epoch
        ``mean_max_cosine`` (M_IP of the true features against ``components_``),
        ``gt_recovery``, and the estimator's own ``history_`` entries beside them.
    """
    model = clone(estimator)
    true = to_numpy(true_features)
    dynamics = Bunch(mean_max_cosine=[], gt_recovery=[])

    def record(fitted):
        atoms = to_numpy(fitted.components_)
        dynamics.mean_max_cosine.append(mean_max_cosine(true, atoms))
        dynamics.gt_recovery.append(gt_recovery(true, atoms, threshold))

    model._epoch_callback = record
    try:
        model.fit(X, y)
    finally:
        model._epoch_callback = None
    dynamics.update({key: list(values) for key, values in model.history_.items()})
    return model, dynamics
