"""skdict._validation.check_atoms: the one check of user-given directions (dict_init, LISTA's dictionary, anchors)."""

import numpy as np
import pytest

from skdict._validation import check_atoms


def test_rows_come_back_unit_in_the_dtype_of_like_at_any_scale():
    atoms = np.array([[3.0, 4.0], [1e-200, 0.0], [-1e200, 1e200]])
    out = check_atoms(atoms, 3, 2, like=np.empty((0, 2), dtype=np.float64), name="dict_init")
    np.testing.assert_allclose(out, [[0.6, 0.8], [1.0, 0.0], [-(0.5**0.5), 0.5**0.5]])
    out32 = check_atoms(atoms[:1], None, 2, like=np.empty((0, 2), dtype=np.float32), name="anchors")
    assert out32.dtype == np.float32


@pytest.mark.parametrize(
    "atoms, n_atoms, message",
    [
        (np.ones((2, 3)), None, r"anchors must have shape \(n_anchors, 2\) with atoms as rows, got shape \(2, 3\)"),
        (np.ones((2, 2)), 3, r"anchors must have shape \(n_anchors, n_features\) = \(3, 2\)"),
        (np.array([[1.0, np.nan]]), None, "anchors contains NaN or infinity"),
        (np.array([[1.0, 0.0], [0.0, 0.0]]), None, "all-zero atoms"),
    ],
)
def test_bad_atoms_are_named_in_the_error(atoms, n_atoms, message):
    with pytest.raises(ValueError, match=message):
        check_atoms(atoms, n_atoms, 2, like=np.empty((0, 2)), name="anchors", row_name="n_anchors")
