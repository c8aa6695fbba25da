"""scikit-learn's own estimator checks, run on every SAE with default parameters."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skdict import BatchTopKSAE, GatedSAE, JumpReLUSAE, MatryoshkaSAE, MPSAE, ReLUSAE, TopKSAE

#: These fits are deliberately short (a few epochs, tiny data): running out of max_iter, or ending
#: below the mean's score, is expected here, not a finding (tests/sae/test_convergence_warning.py
#: checks the warnings themselves).
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


#: Default parameters but a short budget: on the checks' tiny random data a wide SAE keeps improving
#: (it memorises the rows) for thousands of steps before early stopping; the checks test the API.
SHORT = {"max_steps": 100}


@parametrize_with_checks(
    [cls(**SHORT) for cls in (TopKSAE, BatchTopKSAE, ReLUSAE, JumpReLUSAE, GatedSAE, MatryoshkaSAE, MPSAE)]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
