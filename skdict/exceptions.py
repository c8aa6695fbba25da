"""Exceptions raised by skdict."""


class TrainingDivergedError(RuntimeError):
    """Training diverged: the loss became non-finite or exploded, or a gradient or parameter overflowed.

    A loss above 100 times the trivial model's (all-zero codes; see
    :class:`skdict._guards.DivergenceGuard`) counts as exploded. Training stopped;
    the estimator keeps the parameters (and optimizer state) of its last checkpoint
    whose loss was sane, not merely finite, and stays usable (``transform``,
    ``score``, a later ``partial_fit``). The message says what to lower.
    """
