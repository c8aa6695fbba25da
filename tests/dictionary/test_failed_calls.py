"""A fit that fails part-way (after validation) leaves a fitted dictionary learner exactly as it was."""

import copy

import numpy as np
import pytest

from skdict import LISTA, FISTADictionaryLearning

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

LEARNERS = {
    "fista-batch": lambda: FISTADictionaryLearning(12, max_iter=3, random_state=0),
    "fista-minibatch": lambda: FISTADictionaryLearning(12, max_iter=3, batch_size=16, random_state=0),
    "lista": lambda: LISTA(12, max_iter=2, random_state=0),
}


@pytest.mark.parametrize("name", LEARNERS)
def test_an_overflowing_refit_leaves_the_model_as_it_was(name):
    X = np.random.default_rng(0).normal(size=(60, 8))
    model = LEARNERS[name]().fit(X)
    before = copy.deepcopy(vars(model))
    codes = model.transform(X)
    bad = X.copy()
    bad[5, 2] = 1e300  # finite, passes validation, overflows the objective once training starts
    with pytest.raises(ValueError, match="overflows float64"):
        model.fit(bad)
    assert vars(model).keys() == before.keys()
    for key, value in before.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(getattr(model, key), value, err_msg=key)
    np.testing.assert_array_equal(model.transform(X), codes)


def test_a_failed_partial_fit_leaves_the_minibatch_state_as_it_was():
    X = np.random.default_rng(1).normal(size=(60, 8))
    model = FISTADictionaryLearning(12, batch_size=16, random_state=0).partial_fit(X)
    before = copy.deepcopy(vars(model))
    with pytest.raises(ValueError):
        model.partial_fit(X[:, :5])  # wrong width: refused before anything changes
    bad = X.copy()
    bad[0, 0] = 1e300
    with pytest.raises(ValueError, match="overflows float64"):
        model.partial_fit(bad)
    np.testing.assert_array_equal(model.components_, before["components_"])
    assert model.n_iter_ == before["n_iter_"]
