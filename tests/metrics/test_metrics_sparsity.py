import numpy as np
import pytest
import scipy.sparse

from skdict.metrics import dead_fraction, l0

CODES = np.array(
    [
        [0.0, 1.5, 0.0, 0.0, 2.0],
        [0.0, 0.0, 0.0, 0.0, 1.0],
        [3.0, 0.5, 0.0, 0.0, 0.0],
    ]
)


def test_l0_dense():
    assert l0(CODES) == pytest.approx(5 / 3)
    assert isinstance(l0(CODES), float)


def test_dead_fraction_dense():
    assert dead_fraction(CODES) == pytest.approx(2 / 5)
    assert dead_fraction(CODES[1:2]) == pytest.approx(4 / 5)
    assert dead_fraction(np.zeros((4, 3))) == 1.0
    assert dead_fraction(np.ones((4, 3))) == 0.0


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "lil"])
def test_sparse_matches_dense(fmt):
    sparse = scipy.sparse.random(40, 30, density=0.1, format=fmt, random_state=0)
    dense = sparse.toarray()
    assert l0(sparse) == pytest.approx(l0(dense))
    assert dead_fraction(sparse) == pytest.approx(dead_fraction(dense))
    assert l0(scipy.sparse.csr_array(dense)) == pytest.approx(l0(dense))


def test_sparse_explicit_zeros_do_not_count():
    m = scipy.sparse.csr_matrix(CODES)
    m.data[m.data == 1.0] = 0.0  # stored, but zero: column 4 keeps other entries
    m.data[m.data == 3.0] = 0.0  # column 0 becomes dead
    dense = m.toarray()
    assert l0(m) == pytest.approx(l0(dense)) == pytest.approx(3 / 3)
    assert dead_fraction(m) == pytest.approx(3 / 5)
    assert m.nnz == 5  # the caller's matrix is untouched


def test_bool_and_int_codes():
    assert l0(CODES != 0) == pytest.approx(5 / 3)
    assert dead_fraction((CODES != 0).astype(int)) == pytest.approx(2 / 5)


def test_validation():
    with pytest.raises(ValueError, match="codes must be a 2-D array"):
        l0(np.ones(3))
    with pytest.raises(ValueError, match="codes needs at least 1 row"):
        l0(np.ones((0, 3)))
    with pytest.raises(ValueError, match="codes contains NaN"):
        dead_fraction(np.array([[np.nan, 1.0]]))
