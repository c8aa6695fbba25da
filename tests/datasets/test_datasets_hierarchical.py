import numpy as np
import pytest
from sklearn.utils import Bunch

from skdict.datasets import make_hierarchical_features
from skdict.metrics import mutual_coherence


@pytest.fixture(scope="module")
def data():
    return make_hierarchical_features(
        n_samples=5000, n_parents=3, children_per_parent=4, n_dims=20, parent_rate=0.3, child_rate=0.6, random_state=0
    )


def test_fields_and_hierarchy(data):
    assert isinstance(data, Bunch)
    assert data.X.shape == (5000, 20)
    assert data.features.shape == (15, 20) and data.codes.shape == (5000, 15)
    np.testing.assert_array_equal(data.parents, [0, 1, 2])
    np.testing.assert_array_equal(data.children, [[3, 4, 5, 6], [7, 8, 9, 10], [11, 12, 13, 14]])
    np.testing.assert_array_equal(data.parent_of, [-1, -1, -1] + [0] * 4 + [1] * 4 + [2] * 4)
    np.testing.assert_array_equal(data.X, data.codes @ data.features)


def test_features_orthonormal_when_they_fit(data):
    np.testing.assert_allclose(data.features @ data.features.T, np.eye(15), atol=1e-12)


def test_child_never_without_parent(data):
    active = data.codes != 0
    for p, children in zip(data.parents, data.children):
        assert not np.any(active[:, children] & ~active[:, [p]])


def test_exclusive_children_rates(data):
    active = data.codes != 0
    # Each parent fires with probability 0.3 (15000 draws, sd ~ 0.004).
    assert active[:, data.parents].mean() == pytest.approx(0.3, abs=0.02)
    n_children = np.stack([active[:, c].sum(axis=1) for c in data.children], axis=1)
    assert n_children.max() == 1
    # Given its parent, one child fires with probability 0.6, each child 0.6 / 4.
    parent_on = active[:, data.parents]
    assert n_children[parent_on].mean() == pytest.approx(0.6, abs=0.03)
    child_given_parent = [active[active[:, p]][:, c].mean(axis=0) for p, c in zip(data.parents, data.children)]
    np.testing.assert_allclose(np.concatenate(child_given_parent), 0.15, atol=0.04)


def test_constant_magnitudes_by_default(data):
    np.testing.assert_array_equal(np.unique(data.codes), [0.0, 1.0])


def test_independent_children_and_exponential_magnitudes():
    data = make_hierarchical_features(
        4000, 2, 3, 16, parent_rate=0.5, child_rate=0.5, exclusive_children=False, c_min=0.5, beta=2.0, random_state=1
    )
    active = data.codes != 0
    parent_on = active[:, data.parents]
    n_children = np.stack([active[:, c].sum(axis=1) for c in data.children], axis=1)[parent_on]
    # Binomial(3, 0.5) children under an active parent: mean 1.5, and all three sometimes.
    assert n_children.mean() == pytest.approx(1.5, abs=0.06)
    assert n_children.max() == 3
    values = data.codes[active]
    assert values.min() >= 0.5
    assert values.mean() == pytest.approx(2.5, rel=0.05)


def test_more_features_than_dims_respects_coherence():
    data = make_hierarchical_features(50, 6, 4, 16, max_coherence=0.4, random_state=0)
    assert data.features.shape == (30, 16)
    np.testing.assert_allclose(np.linalg.norm(data.features, axis=1), 1.0, rtol=1e-12)
    assert mutual_coherence(data.features) <= 0.4


def test_same_seed_same_arrays():
    first, second = (make_hierarchical_features(200, 2, 2, 8, random_state=5) for _ in range(2))
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])


def test_all_zero_magnitudes_rejected():
    with pytest.raises(ValueError, match="c_min=0 and beta=0"):
        make_hierarchical_features(10, c_min=0.0, beta=0.0)


@pytest.mark.parametrize(
    "param, value",
    [
        ("n_samples", 0),
        ("n_parents", 0),
        ("children_per_parent", 0),
        ("n_dims", 0),
        ("parent_rate", 1.5),
        ("child_rate", -0.1),
        ("exclusive_children", "yes"),
        ("max_coherence", 0.0),
        ("beta", -1.0),
    ],
)
def test_invalid_parameters(param, value):
    with pytest.raises(ValueError, match=f"'{param}' parameter"):
        make_hierarchical_features(**{"n_samples": 10, param: value})
