"""scikit-learn's estimator checks on SparseCoder, whose dictionary fixes n_features.

The checks feed data of many widths (1, 2, 3, 5, 10, ... features), and a
SparseCoder only accepts data as wide as its dictionary. Instead of a table of
widths per check, each check runs twice: first on a probe coder that records
the width of the first data it is given and stops the check, then on a real
SparseCoder with a random dictionary of that width. A check that never passes
data to fit/transform runs on the default dictionary.
"""

import numpy as np
import pytest
from sklearn.utils.estimator_checks import estimator_checks_generator

from skdict import SparseCoder

N_COMPONENTS = 5


def random_dictionary(n_features, seed=0):
    return np.random.default_rng(seed).standard_normal((N_COMPONENTS, n_features))


class _WidthFound(BaseException):
    """Stops a check at its first data (a BaseException, so no ``except Exception`` in a check swallows it)."""

    def __init__(self, n_features):
        super().__init__(n_features)
        self.n_features = n_features


def _width(X):
    shape = getattr(X, "shape", None)
    if shape is None:
        shape = np.asarray(X).shape
    return shape[1] if len(shape) == 2 else None


def _unwrap(exc):
    """The :class:`_WidthFound` behind ``exc`` (checks may re-raise it as the cause of an AssertionError)."""
    while exc is not None and not isinstance(exc, _WidthFound):
        exc = exc.__cause__ or exc.__context__
    return exc


class _WidthProbe(SparseCoder):
    """A SparseCoder that reports the number of features of the first 2-D data it receives."""

    def fit(self, X, y=None):
        if _width(X) is not None:
            raise _WidthFound(_width(X))
        return super().fit(X, y)

    def transform(self, X, y=None):
        if _width(X) is not None:
            raise _WidthFound(_width(X))
        return super().transform(X, y)


@pytest.fixture
def coder_for_check():
    """``coder_for_check(check)``: a SparseCoder whose dictionary is as wide as the check's data."""

    def build(check):
        n_features = 3
        try:
            check(_WidthProbe(random_dictionary(n_features)))
        except BaseException as stopped:  # noqa: BLE001 - the probe's signal may come wrapped
            found = _unwrap(stopped)
            if found is None:
                raise
            n_features = found.n_features
        return SparseCoder(random_dictionary(n_features))

    return build


CHECKS = list(estimator_checks_generator(SparseCoder(random_dictionary(3)), legacy=True, mark="skip"))


@pytest.mark.parametrize("check", [check for _, check in CHECKS], ids=[check.func.__name__ for _, check in CHECKS])
def test_sklearn_compatible(check, coder_for_check):
    check(coder_for_check(check))


def test_probe_finds_the_width_of_each_check(coder_for_check):
    widths = {check.func.__name__: coder_for_check(check).dictionary.shape[1] for _, check in CHECKS}
    assert widths["check_fit2d_1feature"] == 1
    assert widths["check_fit2d_1sample"] == 10
    assert len(set(widths.values())) > 3  # the checks really do use several widths
