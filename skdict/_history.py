"""The one schema of ``history_``: what every iterative learner records per epoch, and what it means.

Every iterative estimator (the SAEs, the dictionary learners, LISTA, the triplet learner's
low-rank solver) keeps ``history_``, a dict of lists with one entry per epoch (per alternation
for batch dictionary learning, per optimizer step where the class says so). The core keys of
:data:`CORE_KEYS` mean the same everywhere; a family adds its own keys beside them (e.g.
``"objective"``, ``"n_resampled"``). A key a learner cannot define is absent, never filled
with zeros: plots and tables then show what each model really measured.

============================  ===================================================================
key                           meaning (unit)
============================  ===================================================================
``"loss"``                    the quantity the optimizer minimises, averaged per sample (in the
                              data's squared units for reconstruction losses); always present
``"explained_variance"``      :math:`1 - \\sum\\|y - \\hat y\\|^2 / \\sum\\|y - \\bar y\\|^2` on the
                              training rows of that epoch (dimensionless, 1 is perfect); for
                              learners that reconstruct their input from codes
``"l0"``                      mean number of nonzero codes per sample (latents); same learners
``"dead_fraction"``           fraction of latents that did not fire over the epoch (or, for SAEs,
                              for ``dead_after`` samples; NaN until that is known); for learners
                              whose latents can die
============================  ===================================================================

A public ``callback(estimator, record)`` receives the record just appended (these keys plus the
family's own and ``"epoch"``, 1-based since initialisation); returning ``True`` stops the fit.
"""

from __future__ import annotations

#: The core keys, in the order tables and plots show them.
CORE_KEYS = ("loss", "explained_variance", "l0", "dead_fraction")

#: Axis labels of the core keys (plots).
KEY_LABELS = {
    "loss": "training loss (per sample)",
    "explained_variance": "explained variance",
    "l0": "L0 (active latents per sample)",
    "dead_fraction": "dead fraction of latents",
}


def empty_history(*keys):
    """An empty ``history_`` with the given keys (core ones first, as listed)."""
    return {key: [] for key in keys}


def append_record(estimator, record):
    """Append one epoch's ``record`` (a dict of the history's keys) to ``estimator.history_``.

    Returns the record the callback receives: ``record`` plus ``"epoch"``, the 1-based number
    of the epoch since initialisation.

    Raises
    ------
    KeyError
        ``record`` lacks a key of ``history_`` (a learner's schema and its records disagree).
    """
    history = estimator.history_
    for key in history:
        history[key].append(record[key])
    return {**record, "epoch": len(next(iter(history.values())))}


def call_callback(estimator, record):
    """Run the estimator's public ``callback`` on ``record``; returns whether it asked the fit to stop.

    ``callback(estimator, record)`` returning ``True`` (exactly, or anything truthy) ends the fit
    after this epoch as early stopping does; ``None`` or ``False`` continues.
    """
    callback = getattr(estimator, "callback", None)
    if callback is None:
        return False
    return bool(callback(estimator, record))
