"""Behaviour of the SAE family: training, streaming, transcoders, errors, persistence."""

import pickle

import numpy as np
import pytest
import scipy.sparse
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline

from skdict import BatchTopKSAE, JumpReLUSAE, MPSAE, ReLUSAE, TopKSAE, TrainingDivergedError
from skdict.ops import codes as codes_module
from skdict.sae._step import loss_and_grads
from skdict.sae._data import InMemoryData

#: These fits are deliberately short (a few epochs, tiny data): running out of max_iter, or ending
#: below the mean's score, is expected here, not a finding (tests/sae/test_convergence_warning.py
#: checks the warnings themselves).
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

ALL = [TopKSAE, BatchTopKSAE, ReLUSAE, JumpReLUSAE, MPSAE]


@pytest.fixture(scope="module")
def digits():
    return load_digits().data / 16.0, load_digits().target


def small(cls, **kwargs):
    defaults = {"n_components": 32, "max_iter": 3, "random_state": 0}
    if cls in (TopKSAE, BatchTopKSAE, MPSAE):
        defaults["k"] = 4
    defaults.update(kwargs)
    return cls(**defaults)


def gaussian(n=200, d=6, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(dtype)


# ----------------------------------------------------------------- scoring
@pytest.mark.parametrize("cls", ALL)
def test_score_is_explained_variance_with_per_feature_mean(cls):
    X = gaussian() + np.arange(6)  # a mean that differs per feature
    est = small(cls).fit(X)
    X_hat = est.predict(X)
    expected = 1 - np.sum((X - X_hat) ** 2) / (X.shape[0] * np.var(X, axis=0).sum())
    assert est.score(X) == pytest.approx(expected, rel=1e-10)
    np.testing.assert_allclose(X_hat, est.inverse_transform(est.transform(X)), rtol=1e-10, atol=1e-12)


def plain_codes(est, X):
    """The family's codes by their formulas, from a dense pre-activation matrix."""
    A = (X - est.decoder_bias_) @ est.encoder_.T + est.encoder_bias_
    if isinstance(est, TopKSAE):
        keep = np.argsort(A, axis=1)[:, -est.k_:]
        Z = np.zeros_like(A)
        np.put_along_axis(Z, keep, np.take_along_axis(A, keep, axis=1), axis=1)
        return np.maximum(Z, 0)
    threshold = {ReLUSAE: 0.0, JumpReLUSAE: getattr(est, "threshold_", None), BatchTopKSAE: getattr(est, "threshold_", None)}
    return np.where(A > threshold[type(est)], A, 0.0)


@pytest.mark.parametrize("cls", [TopKSAE, BatchTopKSAE, ReLUSAE, JumpReLUSAE])
@pytest.mark.parametrize("block", [None, 100])  # one block, and blocks of a few rows
def test_transform_equals_the_plain_formula(cls, block, monkeypatch):
    from skdict.sae import _base

    X = gaussian(n=150, d=6, seed=3)
    est = small(cls).fit(X)
    if block is not None:
        monkeypatch.setattr(_base, "_TRANSFORM_BLOCK", block)  # 100 // 32 latents = 3 rows per block
    codes = est.transform(X)
    np.testing.assert_allclose(codes, plain_codes(est, X), rtol=1e-12, atol=1e-12)
    assert np.count_nonzero(codes) > 0
    # float32 input to a float64 model: float32 codes, equal to float32 precision
    codes32 = est.transform(X.astype(np.float32))
    assert codes32.dtype == np.float32
    np.testing.assert_allclose(codes32, codes, rtol=1e-4, atol=1e-4 * np.abs(codes).max())


def test_score_of_a_model_that_predicts_the_mean_is_zero():
    X = gaussian() + 3.0
    est = small(TopKSAE).fit(X)
    est.decoder_bias_[...] = X.mean(axis=0)
    est.encoder_bias_[...] = -1e6  # no latent can fire: reconstruction = b_dec
    assert np.all(est.transform(X) == 0)
    assert est.score(X) == pytest.approx(0.0, abs=1e-12)


# ---------------------------------------------------------- training works
@pytest.mark.parametrize("cls", ALL)
def test_training_improves_explained_variance_and_records_history(cls, digits):
    X, _ = digits
    kwargs = {"k": 8} if cls in (TopKSAE, BatchTopKSAE, MPSAE) else {}
    est = cls(n_components=128, max_iter=10, learning_rate=3e-3, random_state=0, **kwargs)
    est.fit(X)
    history = est.history_
    assert set(history) == {"loss", "explained_variance", "l0", "dead_fraction"}
    assert all(len(v) == est.n_iter_ for v in history.values())
    assert history["loss"][-1] < history["loss"][0]
    assert est.score(X) > 0.6
    np.testing.assert_allclose(np.linalg.norm(est.components_, axis=1), 1.0, rtol=1e-6)


def test_topk_uses_exactly_k_latents_and_batchtopk_k_on_average(digits):
    X, _ = digits
    topk = TopKSAE(n_components=128, k=6, max_iter=5, random_state=0).fit(X)
    assert np.all(np.count_nonzero(topk.transform(X), axis=1) <= 6)
    assert np.mean(np.count_nonzero(topk.transform(X), axis=1)) > 5.5
    batch = BatchTopKSAE(n_components=128, k=6, max_iter=5, random_state=0).fit(X)
    assert isinstance(batch.threshold_, float)
    assert np.mean(np.count_nonzero(batch.transform(X), axis=1)) == pytest.approx(6, rel=0.1)


def test_jumprelu_thresholds_stay_nonnegative_and_alpha_buys_sparsity(digits):
    X, _ = digits
    l0 = []
    for alpha in (1e-3, 3e-2):
        est = JumpReLUSAE(n_components=128, alpha=alpha, learning_rate=3e-3, batch_size=64, max_iter=10, random_state=0)
        est.fit(X)
        assert np.all(est.threshold_ >= 0)
        l0.append(np.count_nonzero(est.transform(X), axis=1).mean())
    assert l0[1] < 0.7 * l0[0]


def test_relu_alpha_buys_sparsity(digits):
    X, _ = digits
    l0 = [
        np.count_nonzero(
            ReLUSAE(n_components=128, alpha=a, learning_rate=3e-3, batch_size=64, max_iter=10, random_state=0).fit_transform(X),
            axis=1,
        ).mean()
        for a in (1e-3, 1e-1)
    ]
    assert l0[1] < 0.5 * l0[0]


def test_recovers_ground_truth_features():
    from skdict.datasets import make_linear_representation_bench
    from skdict.metrics import gt_recovery

    X, features, codes = make_linear_representation_bench(
        n_samples=20_000, n_features=64, n_dims=48, sparsity=0.97, max_coherence=0.1, random_state=0
    )
    est = TopKSAE(n_components=256, k=4, max_iter=20, batch_size=256, learning_rate=3e-3, random_state=0).fit(X)
    assert est.score(X) >= 0.95
    assert gt_recovery(features, est.components_, threshold=0.95) >= 0.9


# --------------------------------------------------------------- sparsity
def test_training_step_never_builds_dense_codes_when_k_is_small(monkeypatch):
    def forbidden(self):
        raise AssertionError("dense code matrix built in a sparse training step")

    monkeypatch.setattr(codes_module.CodeMatrix, "to_dense", forbidden)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 16))
    est = TopKSAE(n_components=1024, k=4, random_state=0)
    est._initialize(InMemoryData(X, None))
    dead = np.zeros(1024, bool)
    dead[:500] = True  # AuxK runs too (k_aux = 8 of 1024)
    result = loss_and_grads(est, est._params(), X, X, centre=est._centre(), tied=True, dead_mask=dead)
    assert np.isfinite(result.loss)
    assert result.n_active <= 64 * 4


# ---------------------------------------------------------- sklearn usage
def test_grid_search_over_k_with_default_score(digits):
    X, _ = digits
    search = GridSearchCV(TopKSAE(n_components=64, max_iter=3, random_state=0), {"k": [2, 16]}, cv=2)
    search.fit(X)
    assert search.best_params_ == {"k": 16}  # more latents per sample reconstruct better
    assert search.cv_results_["mean_test_score"][1] > search.cv_results_["mean_test_score"][0]


def test_pipeline_with_logistic_regression_on_digits(digits):
    X, y = digits
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    pipe = make_pipeline(TopKSAE(n_components=256, k=16, max_iter=10, random_state=0), LogisticRegression(max_iter=2000))
    pipe.fit(X_train, y_train)  # the labels pass through the SAE step and are ignored there
    assert not pipe[0].is_transcoder_
    assert pipe.score(X_test, y_test) > 0.9


# ------------------------------------------------------------- transcoder
def test_transcoder_learns_a_map_to_another_width():
    rng = np.random.default_rng(0)
    X = np.maximum(rng.normal(size=(3000, 12)), 0) * (rng.random((3000, 12)) < 0.3)
    M = rng.normal(size=(12, 5))
    Y = X @ M + 0.5
    est = TopKSAE(n_components=64, k=6, max_iter=30, learning_rate=3e-3, random_state=0).fit(X, Y)
    assert est.is_transcoder_ and est.components_.shape == (64, 5)
    assert est.predict(X).shape == (3000, 5)
    assert est.score(X, Y) > 0.9
    with pytest.raises(ValueError, match="transcoder"):
        est.score(X)
    with pytest.raises(ValueError, match="transcoder"):
        est.partial_fit(X)


# -------------------------------------------------------------- streaming
def test_partial_fit_streams_chunks_and_resumes_after_pickling(digits):
    X, _ = digits
    chunks = np.array_split(X, 6)
    straight = TopKSAE(n_components=32, k=4, random_state=0)
    for chunk in chunks:
        straight.partial_fit(chunk)
    assert straight.n_iter_ == 6 and len(straight.history_["loss"]) == 6

    resumed = TopKSAE(n_components=32, k=4, random_state=0)
    for chunk in chunks[:3]:
        resumed.partial_fit(chunk)
    resumed = pickle.loads(pickle.dumps(resumed))
    for chunk in chunks[3:]:
        resumed.partial_fit(chunk)
    np.testing.assert_array_equal(resumed.components_, straight.components_)
    one_chunk = TopKSAE(n_components=32, k=4, random_state=0).partial_fit(chunks[0])
    assert straight.score(X) > one_chunk.score(X)  # the stream keeps learning


def test_partial_fit_rejects_a_new_width():
    est = small(TopKSAE).partial_fit(gaussian(d=6))
    with pytest.raises(ValueError, match="features"):
        est.partial_fit(gaussian(d=5))


def test_warm_start_continues_from_the_current_parameters():
    X = gaussian(n=400)
    est = small(TopKSAE, max_iter=2, warm_start=True).fit(X)
    first = est.components_.copy()
    est.fit(X)
    assert len(est.history_["loss"]) == 4 == est.n_iter_  # history and n_iter_ carry over
    cold = small(TopKSAE, max_iter=2).fit(X)
    np.testing.assert_array_equal(cold.components_, first)  # same seed, same start
    assert not np.array_equal(est.components_, first)


def test_warm_start_and_partial_fit_reread_k_but_reject_a_new_width():
    X = gaussian(n=400)
    est = small(TopKSAE, k=2, max_iter=1, warm_start=True).fit(X)
    est.set_params(k=5).fit(X)
    assert est.k_ == 5 and (np.count_nonzero(est.transform(X), axis=1) <= 5).all()
    assert np.count_nonzero(est.transform(X), axis=1).max() > 2
    with pytest.raises(ValueError, match="n_components=16 differs from the fitted model's 32 latents"):
        est.set_params(n_components=16).fit(X)
    with pytest.raises(ValueError, match="n_components=16 differs"):
        est.partial_fit(X)


def test_batchtopk_warm_start_reestimates_its_threshold_at_the_final_parameters():
    X = gaussian(n=400)
    est = small(BatchTopKSAE, max_iter=2, warm_start=True).fit(X)
    est.set_params(max_iter=1).fit(X)
    # the threshold belongs to the parameters after the last fit: k latents per sample on X
    assert np.mean(np.count_nonzero(est.transform(X), axis=1)) == pytest.approx(4)


def test_integer_two_dimensional_y_is_rejected_as_labels(digits):
    X, y = digits
    one_hot = np.eye(10, dtype=np.int64)[y]
    with pytest.raises(ValueError, match="looks like labels"):
        small(TopKSAE).fit(X, one_hot)


def test_early_stopping_stops_before_max_iter():
    X = gaussian(n=300)
    est = small(TopKSAE, max_iter=50, tol=0.5, n_iter_no_change=2).fit(X)
    # one window of 2 steps per epoch; the horizon is 50 x 2 = 100 steps, so the warmup is 5 steps and the
    # windows ending at steps 2 and 4 are not judged. Step 6 sets the best, 8 and 10 fail to improve by 50%:
    # the plateau is seen at step 10, the cooldown takes ceil(10 * 0.2 / 0.8) = 3 more steps, epoch 7
    assert (est.n_iter_, est.n_steps_) == (7, 13)
    assert len(est.history_["loss"]) == 7


# ----------------------------------------------------- dtype, determinism
@pytest.mark.parametrize("cls", ALL)
def test_float32_is_preserved_and_ints_become_float64(cls):
    X32 = gaussian(dtype=np.float32)
    est = small(cls).fit(X32)
    assert est.components_.dtype == np.float32 and est.transform(X32).dtype == np.float32
    est = small(cls).fit((gaussian() * 10).astype(np.int64))
    assert est.components_.dtype == np.float64


@pytest.mark.parametrize("cls", ALL)
def test_same_seed_same_model_and_pickle_round_trip(cls):
    X = gaussian()
    a, b = small(cls).fit(X), small(cls).fit(X)
    np.testing.assert_array_equal(a.components_, b.components_)
    restored = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(restored.transform(X), a.transform(X))


def test_verbose_reports_each_epoch(capsys):
    small(TopKSAE, verbose=1, max_iter=2).fit(gaussian())
    err = capsys.readouterr().err
    assert "loss=" in err and "dead_fraction=" in err


# --------------------------------------------------------------- bad input
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input_is_rejected(bad):
    X = gaussian()
    X[3, 2] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        small(TopKSAE).fit(X)


def test_bad_shapes_and_types_are_rejected_with_clear_messages():
    est = small(TopKSAE)
    with pytest.raises(ValueError, match="0 sample"):
        est.fit(np.empty((0, 4)))
    with pytest.raises(ValueError, match="2D array"):
        est.fit(np.arange(10.0))
    with pytest.raises(ValueError, match="dim 3"):
        est.fit(np.zeros((3, 4, 5)))
    with pytest.raises(TypeError, match="toarray"):
        est.fit(scipy.sparse.random(20, 5, density=0.3, format="csr"))
    with pytest.raises((TypeError, ValueError)):
        est.fit(np.array([["a", "b"], ["c", "d"]], dtype=object))
    with pytest.raises(ValueError, match="k=40 is larger than n_components=32"):
        TopKSAE(n_components=32, k=40).fit(gaussian())
    fitted = small(TopKSAE).fit(gaussian(d=6))
    with pytest.raises(ValueError, match="X has 5 features, but TopKSAE is expecting 6"):
        fitted.transform(gaussian(d=5))
    with pytest.raises(ValueError, match="n_components"):
        fitted.inverse_transform(np.zeros((2, 7)))


def test_a_single_sample_can_be_fitted_but_not_scored():
    est = small(TopKSAE).fit(gaussian(n=1))
    assert est.transform(gaussian(n=1)).shape == (1, 32)
    with pytest.raises(ValueError):
        est.score(gaussian(n=1))


def test_unreachable_gpu_raises_one_clear_error():
    from skdict._array import cuda_available

    if cuda_available():
        pytest.skip("a GPU is reachable here")
    with pytest.raises(RuntimeError, match=r"skdict\[gpu\]"):
        small(TopKSAE, device="cuda").fit(gaussian())


# ---------------------------------------------------------------- divergence
@pytest.mark.parametrize("learning_rate", [1e30, 1e39], ids=["loss-overflows", "update-overflows"])
def test_divergence_stops_with_a_message_and_keeps_finite_parameters(learning_rate):
    X = gaussian(dtype=np.float32) * 100
    est = TopKSAE(n_components=16, k=4, learning_rate=learning_rate, max_grad_norm=None, max_iter=5, random_state=0)
    with pytest.raises(TrainingDivergedError, match="Lower learning_rate"):
        est.fit(X)
    for name, value in est._params().items():
        assert np.all(np.isfinite(value)), name
    if learning_rate > float(np.finfo(np.float32).max):
        # The very first update overflowed float32: the initial parameters are kept, usable.
        initial = TopKSAE(n_components=16, k=4, random_state=0)
        initial._initialize(InMemoryData(X, None))
        np.testing.assert_array_equal(est.encoder_, initial.encoder_)
        assert np.all(np.isfinite(est.transform(X)))


@pytest.mark.parametrize("n_rows, size", [(10, 50), (100, 50), (10**9, 4096)])
def test_bias_sample_rows_are_distinct_and_uniform_without_permuting_everything(n_rows, size):
    from sklearn.utils import check_random_state

    from skdict.sae._data import _sample_rows

    rows = _sample_rows(check_random_state(0), n_rows, size)
    assert rows.shape == (min(n_rows, size),)
    assert (np.diff(rows) > 0).all() and rows[0] >= 0 and rows[-1] < n_rows
    if n_rows == 10**9:  # spread over the whole range, not the first indices
        assert rows.mean() == pytest.approx(n_rows / 2, rel=0.05)
