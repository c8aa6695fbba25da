"""Learning dynamics: how close a dictionary is to the true features after every epoch."""

from __future__ import annotations

from sklearn.base import clone
from sklearn.utils import Bunch

from skdict._array import to_numpy
from skdict.metrics import gt_recovery, mean_max_cosine


def _callback_parameter(model):
    """The ``set_params`` name of the public ``callback``: the estimator's own, or its wrapped estimator's.

    Raises
    ------
    TypeError
        The estimator takes no ``callback`` (it is not an iterative skdict learner).
    """
    params = model.get_params()
    for name in ("callback", "estimator__callback"):
        if name in params:
            return name
    raise TypeError(
        f"{type(model).__name__} has no callback parameter: track_learning_dynamics follows iterative skdict "
        "learners (the SAEs, AnchoredSAE, FISTADictionaryLearning, SoftplusAdamDictionaryLearning, LISTA)."
    )


def track_learning_dynamics(estimator, X, y=None, *, true_features, threshold=0.95):
    """Fit a clone of an iterative learner and record its ground-truth agreement after every epoch.

    The clone's public ``callback`` (chained after one the estimator already has) measures
    ``components_`` after every epoch (alternation for batch dictionary learning).

    Parameters
    ----------
    estimator : skdict SAE, AnchoredSAE, or dictionary learner (unfitted; cloned)
    X, y : passed to ``fit``
    true_features : array of shape (n_true, n_targets)
        The features the dictionary should find (rows).
    threshold : float, default=0.95
        Cosine for :func:`~skdict.metrics.gt_recovery`.

    Returns
    -------
    estimator : the fitted clone
        Its ``callback`` is the one ``estimator`` had.
    dynamics : Bunch of lists, one entry per epoch
        ``mean_max_cosine`` (M_IP of the true features against ``components_``),
        ``gt_recovery``, and the estimator's own ``history_`` entries beside them.

    Raises
    ------
    TypeError
        ``estimator`` has no ``callback`` parameter.
    """
    model = clone(estimator)
    name = _callback_parameter(model)
    users = model.get_params()[name]
    true = to_numpy(true_features)
    dynamics = Bunch(mean_max_cosine=[], gt_recovery=[])

    def record(fitted, entry):
        atoms = to_numpy(fitted.components_)
        dynamics.mean_max_cosine.append(mean_max_cosine(true, atoms))
        dynamics.gt_recovery.append(gt_recovery(true, atoms, threshold))
        return users(fitted, entry) if users is not None else None

    model.set_params(**{name: record})
    try:
        model.fit(X, y)
    finally:
        model.set_params(**{name: users})
        if hasattr(model, "estimator_"):  # a wrapper's fitted clone of its estimator
            model.estimator_.set_params(callback=users)
    dynamics.update({key: list(values) for key, values in model.history_.items()})
    return model, dynamics
