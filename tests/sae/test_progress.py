"""Per-step progress (log lines without tqdm, a bar with it), step_history_ and the not-yet-known dead fraction."""

import builtins
import math
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skdict import TopKSAE
from skdict._progress import StepProgress


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).normal(size=(200, 6))


def fit(X, **params):
    params = {"n_components": 8, "k": 2, "batch_size": 50, "random_state": 0, **params}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return TopKSAE(**params).fit(X)


@pytest.fixture
def no_tqdm(monkeypatch):
    real_import = builtins.__import__

    def without_tqdm(name, *args, **kwargs):
        if name.startswith("tqdm"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_tqdm)


def test_histories_have_one_entry_per_epoch_and_per_window(X):
    model = fit(X, max_steps=10, log_every=3)  # 4 steps per epoch: epochs 1, 2 and half of 3
    assert set(model.history_) == {"loss", "explained_variance", "l0", "dead_fraction"}
    assert all(len(values) == model.n_iter_ == 3 for values in model.history_.values())
    steps = model.step_history_
    assert set(steps) == {"step", "samples", "loss", "explained_variance", "l0", "dead_fraction"}
    assert steps["step"] == [3, 6, 9, 10]  # the last, short window is logged too
    assert steps["samples"] == [150, 300, 450, 500]
    assert all(len(values) == 4 for values in steps.values())


def test_window_statistics_average_the_epoch_when_a_window_is_an_epoch(X):
    model = fit(X, max_iter=3, log_every=4, dead_after=10**6)  # window == epoch (4 steps of 50 rows)
    for key in ("loss", "l0"):
        np.testing.assert_allclose(model.step_history_[key], model.history_[key], rtol=1e-12)


def test_dead_fraction_is_not_known_before_dead_after_samples(X):
    model = fit(X, max_steps=16, log_every=2, dead_after=500)
    for samples, dead in zip(model.step_history_["samples"], model.step_history_["dead_fraction"]):
        assert math.isnan(dead) == (samples < 500), (samples, dead)
    epochs = model.history_["dead_fraction"]  # 200, 400, 600, 800 samples seen at the epochs' ends
    assert math.isnan(epochs[0]) and math.isnan(epochs[1])
    assert 0.0 <= epochs[2] <= 1.0 and 0.0 <= epochs[3] <= 1.0


def test_log_lines_every_window_without_tqdm(X, capsys, no_tqdm):
    fit(X, max_steps=6, log_every=3, verbose=1)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("[TopKSAE] step 3  samples 150/300  ")
    assert lines[1].startswith("[TopKSAE] step 6  samples 300/300  ")
    for line in lines:
        for field in ("samples/s", "ETA", "loss=", "explained_variance=", "l0=", "dead_fraction=nan"):
            assert field in line, (field, line)


def test_no_eta_when_the_horizon_is_unknown(capsys, no_tqdm):
    clock = iter(range(100)).__next__
    progress = StepProgress(None, enabled=True, description="M", clock=clock)
    progress.step(10)
    progress.log(1, {"loss": 0.5})
    line = capsys.readouterr().err
    assert line == "[M] step 1  samples 10  10 samples/s  loss=0.5\n"


def test_eta_from_the_rate_so_far(capsys, no_tqdm):
    clock = iter([0.0, 2.0]).__next__  # started at 0 s, logged at 2 s
    progress = StepProgress(100, enabled=True, description="M", clock=clock)
    progress.step(20)
    progress.log(2, {})
    assert capsys.readouterr().err == "[M] step 2  samples 20/100  10 samples/s  ETA 8s  \n"


def test_tqdm_bar_counts_samples_and_shows_the_window_statistics(X, capsys):
    pytest.importorskip("tqdm")
    fit(X, max_steps=4, log_every=2, verbose=1)
    err = capsys.readouterr().err
    assert "TopKSAE" in err and "loss=" in err and "step=4" in err


def test_silent_without_verbose(X, capsys):
    fit(X, max_steps=4, log_every=1)
    assert capsys.readouterr().err == ""
