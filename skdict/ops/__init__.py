"""Pure array functions (the "ops" layer): written once against the namespace ``xp``.

Estimators call these; these call only :mod:`skdict._array` and the array module.
"""
