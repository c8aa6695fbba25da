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


# --- the one rule set for array arguments other than X (check_array_argument, check_codes, check_target) ---

from skdict._validation import check_array_argument, check_codes, check_target, is_matrix_target  # noqa: E402


def test_complex_arguments_raise_instead_of_dropping_the_imaginary_part():
    like = np.empty((0, 2))
    with pytest.raises(ValueError, match=r"dict_init is complex.*dict_init\.real"):
        check_atoms(np.ones((3, 2)) + 1j, 3, 2, like=like, name="dict_init")
    with pytest.raises(ValueError, match=r"X \(the codes\) is complex"):
        check_codes(np.ones((4, 3), dtype=complex), 3, like=like)
    with pytest.raises(ValueError, match="Y is complex"):
        check_target(np.ones((5, 2), dtype=np.complex64), np.ones((5, 2)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_codes_raise(bad):
    codes = np.zeros((4, 3))
    codes[2, 1] = bad
    with pytest.raises(ValueError, match=r"X \(the codes\) contains NaN or infinity"):
        check_codes(codes, 3, like=np.empty((3, 5)))


def test_codes_shape_error_names_both_shapes():
    with pytest.raises(ValueError, match=r"shape \(n_samples, n_components=3\), got shape \(4, 2\)"):
        check_codes(np.zeros((4, 2)), 3, like=np.empty((3, 5)))
    with pytest.raises(ValueError, match=r"must be a 2-D array of shape \(n_samples, n_components=3\), got 1-D"):
        check_codes(np.zeros(3), 3, like=np.empty((3, 5)))


def test_codes_take_the_dtype_of_like_and_other_dtypes_become_float64():
    out = check_codes([[1, 0, 2]], 3, like=np.empty((3, 5), dtype=np.float32))
    assert out.dtype == np.float32 and out.flags.c_contiguous
    assert check_array_argument(np.ones((2, 2), dtype=np.int8), "A").dtype == np.float64
    assert check_array_argument(np.ones((2, 2), dtype=np.float16), "A").dtype == np.float64
    assert check_array_argument(np.ones((2, 2), dtype=np.float32), "A").dtype == np.float32


def test_array_argument_rejects_sparse_strings_and_wrong_ndim():
    import scipy.sparse

    with pytest.raises(TypeError, match=r"init must be a dense array.*toarray"):
        check_array_argument(scipy.sparse.eye(3, format="csr"), "init")
    with pytest.raises(ValueError, match="init must hold real numbers"):
        check_array_argument(np.array([["a", "b"]]), "init")
    with pytest.raises(ValueError, match=r"init must be a 2-D array, got 3-D with shape \(1, 2, 2\)"):
        check_array_argument(np.ones((1, 2, 2)), "init")


def test_a_3d_target_is_an_error_not_ignored():
    Y = np.ones((200, 3, 4))
    with pytest.raises(ValueError, match=r"Y must be a 2-D transcoder target of shape \(n_samples, n_targets\)"):
        is_matrix_target(Y)
    with pytest.raises(ValueError, match=r"Y must be a 2-D array of shape \(n_samples=200, n_targets\), got 3-D"):
        check_target(Y, np.ones((200, 5)))
    assert is_matrix_target(np.ones((200, 2))) and not is_matrix_target(np.ones(200)) and not is_matrix_target(None)


def test_target_rows_must_match_x_and_take_its_dtype():
    with pytest.raises(ValueError, match=r"Y must have shape \(n_samples=5, n_targets\), got shape \(4, 2\)"):
        check_target(np.ones((4, 2)), np.ones((5, 3)))
    assert check_target(np.ones((5, 2)), np.ones((5, 3), dtype=np.float32)).dtype == np.float32


class _ForeignArray:
    """What a torch or JAX array on the CPU offers: the DLPack protocol, and no NumPy type."""

    def __init__(self, array):
        self._array = array
        self.shape, self.ndim, self.dtype = array.shape, array.ndim, array.dtype

    def __dlpack__(self, **kwargs):
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()


def test_dlpack_arrays_are_taken_zero_copy_by_fit_partial_fit_and_transform():
    from skdict import TopKSAE

    X = np.random.default_rng(0).normal(size=(120, 6)).astype(np.float32)
    Y = X[:, :4] * 2
    params = dict(n_components=12, k=3, max_iter=2, random_state=0)
    plain = TopKSAE(**params).fit(X)
    foreign = TopKSAE(**params).fit(_ForeignArray(X))
    np.testing.assert_array_equal(foreign.components_, plain.components_)
    codes = foreign.transform(_ForeignArray(X))
    assert isinstance(codes, np.ndarray)
    np.testing.assert_array_equal(codes, plain.transform(X))
    np.testing.assert_array_equal(
        TopKSAE(**params).partial_fit(_ForeignArray(X)).components_, TopKSAE(**params).partial_fit(X).components_
    )
    transcoder = TopKSAE(**params).fit(_ForeignArray(X), _ForeignArray(Y))
    assert transcoder.is_transcoder_ and transcoder.n_targets_ == 4
    np.testing.assert_array_equal(transcoder.components_, TopKSAE(**params).fit(X, Y).components_)


def test_dlpack_input_is_not_copied():
    from skdict._validation import check_input
    from sklearn.base import BaseEstimator

    X = np.random.default_rng(0).normal(size=(10, 3))
    assert np.shares_memory(check_input(BaseEstimator(), _ForeignArray(X), reset=True), X)
