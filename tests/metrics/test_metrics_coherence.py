import itertools

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st

import skdict.metrics._coherence as coherence_module
import skdict.metrics._dictionary as dictionary_module
from skdict.metrics import babel, mutual_coherence


def _abs_gram(D):
    U = D / np.linalg.norm(D, axis=1, keepdims=True)
    return np.abs(U @ U.T)


def _brute_force_babel(G, atoms, r):
    """max over i in atoms of max over r-subsets of the other atoms of the summed |cos| (all subsets enumerated)."""
    best = 0.0
    for i in atoms:
        others = [j for j in atoms if j != i]
        for subset in itertools.combinations(others, min(r, len(others))):
            best = max(best, sum(G[i, j] for j in subset))
    return best


@pytest.mark.parametrize("r", range(1, 7))
def test_babel_equals_brute_force(r):
    D = np.random.RandomState(r).standard_normal((7, 4))
    assert babel(D, r) == pytest.approx(_brute_force_babel(_abs_gram(D), range(7), r), rel=1e-12)


def test_r_one_is_mutual_coherence_and_none_is_the_largest_row_sum():
    D = np.random.RandomState(0).standard_normal((9, 5))
    G = _abs_gram(D)
    np.fill_diagonal(G, 0)
    assert babel(D, 1) == pytest.approx(mutual_coherence(D), rel=1e-12)
    assert babel(D, None) == pytest.approx(G.sum(axis=1).max(), rel=1e-12)


def test_orthonormal_dictionary_has_zero_babel():
    Q = np.linalg.qr(np.random.RandomState(1).standard_normal((6, 6)))[0]
    assert babel(Q, 5) == pytest.approx(0.0, abs=1e-12)


@settings(deadline=None, max_examples=25)
@given(st.integers(0, 2**31 - 1), st.integers(3, 8))
def test_babel_laws(seed, n_atoms):
    rng = np.random.RandomState(seed)
    D = rng.standard_normal((n_atoms, 4))
    values = [babel(D, r) for r in range(1, n_atoms)]
    mu = mutual_coherence(D)
    # Nondecreasing, each step adds at most mu, and bounded by r * mu.
    assert all(b - a >= -1e-12 for a, b in zip(values, values[1:]))
    assert all(b - a <= mu + 1e-12 for a, b in zip(values, values[1:]))
    assert all(v <= r * mu + 1e-12 for r, v in zip(range(1, n_atoms), values))
    # Blind to the scale and sign of atoms.
    scaled = D * rng.choice([-1, 1], (n_atoms, 1)) * rng.uniform(0.01, 100, (n_atoms, 1))
    assert babel(scaled, n_atoms - 1) == pytest.approx(values[-1], rel=1e-10)


def test_subset_babel_equals_brute_force_per_sample():
    rng = np.random.RandomState(2)
    D = rng.standard_normal((8, 5))
    codes = rng.exponential(size=(25, 8)) * (rng.random_sample((25, 8)) < 0.4)
    codes[0] = 0.0  # empty support
    codes[1, :] = 0.0
    codes[1, 3] = 1.0  # a single atom
    G = _abs_gram(D)
    for r in (1, 2, 3, None):
        per_sample = []
        for row in codes:
            atoms = np.flatnonzero(row)
            size = len(atoms) - 1 if r is None else r
            per_sample.append(_brute_force_babel(G, atoms, size) if len(atoms) > 1 else 0.0)
        assert babel(D, r, codes=codes) == pytest.approx(max(per_sample), rel=1e-12)
        assert babel(D, r, codes=codes, aggregate="mean") == pytest.approx(np.mean(per_sample), rel=1e-12)


def test_subsets_never_exceed_the_full_dictionary_and_all_active_matches_it():
    rng = np.random.RandomState(3)
    D = rng.standard_normal((10, 6))
    codes = rng.random_sample((30, 10)) < 0.3
    for r in (1, 3):
        assert babel(D, r, codes=codes) <= babel(D, r) + 1e-12
    assert babel(D, 4, codes=np.ones((2, 10))) == pytest.approx(babel(D, 4), rel=1e-12)


def test_sparse_codes_and_blocking_agree(monkeypatch):
    rng = np.random.RandomState(4)
    D = rng.standard_normal((12, 5))
    codes = rng.exponential(size=(40, 12)) * (rng.random_sample((40, 12)) < 0.3)
    codes[[0, 5, 6, 39]] = 0.0  # empty rows, first and last included
    dense_max = babel(D, 2, codes=codes)
    dense_mean = babel(D, None, codes=codes, aggregate="mean")
    full = babel(D, 3)
    sparse = scipy.sparse.csr_matrix(codes)
    sparse.data[:3] = 0.0  # explicitly stored zeros are not active
    assert babel(D, 2, codes=sparse) == pytest.approx(babel(D, 2, codes=sparse.toarray()), rel=1e-12)
    monkeypatch.setattr(coherence_module, "_BLOCK_ELEMENTS", 50)
    monkeypatch.setattr(dictionary_module, "_BLOCK_ELEMENTS", 30)
    assert babel(D, 2, codes=codes) == pytest.approx(dense_max, rel=1e-12)
    assert babel(D, None, codes=codes, aggregate="mean") == pytest.approx(dense_mean, rel=1e-12)
    assert babel(D, 3) == pytest.approx(full, rel=1e-12)


def test_errors():
    D = np.eye(4)
    with pytest.raises(ValueError, match=r"r must be an int in \[1, n_atoms - 1 = 3\]"):
        babel(D, 4)
    with pytest.raises(ValueError, match="r must be an int >= 1"):
        babel(D, 0, codes=np.eye(4))
    with pytest.raises(ValueError, match="r must be"):
        babel(D, 1.5)
    with pytest.raises(ValueError, match="aggregate must be one of"):
        babel(D, 1, codes=np.eye(4), aggregate="median")
    with pytest.raises(ValueError, match="one column per atom"):
        babel(D, 1, codes=np.eye(3))
    with pytest.raises(ValueError, match="at least 2 row"):
        babel(np.ones((1, 3)), 1)


@pytest.mark.gpu
def test_cupy_matches_numpy():
    import cupy
    import cupyx.scipy.sparse

    rng = np.random.RandomState(5)
    D = rng.standard_normal((10, 6))
    codes = rng.exponential(size=(30, 10)) * (rng.random_sample((30, 10)) < 0.4)
    assert babel(cupy.asarray(D), 3) == pytest.approx(babel(D, 3), rel=1e-12)
    assert babel(cupy.asarray(D), 2, codes=cupy.asarray(codes)) == pytest.approx(babel(D, 2, codes=codes), rel=1e-12)
    sparse = cupyx.scipy.sparse.csr_matrix(cupy.asarray(codes))
    assert babel(cupy.asarray(D), None, codes=sparse, aggregate="mean") == pytest.approx(
        babel(D, None, codes=codes, aggregate="mean"), rel=1e-12
    )
