"""Unit-norm atoms: normalize_rows and remove_parallel_component."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from skdict.ops.atoms import normalize_rows, remove_parallel_component


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normalize_rows_unit_norms_and_zero_rows(dtype):
    rng = np.random.default_rng(0)
    D = rng.standard_normal((6, 5)).astype(dtype) * np.array([[1e-3], [1], [10], [1], [1e3], [1]], dtype)
    D[3] = 0.0
    original = D.copy()
    out = normalize_rows(D)
    assert out.dtype == dtype and out.shape == D.shape
    np.testing.assert_array_equal(D, original)  # input untouched without out=
    norms = np.linalg.norm(out.astype(np.float64), axis=1)
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(np.delete(norms, 3), 1.0, rtol=rtol)
    np.testing.assert_array_equal(out[3], 0.0)
    # same direction: out * ||d|| gives d back
    true_norms = np.linalg.norm(original.astype(np.float64), axis=1, keepdims=True)
    np.testing.assert_allclose(out * true_norms, original, rtol=rtol * 10, atol=0)


def test_normalize_rows_in_place():
    rng = np.random.default_rng(1)
    D = rng.standard_normal((4, 3)).astype(np.float32)
    D[2] = 0.0
    expected = normalize_rows(D.copy())
    result = normalize_rows(D, out=D)
    assert result is D
    np.testing.assert_array_equal(D, expected)


def test_normalize_rows_out_other_array():
    rng = np.random.default_rng(2)
    D = rng.standard_normal((4, 3))
    original = D.copy()
    buf = np.full_like(D, np.nan)
    result = normalize_rows(D, out=buf)
    assert result is buf
    np.testing.assert_array_equal(D, original)
    np.testing.assert_allclose(np.linalg.norm(buf, axis=1), 1.0, rtol=1e-14)


def test_normalize_rows_eps_leaves_small_rows_unscaled():
    D = np.array([[3.0, 4.0], [1e-6, 0.0]])
    out = normalize_rows(D, eps=1e-3)
    np.testing.assert_allclose(out[0], [0.6, 0.8], rtol=1e-15)
    np.testing.assert_array_equal(out[1], D[1])


@settings(max_examples=50, deadline=None)
@given(
    ints=hnp.arrays(np.int64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=8), elements=st.integers(-1000, 1000)),
    scale=st.sampled_from([1e-30, 1e-3, 1.0, 1e3, 1e30]),
)
def test_normalize_rows_property(ints, scale):
    D = ints * scale
    out = normalize_rows(D)
    zero = ~ints.any(axis=1)
    np.testing.assert_array_equal(out[zero], 0.0)
    np.testing.assert_allclose(np.linalg.norm(out[~zero], axis=1), 1.0, rtol=1e-13)
    # direction kept: positive multiple of the input row
    norms = np.linalg.norm(ints[~zero].astype(np.float64), axis=1, keepdims=True)
    np.testing.assert_allclose(out[~zero], ints[~zero] / norms, rtol=1e-13, atol=1e-15)


# ----------------------------------------------------------------------------- tangent projection


def unit_rows(shape, rng, dtype=np.float64):
    D = rng.standard_normal(shape)
    return (D / np.linalg.norm(D, axis=1, keepdims=True)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_remove_parallel_component_in_place_and_orthogonal(dtype):
    rng = np.random.default_rng(3)
    D = unit_rows((8, 5), rng, dtype)
    grad = rng.standard_normal((8, 5)).astype(dtype)
    original = grad.copy()
    result = remove_parallel_component(grad, D)
    assert result is grad and grad.dtype == dtype
    atol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(np.sum(grad.astype(np.float64) * D, axis=1), 0.0, atol=atol)
    # what was removed is exactly the component along d_i
    along = np.sum(original.astype(np.float64) * D, axis=1, keepdims=True) * D
    np.testing.assert_allclose(grad, original - along, rtol=atol, atol=atol)


def test_remove_parallel_component_keeps_tangent_gradients():
    D = np.array([[1.0, 0.0, 0.0], [0.0, 0.6, 0.8]])
    grad = np.array([[0.0, 2.0, -1.0], [5.0, 0.8, -0.6]])  # already orthogonal
    expected = grad.copy()
    remove_parallel_component(grad, D)
    np.testing.assert_allclose(grad, expected, atol=1e-15)
    grad = 3.0 * D.copy()  # purely parallel: everything goes
    remove_parallel_component(grad, D)
    np.testing.assert_allclose(grad, 0.0, atol=1e-15)


@settings(max_examples=50, deadline=None)
@given(
    n_atoms=st.integers(1, 10),
    n_dims=st.integers(1, 10),
    grad_scale=st.sampled_from([1e-6, 1.0, 1e6]),
    seed=st.integers(0, 2**32 - 1),
)
def test_remove_parallel_component_property(n_atoms, n_dims, grad_scale, seed):
    rng = np.random.default_rng(seed)
    D = unit_rows((n_atoms, n_dims), rng)
    grad = rng.standard_normal((n_atoms, n_dims)) * grad_scale
    size = np.linalg.norm(grad, axis=1)
    remove_parallel_component(grad, D)
    np.testing.assert_array_less(np.abs(np.sum(grad * D, axis=1)), 1e-13 * size + 1e-300)
    # a projection: applying it twice changes nothing more
    again = remove_parallel_component(grad.copy(), D)
    np.testing.assert_allclose(again, grad, rtol=1e-12, atol=1e-13 * size.max())


@pytest.mark.parametrize("dtype, big", [(np.float32, 1e30), (np.float64, 1e300), (np.float64, 1e-300)])
def test_normalize_rows_at_extreme_scales(dtype, big):
    # the squared norm of these rows overflows (or underflows) in the dtype
    D = (np.array([[3.0, 4.0], [-1.0, 0.0]]) * big).astype(dtype)
    with np.errstate(over="raise", under="ignore"):
        out = normalize_rows(D)
    np.testing.assert_allclose(out, np.array([[0.6, 0.8], [-1.0, 0.0]]), rtol=1e-6)
