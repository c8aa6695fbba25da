"""gram_matrix: A @ A.T in row blocks, never NumPy's syrk shortcut (numpy/numpy#19685)."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from skdict.ops.gram import GRAM_BLOCK_ROWS, gram_matrix


@settings(max_examples=60, deadline=None)
@given(
    A=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 23), st.integers(1, 7)),
        elements=st.floats(-1e3, 1e3, allow_nan=False, width=64),
    ),
    block_rows=st.integers(1, 30),
)
def test_gram_matrix_equals_rowwise_inner_products(A, block_rows):
    G = gram_matrix(A, block_rows=block_rows)
    oracle = np.einsum("ik,jk->ij", A, A)  # every entry its own dot product: no BLAS call
    assert G.shape == (A.shape[0],) * 2 and G.dtype == A.dtype
    np.testing.assert_array_equal(G, G.T)  # the lower triangle is the upper one mirrored, as syrk's
    np.testing.assert_allclose(G, oracle, rtol=1e-12, atol=1e-9 * max(1.0, float(np.abs(A).max()) ** 2))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gram_matrix_of_columns_through_a_transposed_view(dtype):
    Z = np.random.default_rng(0).standard_normal((50, 9)).astype(dtype)
    np.testing.assert_allclose(gram_matrix(Z.T, block_rows=4), Z.T.astype(np.float64) @ Z, rtol=1e-5)
    assert gram_matrix(Z.T, block_rows=4).dtype == dtype


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, None])
def test_gram_matrix_rejects_bad_block_rows(bad):
    with pytest.raises(ValueError, match="block_rows must be a positive integer"):
        gram_matrix(np.ones((3, 2)), block_rows=bad)


def test_gram_matrix_rejects_non_matrix():
    with pytest.raises(ValueError, match="A must be a 2-D array"):
        gram_matrix(np.ones(3))


@pytest.mark.slow
def test_gram_matrix_survives_the_shape_that_crashes_numpys_syrk():
    """16,000 x 768 float64 on 2 OpenBLAS threads: ``D @ D.T`` died of SIGSEGV here (NumPy 2.4.6,
    OpenBLAS 0.3.31; the width of seed 000's Table 1). Run in a child so a crash fails this test
    instead of killing the session."""
    assert 16_000 > GRAM_BLOCK_ROWS  # the blocked path is the one under test
    code = textwrap.dedent(
        """
        import numpy as np
        from skdict.ops.gram import gram_matrix
        D = np.random.default_rng(0).standard_normal((16_000, 768))
        G = gram_matrix(D)
        rows = np.array([0, 4095, 4096, 15_999])
        np.testing.assert_allclose(G[rows], D[rows] @ np.ascontiguousarray(D.T), rtol=1e-12, atol=1e-9)
        assert np.array_equal(G, G.T)
        print("ok")
        """
    )
    env = dict(os.environ, OPENBLAS_NUM_THREADS="2")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.strip() == "ok"
