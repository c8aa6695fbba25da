"""Plotting tests draw headless (Agg) and skip cleanly where matplotlib is not installed."""

import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
