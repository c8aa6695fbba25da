"""scikit-learn's own estimator checks, run on every SAE with default parameters."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skdict import BatchTopKSAE, JumpReLUSAE, MPSAE, ReLUSAE, TopKSAE


@parametrize_with_checks([TopKSAE(), BatchTopKSAE(), ReLUSAE(), JumpReLUSAE(), MPSAE()])
def test_sklearn_compatible(estimator, check):
    check(estimator)
