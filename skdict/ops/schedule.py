"""Learning-rate schedule: linear warmup, constant, then linear decay to zero."""

from __future__ import annotations

import math


def learning_rate_factor(step, total_steps, *, warmup_fraction, decay_fraction):
    """Multiplier of the base learning rate at ``step`` (0-based) of ``total_steps``.

    Linear warmup over the first ``ceil(warmup_fraction * total_steps)`` steps,
    then 1, then a linear decay over the last ``floor(decay_fraction * total_steps)``
    steps that reaches ``1 / n_decay`` on the final step (never exactly zero).
    With ``total_steps=None`` (streaming, no known horizon) the factor is 1.
    """
    if total_steps is None:
        return 1.0
    n_warmup = _whole_steps(warmup_fraction * total_steps, math.ceil)
    n_decay = _whole_steps(decay_fraction * total_steps, math.floor)
    factor = 1.0
    if step < n_warmup:
        factor = (step + 1) / n_warmup
    decay_start = total_steps - n_decay
    if n_decay > 0 and step >= decay_start:
        factor = min(factor, (total_steps - step) / n_decay)
    return factor


def _whole_steps(count, rounding):
    """Round a product such as ``0.07 * 100`` (= 7.000000000000001) to whole steps
    after removing its floating-point error, so that ceil/floor see the intended value."""
    return int(rounding(round(count, 9)))
