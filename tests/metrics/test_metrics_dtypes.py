"""Every metric reads its inputs in at least float32: float16 input scores as the same values in float64,
and scale-free metrics give the same answer at any finite scale (no overflow of squares, no underflow)."""

import numpy as np
from sklearn.preprocessing import FunctionTransformer
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skdict import metrics

FLOAT16 = st.floats(-6e4, 6e4, width=16, allow_nan=False, allow_infinity=False)
PARENT_OF = np.array([-1, 0, 0])


def _outcome(metric, *args):
    """The metric's value, or the type of the error it raised."""
    try:
        value = metric(*args)
    except ValueError as error:
        return type(error)
    if isinstance(value, tuple):  # match_features / match_codes / support_scores
        return tuple(np.asarray(part, dtype=np.float64).tolist() for part in value)
    return value


# Every public metric with the arrays it takes: name -> (function, [shape of each array argument]).
METRICS = {
    "explained_variance": (metrics.explained_variance, [(6, 3), (6, 3)]),
    "fvu": (metrics.fvu, [(6, 3), (6, 3)]),
    "l0": (metrics.l0, [(6, 3)]),
    "dead_fraction": (metrics.dead_fraction, [(6, 3)]),
    "mcc": (metrics.mcc, [(6, 3), (6, 3)]),
    "match_codes": (metrics.match_codes, [(6, 3), (6, 3)]),
    "support_scores": (metrics.support_scores, [(6, 3), (6, 3)]),
    "gt_recovery": (metrics.gt_recovery, [(3, 4), (3, 4)]),
    "mean_max_cosine": (metrics.mean_max_cosine, [(3, 4), (3, 4)]),
    "matched_cosine": (metrics.matched_cosine, [(3, 4), (3, 4)]),
    "match_features": (metrics.match_features, [(3, 4), (3, 4)]),
    "mutual_coherence": (metrics.mutual_coherence, [(3, 4)]),
    "babel": (lambda D: metrics.babel(D, 2), [(3, 4)]),
    "babel_codes": (lambda D, Z: metrics.babel(D, 2, codes=Z), [(3, 4), (6, 3)]),
    "feature_matrix_pcc": (metrics.feature_matrix_pcc, [(4, 4), (4, 4)]),
    "absorption_score": (
        lambda Z, Zh, F, D: metrics.absorption_score(np.abs(Z), Zh, F, D, PARENT_OF), [(6, 3), (6, 3), (3, 4), (3, 4)]
    ),
    # codes of the identity transform: the nonzero pattern of X itself, block by block through the data sources
    "firing_frequency": (lambda X: tuple(metrics.firing_frequency(FunctionTransformer(), X).tolist()), [(6, 3)]),
}


def test_every_public_metric_is_covered():
    scorers = {"get_scorer", "make_gt_scorer", "make_feature_matrix_scorer", "pcc"}
    assert set(metrics.__all__) - scorers <= set(METRICS)


@pytest.mark.parametrize("name", sorted(METRICS))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_float16_input_scores_like_the_same_values_in_float64(name, data):
    metric, shapes = METRICS[name]
    args = [data.draw(arrays(np.float16, shape, elements=FLOAT16)) for shape in shapes]
    assert _outcome(metric, *args) == _outcome(metric, *[a.astype(np.float64) for a in args])


def test_float16_values_from_the_issue():
    assert metrics.explained_variance(np.float16([[256], [0]]), np.float16([[0], [0]])) == -1.0
    assert metrics.mcc(np.float16([[0], [1], [2]]), np.float16([[0], [300], [600]])) == pytest.approx(1.0)


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 5))
    return X, X + 0.2 * rng.standard_normal(X.shape)


@pytest.mark.parametrize(
    "scale, dtype, rel",  # subnormal data (1e-40 in float32, 1e-310 in float64) carry fewer digits
    [(1e30, np.float32, 1e-5), (1e-40, np.float32, 1e-2), (1e300, np.float64, 1e-12), (1e-310, np.float64, 1e-6)],
)
def test_explained_variance_is_right_at_any_finite_scale(pair, scale, dtype, rel):
    X, X_hat = pair
    expected = metrics.explained_variance(X, X_hat)
    got = metrics.explained_variance((X * scale).astype(dtype), (X_hat * scale).astype(dtype))
    assert got == pytest.approx(expected, rel=rel)


@pytest.mark.parametrize("scale, dtype", [(1e30, np.float32), (1e300, np.float64), (1e-310, np.float64)])
def test_correlations_are_right_at_any_finite_scale(pair, scale, dtype):
    X, X_hat = pair
    scaled = (X * scale).astype(dtype), (X_hat * scale).astype(dtype)
    assert metrics.mcc(*scaled) == pytest.approx(metrics.mcc(X, X_hat), rel=1e-5)
    phi = X.T @ X
    assert metrics.feature_matrix_pcc(phi, (phi * scale).astype(dtype)) == pytest.approx(1.0, rel=1e-6)


def test_complex_input_is_an_error_not_a_dropped_imaginary_part(pair):
    X, X_hat = pair
    with pytest.raises(ValueError, match="X_hat is complex"):
        metrics.explained_variance(X, X_hat + 1j)


def test_explained_variance_beyond_float64_is_minus_inf_and_tiny_variance_is_not_identical_rows(pair):
    """Data at 1e-300 reconstructed by a constant 0.13: EV is about -1e598, correctly rounded to -inf (not an
    error claiming the rows are identical); identical rows are still an error."""
    X, _ = pair
    assert metrics.explained_variance(X * 1e-300, np.full(X.shape, 0.13)) == -np.inf
    assert metrics.explained_variance(X * 1e-300, X * 1e-300 + 1e-302) == pytest.approx(
        metrics.explained_variance(X, X + 1e-2), rel=1e-12
    )
    with pytest.raises(ValueError, match="all its rows are identical"):
        metrics.explained_variance(np.ones((3, 2)) * 1e-310, np.zeros((3, 2)))
