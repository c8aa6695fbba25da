"""scikit-learn's own estimator checks, run on every SAE with default parameters."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skdict import BatchTopKSAE, JumpReLUSAE, MPSAE, ReLUSAE, TopKSAE

#: These fits are deliberately short (a few epochs, tiny data): running out of max_iter, or ending
#: below the mean's score, is expected here, not a finding (tests/sae/test_convergence_warning.py
#: checks the warnings themselves).
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@parametrize_with_checks([TopKSAE(), BatchTopKSAE(), ReLUSAE(), JumpReLUSAE(), MPSAE()])
def test_sklearn_compatible(estimator, check):
    check(estimator)
