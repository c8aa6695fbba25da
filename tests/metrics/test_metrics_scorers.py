import pickle

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skdict import TopKSAE
from skdict.datasets import make_linear_representation_bench
from skdict.metrics import (
    dead_fraction,
    explained_variance,
    get_scorer,
    gt_recovery,
    l0,
    make_gt_scorer,
    matched_cosine,
    mean_max_cosine,
)

# The SAEs here train a few epochs on purpose (the scorers are under test, not the fits).
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def bench():
    return make_linear_representation_bench(
        600, n_features=12, n_dims=16, sparsity=0.8, max_coherence=0.3, random_state=0
    )


@pytest.fixture(scope="module")
def fitted(bench):
    X, _, _ = bench
    return TopKSAE(n_components=24, k=3, max_iter=5, random_state=0).fit(X)


def test_scorers_equal_the_metric_functions(bench, fitted):
    X, features, _ = bench
    codes = fitted.transform(X)
    ev = explained_variance(X, fitted.inverse_transform(codes))
    assert get_scorer("explained_variance")(fitted, X) == pytest.approx(ev, rel=1e-12)
    assert get_scorer("explained_variance")(fitted, X) == pytest.approx(fitted.score(X), rel=1e-12)
    assert get_scorer("neg_fvu")(fitted, X) == pytest.approx(ev - 1.0, rel=1e-12)
    assert get_scorer("neg_l0")(fitted, X) == -l0(codes) == -3.0
    assert get_scorer("neg_dead_fraction")(fitted, X) == -dead_fraction(codes)
    assert get_scorer("neg_dead_fraction")(fitted, X[:1]) == -(1 - 3 / 24)  # 3 of 24 latents on one sample
    assert make_gt_scorer(features)(fitted) == gt_recovery(features, fitted.components_)
    assert make_gt_scorer(features, threshold=0.5)(fitted) == gt_recovery(features, fitted.components_, threshold=0.5)
    assert make_gt_scorer(features, "mean_max_cosine")(fitted, X) == mean_max_cosine(features, fitted.components_)
    assert make_gt_scorer(features, "matched_cosine")(fitted, X) == matched_cosine(features, fitted.components_)


def test_transcoder_target_is_y():
    rng = np.random.RandomState(0)
    X, Y = rng.standard_normal((200, 6)), rng.standard_normal((200, 4))
    transcoder = TopKSAE(n_components=8, k=2, max_iter=2, random_state=0).fit(X, Y)
    expected = explained_variance(Y, transcoder.predict(X))
    assert get_scorer("explained_variance")(transcoder, X, Y) == pytest.approx(expected, rel=1e-12)
    assert get_scorer("explained_variance")(transcoder, X, Y) == pytest.approx(transcoder.score(X, Y), rel=1e-12)


def test_pipeline_and_sklearn_decomposition(bench):
    X, features, _ = bench
    pipe = make_pipeline(StandardScaler(), TopKSAE(n_components=24, k=3, max_iter=2, random_state=0)).fit(X)
    reconstruction = pipe.inverse_transform(pipe.transform(X))
    assert get_scorer("explained_variance")(pipe, X) == pytest.approx(explained_variance(X, reconstruction))
    assert make_gt_scorer(features)(pipe) == gt_recovery(features, pipe[-1].components_)
    # PCA with all components reconstructs exactly: EV 1, FVU 0.
    pca = PCA(n_components=16).fit(X)
    assert get_scorer("explained_variance")(pca, X) == pytest.approx(1.0)
    assert get_scorer("neg_fvu")(pca, X) == pytest.approx(0.0, abs=1e-12)


def test_grid_search_with_scorer_dict_and_refit(bench):
    X, features, _ = bench
    scoring = {
        "ev": get_scorer("explained_variance"),
        "l0": get_scorer("neg_l0"),
        "gt": make_gt_scorer(features, "mean_max_cosine"),
    }
    search = GridSearchCV(
        TopKSAE(n_components=24, max_iter=3, random_state=0),
        {"k": [1, 4]},
        scoring=scoring,
        refit="gt",
        cv=KFold(2),
    ).fit(X)
    results = search.cv_results_
    np.testing.assert_array_equal(results["mean_test_l0"], [-1.0, -4.0])
    assert search.best_index_ == int(np.argmax(results["mean_test_gt"]))
    assert search.best_score_ == results["mean_test_gt"][search.best_index_]
    # More active latents reconstruct better on held-out folds.
    assert results["mean_test_ev"][1] > results["mean_test_ev"][0]
    best_k = [1, 4][search.best_index_]
    refit = TopKSAE(n_components=24, k=best_k, max_iter=3, random_state=0).fit(X)
    np.testing.assert_allclose(search.best_estimator_.components_, refit.components_)


def test_cross_validate_scores_each_fold(bench):
    X, _, _ = bench
    folds = list(KFold(3).split(X))
    scores = cross_validate(
        TopKSAE(n_components=24, k=3, max_iter=2, random_state=0), X,
        scoring={"ev": get_scorer("explained_variance")}, cv=folds, return_estimator=True,
    )
    for (_, test), estimator, score in zip(folds, scores["estimator"], scores["test_ev"]):
        assert score == pytest.approx(explained_variance(X[test], estimator.predict(X[test])), rel=1e-12)


def test_scorers_pickle_and_repr(bench, fitted):
    X, features, _ = bench
    for scorer in (get_scorer("neg_l0"), make_gt_scorer(features, "matched_cosine")):
        assert pickle.loads(pickle.dumps(scorer))(fitted, X) == scorer(fitted, X)
    assert repr(get_scorer("neg_fvu")) == "get_scorer('neg_fvu')"
    assert "matched_cosine" in repr(make_gt_scorer(features, "matched_cosine"))


def test_errors(bench):
    X, features, _ = bench
    with pytest.raises(ValueError, match="Unknown scorer name 'accuracy'.*make_gt_scorer"):
        get_scorer("accuracy")
    with pytest.raises(ValueError, match="metric must be one of"):
        make_gt_scorer(features, metric="mcc")
    with pytest.raises(ValueError, match="threshold must be"):
        make_gt_scorer(features, threshold=2.0)
    with pytest.raises(ValueError, match="true_features contains NaN"):
        make_gt_scorer(np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="has no components_"):
        make_gt_scorer(features)(StandardScaler().fit(X))


@pytest.mark.gpu
def test_cupy_estimator_and_numpy_true_features(bench):
    import cupy

    X, features, _ = bench
    cpu = TopKSAE(n_components=24, k=3, max_iter=2, random_state=0).fit(X)
    gpu = TopKSAE(n_components=24, k=3, max_iter=2, random_state=0).fit(cupy.asarray(X))
    for name in ("explained_variance", "neg_fvu", "neg_l0", "neg_dead_fraction"):
        assert get_scorer(name)(gpu, cupy.asarray(X)) == pytest.approx(get_scorer(name)(cpu, X), abs=1e-5)
    for metric in ("gt_recovery", "mean_max_cosine", "matched_cosine"):
        assert make_gt_scorer(features, metric)(gpu) == pytest.approx(make_gt_scorer(features, metric)(cpu), abs=1e-5)
