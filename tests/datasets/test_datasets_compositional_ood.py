import math

import numpy as np
import pytest
from sklearn.decomposition import sparse_encode
from sklearn.utils import Bunch

from skdict.datasets import make_compositional_ood
from skdict.datasets._compositional_ood import measurement_dims
from skdict.metrics import mcc


@pytest.fixture(scope="module")
def data():
    return make_compositional_ood(n_latents=20, k=3, n_samples=3000, n_ood_samples=1000, random_state=0)


def _supports(codes):
    return [set(np.flatnonzero(row)) for row in codes]


@pytest.mark.parametrize(
    "n, k, m",
    [
        (16, 3, math.ceil(6 * math.log(16 / 3))),  # 11
        (1000, 10, math.ceil(20 * math.log(100))),  # 93
        (5, 3, 4),  # 2k ln(n/k) = 3.06 < k + 1
        (7, 4, 5),  # 8 ln(7/4) = 4.48 -> 5 = k + 1
    ],
)
def test_measurement_dims_formula(n, k, m):
    assert measurement_dims(n, k) == m == max(k + 1, math.ceil(2 * k * math.log(n / k)))


def test_fields_shapes_and_sensing_matrix(data):
    assert isinstance(data, Bunch)
    m = measurement_dims(20, 3)
    assert data.X_train.shape == (3000, m) and data.codes_train.shape == (3000, 20)
    assert data.X_ood.shape == (1000, m) and data.codes_ood.shape == (1000, 20)
    assert data.A.shape == (m, 20)
    np.testing.assert_allclose(np.linalg.norm(data.A, axis=0), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(data.features, data.A.T)
    np.testing.assert_allclose(data.X_train, data.codes_train @ data.A.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(data.X_ood, data.codes_ood @ data.A.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(data.low_latents, np.arange(1, 10))
    np.testing.assert_array_equal(data.high_latents, np.arange(10, 20))


def test_exactly_k_nonnegative_latents_per_sample(data):
    for codes in (data.codes_train, data.codes_ood):
        assert np.all(np.count_nonzero(codes, axis=1) == 3)
        assert codes[codes != 0].min() >= 0.1
    values = data.codes_train[data.codes_train != 0]
    assert values.mean() == pytest.approx(1.1, rel=0.05)  # c_min + beta


def test_latent_zero_only_with_low_half_in_training(data):
    low, high = set(data.low_latents.tolist()), set(data.high_latents.tolist())
    train = _supports(data.codes_train)
    with_zero = [s - {0} for s in train if 0 in s]
    assert all(others <= low for others in with_zero)
    # Every low latent meets latent 0 in training; no high latent ever does.
    assert set().union(*with_zero) == low
    # Latent 0 keeps the frequency k/n of uniform supports: 3000 draws, sd ~ 0.0065.
    assert len(with_zero) / 3000 == pytest.approx(3 / 20, abs=0.03)
    # The other latents combine freely: some training sample holds two high latents.
    assert any(len(s & high) >= 2 for s in train)


def test_ood_split_pairs_latent_zero_with_high_half(data):
    high = set(data.high_latents.tolist())
    ood = _supports(data.codes_ood)
    assert all(0 in s and s - {0} <= high for s in ood)
    # Uniform choice among the high half: each high latent in (k - 1)/|H| = 0.2 of samples (sd ~ 0.013).
    np.testing.assert_allclose((data.codes_ood[:, data.high_latents] != 0).mean(axis=0), 0.2, atol=0.05)
    assert not np.any(data.codes_ood[:, data.low_latents])


def test_omit_mode_never_shows_latent_zero_in_training():
    data = make_compositional_ood(9, 3, 500, latent0_in_train="omit", random_state=1)
    assert not np.any(data.codes_train[:, 0])
    assert np.all(data.codes_ood[:, 0] > 0)


def test_smallest_halves_and_explicit_sizes():
    data = make_compositional_ood(5, 3, 40, n_ood_samples=7, n_dims=12, c_min=2.0, beta=0.0, random_state=0)
    assert data.X_train.shape == (40, 12) and data.X_ood.shape == (7, 12)
    np.testing.assert_array_equal(data.low_latents, [1, 2])
    np.testing.assert_array_equal(data.high_latents, [3, 4])
    np.testing.assert_array_equal(data.codes_ood[:, [0, 3, 4]], 2.0)  # k - 1 = |H|: the whole high half


def test_same_seed_same_arrays():
    first, second = (make_compositional_ood(12, 2, 100, random_state=3) for _ in range(2))
    other = make_compositional_ood(12, 2, 100, random_state=4)
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    assert not np.array_equal(first.A, other.A)


def test_sparse_coding_with_the_true_matrix_generalises_out_of_distribution():
    # The oracle of the OOD table: lasso codes over the true A (scikit-learn's solver) are
    # near-exact on the unseen combinations, since nothing is amortised.
    data = make_compositional_ood(32, 3, 300, n_ood_samples=300, random_state=2)
    codes = sparse_encode(data.X_ood, data.features, algorithm="lasso_lars", alpha=1e-4, positive=True)
    assert mcc(data.codes_ood, codes) > 0.99


def test_too_few_latents_for_k():
    with pytest.raises(ValueError, match=r"n_latents=6 is too small for k=4.*at least 2k - 1 = 7"):
        make_compositional_ood(6, 4, 10)


def test_all_zero_magnitudes_rejected():
    with pytest.raises(ValueError, match="c_min=0 and beta=0"):
        make_compositional_ood(8, 2, 10, c_min=0.0, beta=0.0)


@pytest.mark.parametrize(
    "param, value",
    [
        ("n_latents", 2),
        ("k", 1),
        ("n_samples", 0),
        ("n_ood_samples", 0),
        ("n_dims", 0),
        ("latent0_in_train", "high_half"),
        ("c_min", -1.0),
        ("beta", -0.5),
        ("random_state", "seed"),
    ],
)
def test_invalid_parameters(param, value):
    with pytest.raises(ValueError, match=f"'{param}' parameter"):
        make_compositional_ood(**{"n_latents": 8, "k": 2, "n_samples": 10, param: value})
