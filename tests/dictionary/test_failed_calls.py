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


def _failing_code_step(self, *args, **kwargs):
    raise ValueError("a code step failed")


@pytest.mark.parametrize("name", LEARNERS)
def test_a_refit_failing_part_way_leaves_the_model_as_it_was(name, monkeypatch):
    """FISTA DL solves any finite scale now (2^-e X), so the failure is injected in its first code step."""
    X = np.random.default_rng(0).normal(size=(60, 8))
    model = LEARNERS[name]().fit(X)
    before = copy.deepcopy(vars(model))
    codes = model.transform(X)
    monkeypatch.setattr(FISTADictionaryLearning, "_code_step", _failing_code_step)
    with pytest.raises(ValueError, match="a code step failed"):
        model.fit(X[::-1] * 3)  # fails after the model's state was reset for the new data
    monkeypatch.undo()
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
