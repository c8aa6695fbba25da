"""Fixtures shared by the SAE tests."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

import skdict.sae._data as data_module


@pytest.fixture
def X():
    """900 correlated rows of 12 float32 features (a module may define its own ``X``)."""
    rng = np.random.default_rng(0)
    return (rng.normal(size=(900, 12)) @ rng.normal(size=(12, 12))).astype(np.float32)


@pytest.fixture
def npy(tmp_path, X):
    """``X`` saved as a ``.npy`` file: its path."""
    path = tmp_path / "acts.npy"
    np.save(path, X)
    return str(path)


@pytest.fixture
def small_buffer(monkeypatch):
    """Force block shuffling: a buffer of 200 rows, blocks of 50 (the 900-row ``X`` is 4.5 buffers)."""
    row_bytes = 12 * 4
    monkeypatch.setattr(data_module, "SHUFFLE_BUFFER_BYTES", 200 * row_bytes)
    monkeypatch.setattr(data_module, "BLOCK_BYTES", 50 * row_bytes)


@pytest.fixture(scope="session")
def mlp_layer():
    """A real MLP layer: the 256 hidden ReLU activations of an MLP trained briefly on digits, (1797, 256)."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # trained briefly on purpose
        mlp = MLPClassifier(hidden_layer_sizes=(256,), max_iter=5, random_state=0).fit(X, y)
    return np.maximum(X @ mlp.coefs_[0] + mlp.intercepts_[0], 0.0)
