"""SparseCoder's behaviour: scikit-learn's SparseCoder as an oracle, dtypes, stateless use, pipelines, errors."""

import warnings

import numpy as np
import pytest
from sklearn.decomposition import SparseCoder as SklearnSparseCoder
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from skdict import SparseCoder
from skdict.ops.fista import lasso_objective


def problem(n_samples=30, n_features=8, n_components=12, seed=0):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n_components, n_features))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    return rng.standard_normal((n_samples, n_features)), D


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (dict(transform_algorithm="omp", transform_n_nonzero_coefs=3), dict(transform_algorithm="omp", transform_n_nonzero_coefs=3)),
        (dict(transform_algorithm="threshold", transform_alpha=0.4), dict(transform_algorithm="threshold", transform_alpha=0.4)),
        (
            dict(transform_algorithm="threshold", transform_alpha=0.4, positive_code=True),
            dict(transform_algorithm="threshold", transform_alpha=0.4, positive_code=True),
        ),
    ],
)
def test_codes_equal_sklearn_sparse_coder(ours, theirs):
    X, D = problem()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = SklearnSparseCoder(D, **theirs).transform(X)
    np.testing.assert_allclose(SparseCoder(D, **ours).fit_transform(X), expected, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("positive", [False, True])
def test_fista_objective_equals_sklearn_lasso_cd_coder(positive):
    X, D = problem(seed=1)
    alpha = 0.2
    ours = SparseCoder(D, transform_alpha=alpha, positive_code=positive).transform(X)
    theirs = SklearnSparseCoder(
        D, transform_algorithm="lasso_cd", transform_alpha=alpha, positive_code=positive, transform_max_iter=10_000
    ).transform(X)
    reference = lasso_objective(X, D, theirs, alpha).sum()
    assert abs(lasso_objective(X, D, ours, alpha).sum() - reference) <= 1e-3 * reference


def test_float32_data_gives_float32_codes_even_with_a_float64_dictionary():
    X, D = problem(seed=2)
    coder = SparseCoder(D).fit(X.astype(np.float32))
    codes = coder.transform(X.astype(np.float32))
    assert codes.dtype == np.float32
    np.testing.assert_allclose(codes, SparseCoder(D).fit_transform(X), atol=1e-4)
    assert coder.inverse_transform(codes).dtype == np.float32


def test_stateless_transform_equals_fitted_transform():
    X, D = problem(seed=3)
    unfitted = SparseCoder(D, transform_algorithm="mp", transform_n_nonzero_coefs=2)
    fitted = SparseCoder(D, transform_algorithm="mp", transform_n_nonzero_coefs=2).fit(X)
    np.testing.assert_array_equal(unfitted.transform(X), fitted.transform(X))
    assert not hasattr(unfitted, "n_features_in_") and fitted.n_features_in_ == 8
    np.testing.assert_array_equal(fitted.components_, D)


def test_inverse_transform_and_feature_names():
    X, D = problem(seed=4)
    coder = SparseCoder(D, transform_algorithm="omp", transform_n_nonzero_coefs=8).fit(X)
    codes = coder.transform(X)
    np.testing.assert_allclose(coder.inverse_transform(codes), codes @ D)
    np.testing.assert_allclose(coder.inverse_transform(codes), X, atol=1e-10)  # 8 atoms span R^8
    assert list(coder.get_feature_names_out()) == [f"sparsecoder{j}" for j in range(12)]
    with pytest.raises(ValueError, match="n_components=12"):
        coder.inverse_transform(codes[:, :5])


def test_n_features_mismatch_errors():
    X, D = problem(seed=5)
    with pytest.raises(ValueError, match="X has 7 features .* but the dictionary has 8"):
        SparseCoder(D).fit(X[:, :7])
    with pytest.raises(ValueError, match="X has 7 features .* but the dictionary has 8"):
        SparseCoder(D).transform(X[:, :7])
    with pytest.raises(ValueError, match="expecting 8 features"):
        SparseCoder(D).fit(X).transform(X[:, :7])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"transform_algorithm": "lars"}, "transform_algorithm"),
        ({"transform_alpha": -1.0}, "transform_alpha"),
        ({"transform_n_nonzero_coefs": 0}, "transform_n_nonzero_coefs"),
        ({"transform_algorithm": "omp", "transform_n_nonzero_coefs": 13}, "n_components=12"),
        ({"transform_algorithm": "omp", "positive_code": True}, "positive=True is not available"),
    ],
)
def test_bad_parameters(params, message):
    X, D = problem(seed=6)
    with pytest.raises(ValueError, match=message):
        SparseCoder(D, **params).fit_transform(X)


def test_pipeline_and_grid_search():
    rng = np.random.default_rng(7)
    D = np.eye(6)[:4] + 0.1 * rng.standard_normal((4, 6))
    y = rng.integers(0, 2, 120)
    X = 0.3 * rng.standard_normal((120, 6))
    X[:, 0] += 2.0 * y  # the label lives on the first atom
    pipeline = make_pipeline(SparseCoder(D, transform_algorithm="topk"), LogisticRegression())
    search = GridSearchCV(pipeline, {"sparsecoder__transform_n_nonzero_coefs": [1, 3]}, cv=3).fit(X, y)
    assert search.best_score_ > 0.9


def test_set_params_dictionary_takes_effect_after_fit():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(20, 6))
    coder = SparseCoder(rng.normal(size=(5, 6)), transform_algorithm="threshold", transform_alpha=0.1).fit(X)
    bigger = rng.normal(size=(9, 6))
    coder.set_params(dictionary=bigger)
    codes = coder.transform(X)
    assert codes.shape == (20, 9)
    expected = np.sign(X @ bigger.T) * np.maximum(np.abs(X @ bigger.T) - 0.1, 0)
    np.testing.assert_allclose(codes, expected, atol=1e-12)
