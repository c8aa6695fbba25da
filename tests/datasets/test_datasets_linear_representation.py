import numpy as np
import pytest

from skdict.datasets import make_linear_representation_bench
from skdict.metrics import l0, mutual_coherence

SIZES = dict(n_samples=400, n_features=120, n_dims=48)


def _direct_coherence(F):
    G = np.abs(F @ F.T)
    np.fill_diagonal(G, 0)
    return G.max()


@pytest.fixture(scope="module")
def bench():
    return make_linear_representation_bench(**SIZES, sparsity=0.9, max_coherence=0.3, random_state=0)


def test_shapes_and_dtype(bench):
    X, features, codes = bench
    assert X.shape == (400, 48)
    assert features.shape == (120, 48)
    assert codes.shape == (400, 120)
    assert all(a.dtype == np.float64 for a in bench)


def test_unit_rows_and_coherence(bench):
    _, features, _ = bench
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-12)
    assert mutual_coherence(features) <= 0.3
    assert _direct_coherence(features) <= 0.3


def test_codes_distribution(bench):
    _, _, codes = bench
    active = codes != 0
    # 48000 Bernoulli(0.1) draws: the standard error of the rate is ~0.0014.
    assert active.mean() == pytest.approx(0.1, abs=0.01)
    assert l0(codes) == pytest.approx(0.1 * 120, abs=1.2)
    values = codes[active]
    assert values.min() >= 0.1
    assert values.mean() == pytest.approx(0.1 + 1.0, rel=0.05)  # c_min + beta


def test_X_is_codes_times_features(bench):
    X, features, codes = bench
    np.testing.assert_array_equal(X, codes @ features)


def test_same_seed_same_arrays():
    first = make_linear_representation_bench(**SIZES, max_coherence=0.3, target_dims=20, random_state=7)
    second = make_linear_representation_bench(**SIZES, max_coherence=0.3, target_dims=20, random_state=7)
    other = make_linear_representation_bench(**SIZES, max_coherence=0.3, target_dims=20, random_state=8)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[2], other[2])


def test_target_mode():
    X, Y, features, target_features, codes = make_linear_representation_bench(
        **SIZES, sparsity=0.95, max_coherence=0.4, target_dims=24, random_state=0
    )
    assert X.shape == (400, 48)
    assert Y.shape == (400, 24)
    assert features.shape == (120, 48)
    assert target_features.shape == (120, 24)
    assert codes.shape == (400, 120)
    np.testing.assert_allclose(np.linalg.norm(target_features, axis=1), 1.0, rtol=1e-12)
    assert _direct_coherence(target_features) <= 0.4
    np.testing.assert_array_equal(Y, codes @ target_features)


def test_fewer_features_than_dims_is_orthonormal():
    _, features, _ = make_linear_representation_bench(50, 30, 40, max_coherence=1e-12, max_iter=0, random_state=0)
    np.testing.assert_allclose(features @ features.T, np.eye(30), atol=1e-12)


def test_default_sizes_reach_the_default_coherence():
    _, features, _ = make_linear_representation_bench(n_samples=10, random_state=0)
    assert features.shape == (1000, 768)
    assert _direct_coherence(features) <= 0.1


def test_below_welch_bound_raises():
    with pytest.raises(ValueError, match=r"max_coherence=0.1 is not reachable.*Welch bound"):
        make_linear_representation_bench(10, 200, 10, max_coherence=0.1, random_state=0)


def test_not_reached_within_max_iter_raises():
    # Above the Welch bound (0.196) but far from what 2 descent steps reach.
    with pytest.raises(ValueError, match=r"after max_iter=2 steps.*Raise max_coherence"):
        make_linear_representation_bench(10, 200, 24, max_coherence=0.25, max_iter=2, random_state=0)


@pytest.mark.parametrize(
    "param, value",
    [
        ("n_samples", 0),
        ("n_dims", 0),
        ("sparsity", 1.0),
        ("sparsity", -0.1),
        ("max_coherence", 1.5),
        ("max_coherence", 0.0),
        ("c_min", -1.0),
        ("beta", 0.0),
        ("target_dims", 0),
        ("max_iter", -1),
        ("random_state", "seed"),
    ],
)
def test_invalid_parameters(param, value):
    with pytest.raises(ValueError, match=f"'{param}' parameter"):
        make_linear_representation_bench(**{"n_samples": 10, "n_features": 5, "n_dims": 4, param: value})


def test_unreachable_without_welch_bound_when_features_fit():
    with pytest.raises(ValueError, match="after max_iter=0 steps") as info:
        make_linear_representation_bench(5, 30, 40, max_coherence=1e-30, max_iter=0, random_state=0)
    assert "Welch" not in str(info.value)
