"""Shared test configuration: GPU tests skip cleanly where CuPy cannot reach a GPU."""

import pytest

from skdict._array import cuda_available


def pytest_collection_modifyitems(config, items):
    if cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (pip install skdict[gpu])")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
