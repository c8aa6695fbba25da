"""Fixtures shared by the SAE tests."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier


@pytest.fixture(scope="session")
def mlp_layer():
    """A real MLP layer: the 256 hidden ReLU activations of an MLP trained briefly on digits, (1797, 256)."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # trained briefly on purpose
        mlp = MLPClassifier(hidden_layer_sizes=(256,), max_iter=5, random_state=0).fit(X, y)
    return np.maximum(X @ mlp.coefs_[0] + mlp.intercepts_[0], 0.0)
