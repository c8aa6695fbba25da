"""The reproducibility guarantee of doc/reproducibility.rst: bitwise for fixed settings, a stated tolerance across threads.

Bitwise: the same seed, data, thread count and backend give the same model, bit for bit.
Across thread settings (SKDICT_NUM_THREADS, BLAS threads, a fit from a non-main thread) sums
may be taken in another order: float64 models agree to ``CROSS_THREAD_ATOL`` (unit-norm atoms).
"""

import json
import os
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skdict import FISTADictionaryLearning, TopKSAE  # noqa: F401 - named by MODELS, built by eval

#: The documented tolerance across thread settings, float64, on unit-norm atoms (doc/reproducibility.rst).
CROSS_THREAD_ATOL = 1e-6

MODELS = {
    "minibatch-fista-dl": "FISTADictionaryLearning(24, alpha=0.1, batch_size=100, max_iter=3, random_state=0)",
    "topk-sae": "TopKSAE(24, k=3, batch_size=64, max_iter=3, random_state=0)",
}

FIT = """
import json, sys, warnings
import numpy as np
from skdict import FISTADictionaryLearning, TopKSAE  # noqa: F401 - named by MODELS, built by eval
warnings.simplefilter("ignore")
X = np.random.default_rng(0).standard_normal((400, 12))
model = {model}.fit(X)
json.dump(model.components_.tolist(), sys.stdout)
"""


def data():
    return np.random.default_rng(0).standard_normal((400, 12))


def fitted(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return eval(MODELS[name]).fit(data()).components_  # noqa: S307 - a fixed expression of this module


@pytest.mark.parametrize("name", list(MODELS))
def test_same_settings_give_a_bitwise_identical_model(name):
    np.testing.assert_array_equal(fitted(name), fitted(name))


@pytest.mark.parametrize("name", list(MODELS))
def test_fit_in_a_non_main_thread_is_within_tolerance(name):
    result = {}
    worker = threading.Thread(target=lambda: result.update(components=fitted(name)))
    worker.start()
    worker.join()
    np.testing.assert_allclose(result["components"], fitted(name), rtol=0, atol=CROSS_THREAD_ATOL)


@pytest.mark.parametrize("name", list(MODELS))
def test_one_thread_everywhere_is_within_tolerance(name):
    # SKDICT_NUM_THREADS is read at every call, BLAS's thread count at import: a fresh process sets both
    env = {**os.environ, "SKDICT_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    completed = subprocess.run(
        [sys.executable, "-c", FIT.format(model=MODELS[name])], env=env, capture_output=True, text=True, check=True,
    )
    single = np.array(json.loads(completed.stdout))
    np.testing.assert_allclose(single, fitted(name), rtol=0, atol=CROSS_THREAD_ATOL)
