"""Exceptions raised by skdict."""


class TrainingDivergedError(RuntimeError):
    """The training loss became non-finite.

    Training stopped; the estimator keeps the parameters of the last finite step
    and stays usable (``transform``, ``score``, ...). The message says what to lower.
    """
