"""transform works a block of rows at a time: its memory beyond the output does not grow with n_samples."""

import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import skdict.dictionary._base as base
from skdict import LISTA, FISTADictionaryLearning, SoftplusAdamDictionaryLearning

N_COMPONENTS = 64


def extra_peak(model, X):
    """Peak bytes that ``model.transform(X)`` allocates beyond its output (traced by tracemalloc)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        codes = model.transform(X)
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    return peak - codes.nbytes


@pytest.mark.parametrize(
    "model",
    [
        FISTADictionaryLearning(N_COMPONENTS, alpha=0.5, max_iter=1, random_state=0),
        SoftplusAdamDictionaryLearning(N_COMPONENTS, max_iter=2, transform_max_iter=5, random_state=0),
        LISTA(N_COMPONENTS, n_layers=4, dictionary=np.random.default_rng(1).standard_normal((N_COMPONENTS, 16)),
              max_iter=1, random_state=0),
    ],
    ids=["fista-dl", "softplus-adam", "lista"],
)
def test_transform_memory_beyond_the_output_does_not_grow_with_n_samples(model, monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((800, 16))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X[:200])
        monkeypatch.setattr(base, "CODE_BLOCK_ELEMENTS", 25 * N_COMPONENTS)  # blocks of 25 rows
        small, large = extra_peak(model, X[:200]), extra_peak(model, X)
    # 4x the rows: without blocks the working arrays (several times the output) grow 4x as well
    assert large < 1.3 * small + 64 * 1024, (small, large)
