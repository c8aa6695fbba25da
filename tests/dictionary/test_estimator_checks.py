"""scikit-learn's own estimator checks, run on every classical dictionary learner."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skdict import LISTA, FISTADictionaryLearning, SoftplusAdamDictionaryLearning


@parametrize_with_checks(
    [
        FISTADictionaryLearning(max_iter=20),
        FISTADictionaryLearning(max_iter=5, batch_size=8),
        SoftplusAdamDictionaryLearning(max_iter=50, transform_max_iter=50),
        LISTA(n_layers=4, max_iter=5),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
