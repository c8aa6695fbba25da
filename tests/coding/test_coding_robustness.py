"""sparse_encode / SparseCoder: right codes at any finite scale, ConvergenceWarning when max_iter cuts the lasso
short, and the shared validation of the dictionary, init and codes (complex, NaN/inf, shape)."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skdict import sparse_encode
from skdict.coding import SparseCoder

LASSO = ("fista", "ista")
ALL = ("fista", "ista", "mp", "omp", "topk", "threshold")


def problem(n_samples=25, n_features=16, n_components=24, seed=0):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n_components, n_features))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    return rng.standard_normal((n_samples, n_features)), D


def rescaled_oracle(X, D, algorithm, s, t, alpha=0.3, k=3):
    """Codes of (s X, t D) from the same problem at unit scale, by the scaling laws.

    Lasso, MP, OMP: z*(sX, tD, st alpha) = (s / t) z*(X, D, alpha). Top-k and threshold codes are
    correlations: c(sX, tD) = s t c(X, D), threshold s t alpha.
    """
    codes = sparse_encode(X, D, algorithm=algorithm, alpha=alpha, n_nonzero_coefs=k, tol=1e-10, max_iter=20000)
    return codes * (s / t if algorithm in LASSO + ("mp", "omp") else s * t)


@pytest.mark.parametrize("algorithm", ALL)
@pytest.mark.parametrize(
    "s, t, dtype",
    [(2.0**125, 1.0, np.float32), (1e37, 1.0, np.float32), (1.0, 1e200, np.float64), (1e-300, 1e3, np.float64)],
)
def test_codes_are_right_at_any_finite_scale(algorithm, s, t, dtype):
    X, D = problem()
    expected = rescaled_oracle(X, D, algorithm, s, t)
    Xs, Ds = (X * s).astype(dtype), (D * t).astype(dtype)
    codes = sparse_encode(Xs, Ds, algorithm=algorithm, alpha=0.3 * s * t, n_nonzero_coefs=3, tol=1e-10, max_iter=20000)
    assert codes.dtype == dtype and np.isfinite(codes).all()
    rtol = 1e-3 if dtype == np.float32 else 1e-7
    np.testing.assert_allclose(codes, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


def test_sparse_coder_transform_is_right_near_the_float32_limit():
    X, D = problem(seed=1)
    coder = SparseCoder(D.astype(np.float32), transform_alpha=0.3e37, transform_tol=1e-8, transform_max_iter=20000)
    codes = coder.fit_transform((X * 1e37).astype(np.float32))
    expected = rescaled_oracle(X, D, "fista", 1e37, 1.0)
    np.testing.assert_allclose(codes, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())


def test_codes_beyond_the_dtype_range_are_a_clear_error():
    X, D = problem(seed=2)
    with pytest.raises(ValueError, match="omp codes of this X and dictionary exceed the largest float32"):
        sparse_encode((X * 1e37).astype(np.float32), (D * 1e-5).astype(np.float32), algorithm="omp", n_nonzero_coefs=3)


def test_a_penalty_beyond_the_dtype_range_gives_zero_codes():
    """alpha = 1 on data and atoms at 1e-200: every correlation (1e-400) is below alpha: the lasso codes are 0."""
    X, D = problem(seed=3)
    for algorithm in ("fista", "threshold"):
        codes = sparse_encode(X * 1e-200, D * 1e-200, algorithm=algorithm, alpha=1.0)
        np.testing.assert_array_equal(codes, 0.0)


@pytest.mark.parametrize("algorithm", LASSO)
def test_max_iter_before_tol_warns_with_rows_gap_and_fix(algorithm):
    X, D = problem(seed=4)
    with pytest.warns(ConvergenceWarning, match=r"sparse_encode: \d+ of 25 rows stopped at max_iter=2 .*worst "
                                                 r"relative gap .*raise max_iter \(or tol\)"):
        sparse_encode(X, D, algorithm=algorithm, alpha=0.05, max_iter=2)
    with pytest.warns(ConvergenceWarning, match="SparseCoder: .* transform_max_iter=2 .*raise transform_max_iter"):
        SparseCoder(D, transform_algorithm=algorithm, transform_alpha=0.05, transform_max_iter=2).transform(X)


def test_a_many_atom_dictionary_warns_through_the_working_sets():
    X, D = problem(n_samples=10, n_features=32, n_components=256, seed=5)
    with pytest.warns(ConvergenceWarning, match="rows stopped at max_iter=3"):
        sparse_encode(X, D, alpha=0.01, max_iter=3)


def test_no_warning_when_converged_or_when_all_iterations_were_asked_for():
    X, D = problem(seed=6)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        sparse_encode(X, D, alpha=0.1)
        sparse_encode(X, D, alpha=0.1, max_iter=2, tol=0)


@pytest.mark.parametrize("argument", ["dictionary", "init"])
def test_complex_dictionary_or_init_raises(argument):
    X, D = problem(seed=7)
    kwargs = {"dictionary": D + 1j * D} if argument == "dictionary" else {"dictionary": D, "init": np.zeros((25, 24)) + 1j}
    with pytest.raises(ValueError, match=f"{argument} is complex"):
        sparse_encode(X, **kwargs)
    if argument == "dictionary":
        with pytest.raises(ValueError, match="dictionary is complex"):
            SparseCoder(D + 1j * D).fit(X)


@pytest.mark.parametrize(
    "codes, message",
    [
        (np.full((3, 24), np.nan), r"X \(the codes\) contains NaN or infinity"),
        (np.full((3, 24), np.inf), r"X \(the codes\) contains NaN or infinity"),
        (np.ones((3, 24)) + 1j, r"X \(the codes\) is complex"),
        (np.ones((3, 24, 1)), r"X \(the codes\) must be a 2-D array of shape \(n_samples, n_components=24\)"),
        (np.ones((3, 5)), r"shape \(n_samples, n_components=24\), got shape \(3, 5\)"),
    ],
)
def test_inverse_transform_validates_the_codes(codes, message):
    X, D = problem(seed=8)
    coder = SparseCoder(D).fit(X)
    with pytest.raises(ValueError, match=message):
        coder.inverse_transform(codes)


@pytest.mark.parametrize("algorithm", ["topk", "threshold", "mp", "fista"])
def test_correlations_whose_partial_sums_overflow_float32_are_right(algorithm):
    """x = (3e38, 3e38, -3e38), d = (1, 1, 1)/sqrt(3): d.x = 1.73e38 fits, but 1.73e38 + 1.73e38 does not."""
    X = np.array([[3e38, 3e38, -3e38]], dtype=np.float32)
    D = np.array([[1.0, 1.0, 1.0], [1.0, -1.0, 0.0]], dtype=np.float32) / np.float32([[3**0.5], [2**0.5]])
    codes = sparse_encode(X, D, algorithm=algorithm, alpha=1e30, n_nonzero_coefs=1)
    expected = rescaled_oracle(X.astype(np.float64) / 1e38, D.astype(np.float64), algorithm, 1e38, 1.0, alpha=1e-8, k=1)
    assert np.isfinite(codes).all()
    np.testing.assert_allclose(codes, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
