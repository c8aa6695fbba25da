"""Checkpoints: a fit killed at any point resumes from its last checkpoint to the parameters of an uninterrupted fit."""

import json
import os
import signal
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import skdict.sae._checkpoint as checkpoint_module
import skdict.sae._training as training_module
from skdict._array import to_numpy
from skdict import BatchTopKSAE, JumpReLUSAE, MPSAE, ReLUSAE, TopKSAE

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# X (900 x 12 float32), npy (X saved as a .npy file) and small_buffer (buffers of 200 rows, blocks of 50, as the
# kill script's "npy" source) come from conftest.py.
SCRIPT = Path(__file__).with_name("checkpoint_kill_script.py")
CLASSES = [TopKSAE, BatchTopKSAE, ReLUSAE, JumpReLUSAE, MPSAE]
#: 900 rows at batch 64: 15 steps per epoch (the last one of 4 rows), 60 steps in all.
PARAMS = {"n_components": 48, "batch_size": 64, "max_iter": None, "max_steps": 60, "random_state": 0}


def assert_same_fit(resumed, uninterrupted):
    """Bitwise: parameters, Adam's state, the dead-latent clock, RNG, counters and history."""

    def same(a, b, name):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b), err_msg=name)

    for name in uninterrupted._params():
        same(getattr(resumed, name), getattr(uninterrupted, name), name)
        same(resumed._adam.m[name], uninterrupted._adam.m[name], f"m of {name}")
        same(resumed._adam.v[name], uninterrupted._adam.v[name], f"v of {name}")
    assert resumed._adam.t == uninterrupted._adam.t
    same(resumed._samples_since_fired, uninterrupted._samples_since_fired, "dead-latent clock")
    np.testing.assert_equal(resumed._rng.get_state(), uninterrupted._rng.get_state())
    np.testing.assert_equal(resumed.history_, uninterrupted.history_)  # NaN == NaN here
    if hasattr(uninterrupted, "_resample_rng"):
        np.testing.assert_equal(resumed._resample_rng.get_state(), uninterrupted._resample_rng.get_state())
    for name in ("n_iter_", "n_steps_", "n_samples_seen_"):
        assert getattr(resumed, name) == getattr(uninterrupted, name), name


def checkpoint_files(directory):
    return sorted(name for name in os.listdir(directory))


# ---------------------------------------------------------------- killed processes
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
@pytest.mark.parametrize(
    "source, kill, left",
    [
        # SIGKILL as step 24 begins: the last checkpoint is before step 21, epoch 2 part-way (5 of 15 done)
        ("memory", "step:23", ["checkpoint-00000004.json", "checkpoint-00000004.npz"]),
        # killed inside the 6th rename: checkpoint 3's arrays are in place, its JSON (the commit record) is not;
        # the fit resumes from checkpoint 2 (before step 11), streamed through block shuffling
        ("npy", "replace:6", ["checkpoint-00000002.json", "checkpoint-00000002.npz", "checkpoint-00000003.npz"]),
    ],
)
def test_a_killed_fit_resumes_to_the_parameters_of_an_uninterrupted_fit(tmp_path, X, npy, small_buffer, source, kill, left):
    data = X if source == "memory" else npy
    directory = tmp_path / "checkpoints"
    params = {**PARAMS, "k": 4, "checkpoint_dir": str(directory), "checkpoint_every": 5}
    killed = subprocess.run(
        [sys.executable, str(SCRIPT), npy, source, json.dumps(params), kill], capture_output=True, text=True, timeout=120
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    files = checkpoint_files(directory)
    assert [name for name in files if name.startswith("checkpoint-")] == left
    if kill.startswith("replace"):
        assert any(name.startswith(".checkpoint-partial-") for name in files)  # the JSON the kill cut short

    resumed = TopKSAE(**params).fit(data)
    uninterrupted = TopKSAE(**{**params, "checkpoint_dir": None}).fit(data)
    assert_same_fit(resumed, uninterrupted)
    # the resumed fit went on writing and cleaned up: its final checkpoint is left, no partial file
    final = checkpoint_files(directory)
    assert len(final) == 2 and all(name.startswith("checkpoint-") for name in final)


# ---------------------------------------------------------------- interrupted in process
class Interrupted(BaseException):
    """Stands for a kill: raised from the training step, caught by nothing in skdict."""


def interrupt_after(monkeypatch, n_steps):
    original, done = training_module._train_step, [0]

    def step(*args, **kwargs):
        if done[0] == n_steps:
            raise Interrupted
        done[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(training_module, "_train_step", step)


#: resample_dead draws from its own RNG, saved in the checkpoint (the training RNG is not read mid-epoch).
RESAMPLING = {"k": 2, "dead_after": 100, "resample_dead": True}


@pytest.mark.parametrize(
    "cls, stop, extra",  # before the first checkpoint, an epoch's end, mid-epoch, the last step; resampling
    [(TopKSAE, 3, {}), (TopKSAE, 15, {}), (TopKSAE, 59, {}), (BatchTopKSAE, 31, {}), (ReLUSAE, 15, {}),
     (JumpReLUSAE, 31, {}), (MPSAE, 45, {}), (TopKSAE, 22, RESAMPLING), (MPSAE, 37, RESAMPLING)],
)
def test_every_sae_resumes_exactly_from_any_step(monkeypatch, tmp_path, X, cls, stop, extra):
    params = {**PARAMS, **extra, "checkpoint_dir": str(tmp_path), "checkpoint_every": 4}
    uninterrupted = cls(**{**params, "checkpoint_dir": None}).fit(X)
    assert not extra or sum(uninterrupted.history_["n_resampled"]) > 0
    with monkeypatch.context() as patch:
        interrupt_after(patch, stop)
        with pytest.raises(Interrupted):
            cls(**params).fit(X)
    assert_same_fit(cls(**params).fit(X), uninterrupted)


@pytest.mark.gpu
@pytest.mark.parametrize("source", ["memory", "npy"])
def test_a_fit_on_the_gpu_resumes_exactly(monkeypatch, tmp_path, X, npy, source):
    """Parameters and Adam's state go back to the device; a streamed epoch is drawn again on the prefetch thread."""
    import cupy

    data = cupy.asarray(X) if source == "memory" else npy
    params = {**PARAMS, "k": 4, "device": "cuda", "checkpoint_dir": str(tmp_path / "checkpoints"), "checkpoint_every": 4}
    uninterrupted = TopKSAE(**{**params, "checkpoint_dir": None}).fit(data)
    with monkeypatch.context() as patch:
        interrupt_after(patch, 22)
        with pytest.raises(Interrupted):
            TopKSAE(**params).fit(data)
    resumed = TopKSAE(**params).fit(data)
    assert isinstance(resumed.components_, cupy.ndarray)
    assert_same_fit(resumed, uninterrupted)


def test_a_streamed_fit_resumes_exactly_and_leaves_the_rng_as_an_uninterrupted_one(monkeypatch, tmp_path, npy, small_buffer):
    """The prefetch thread draws the epoch's order ahead of the step: the epoch is drawn again from its start."""
    directory = tmp_path / "checkpoints"
    params = {**PARAMS, "k": 4, "checkpoint_dir": str(directory), "checkpoint_every": 4, "max_steps": None, "max_iter": 3}
    uninterrupted = TopKSAE(**{**params, "checkpoint_dir": None}).fit(npy)
    for stop in (6, 22):
        with monkeypatch.context() as patch:
            interrupt_after(patch, stop)
            with pytest.raises(Interrupted):
                TopKSAE(**params).fit(npy)
        resumed = TopKSAE(**params).fit(npy)
        assert_same_fit(resumed, uninterrupted)
        for name in os.listdir(directory):
            os.unlink(directory / name)


def test_the_checkpoint_of_a_finished_fit_gives_the_fitted_model_without_training(monkeypatch, tmp_path, X):
    params = {**PARAMS, "k": 4, "checkpoint_dir": str(tmp_path), "checkpoint_every": 7}
    first = TopKSAE(**params).fit(X)
    assert checkpoint_files(tmp_path) == ["checkpoint-00000009.json", "checkpoint-00000009.npz"]  # 8 periodic + final
    monkeypatch.setattr(training_module, "_train_step", None)  # any step would fail
    again = TopKSAE(**params).fit(X)
    assert_same_fit(again, first)


def test_partial_fit_writes_no_checkpoint(tmp_path, X):
    TopKSAE(**{**PARAMS, "k": 4, "checkpoint_dir": str(tmp_path), "checkpoint_every": 1}).partial_fit(X)
    assert checkpoint_files(tmp_path) == []


# ---------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    "change, named",
    [
        ({"k": 5}, "k=4"),
        ({"learning_rate": 2e-3}, "learning_rate=0.001"),
        ({"max_steps": 61}, "max_steps=60"),
    ],
)
def test_a_checkpoint_of_another_model_is_refused_naming_the_parameter(tmp_path, X, change, named):
    params = {**PARAMS, "k": 4, "checkpoint_dir": str(tmp_path), "checkpoint_every": 30}
    TopKSAE(**params).fit(X)
    with pytest.raises(ValueError, match=named):
        TopKSAE(**{**params, **change}).fit(X)


def test_verbose_and_checkpoint_cadence_may_change(tmp_path, X, capsys):
    params = {**PARAMS, "k": 4, "checkpoint_dir": str(tmp_path), "checkpoint_every": 30}
    first = TopKSAE(**params).fit(X)
    assert_same_fit(TopKSAE(**{**params, "checkpoint_every": 7, "verbose": 1}).fit(X), first)


def test_a_checkpoint_of_another_class_or_data_is_refused(tmp_path, X):
    params = {**PARAMS, "k": 4, "checkpoint_dir": str(tmp_path), "checkpoint_every": 30}
    TopKSAE(**params).fit(X)
    with pytest.raises(ValueError, match="written by skdict.sae.topk.TopKSAE, not by skdict.sae.batchtopk.BatchTopKSAE"):
        BatchTopKSAE(**params).fit(X)
    with pytest.raises(ValueError, match="n_features=12.*n_features=11"):
        TopKSAE(**params).fit(X[:, :11])
    with pytest.raises(ValueError, match="n_rows=900.*n_rows=899"):
        TopKSAE(**params).fit(X[:899])
    with pytest.raises(ValueError, match="dtype='float32'.*dtype='float64'"):
        TopKSAE(**params).fit(X.astype(np.float64))


def test_a_refused_checkpoint_leaves_a_fitted_model_as_it_was(tmp_path, X):
    params = {**PARAMS, "k": 4, "checkpoint_dir": str(tmp_path), "checkpoint_every": 30}
    TopKSAE(**params).fit(X)
    model = TopKSAE(**{**params, "checkpoint_dir": None}).fit(X)
    before = model.components_.copy()
    with pytest.raises(ValueError, match="k=4"):
        model.set_params(k=5, checkpoint_dir=str(tmp_path)).fit(X)
    np.testing.assert_array_equal(model.components_, before)


def last_data_byte(path, member):
    """Offset in the file of the last byte of a stored zip member's data."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    header = path.read_bytes()[info.header_offset : info.header_offset + 30]
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_length + extra_length + info.file_size - 1


@pytest.mark.parametrize(
    "damage",
    ["truncate arrays", "flip a byte of the arrays", "delete arrays", "truncate record", "not a record", "version"],
)
def test_a_damaged_checkpoint_is_refused_naming_the_file(tmp_path, X, damage):
    params = {**PARAMS, "k": 4, "checkpoint_dir": str(tmp_path), "checkpoint_every": 100}
    TopKSAE(**params).fit(X)
    (arrays,) = tmp_path.glob("*.npz")
    (record,) = tmp_path.glob("*.json")
    data, text = arrays.read_bytes(), record.read_text()
    named = arrays
    if damage == "truncate arrays":
        arrays.write_bytes(data[: len(data) // 2])
    elif damage == "flip a byte of the arrays":  # the last byte of components_: same size, the zip's CRC finds it
        at = last_data_byte(arrays, "param/components_.npy")
        arrays.write_bytes(data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :])
    elif damage == "delete arrays":
        arrays.unlink()
    else:
        named = record
        if damage == "truncate record":
            record.write_text(text[: len(text) // 2])
        elif damage == "not a record":
            record.write_text("[1, 2]")
        else:
            record.write_text(json.dumps({**json.loads(text), "format_version": 99}))
    with pytest.raises(ValueError, match=f"checkpoint.*{record.stem if named is record else arrays.stem}"):
        TopKSAE(**params).fit(X)


def test_a_checkpoint_missing_an_array_is_refused_naming_the_file(tmp_path, X):
    params = {**PARAMS, "k": 4, "checkpoint_dir": str(tmp_path), "checkpoint_every": 100}
    TopKSAE(**params).fit(X)
    (arrays,) = tmp_path.glob("*.npz")
    with np.load(arrays) as stored:
        kept = {name: stored[name] for name in stored.files if name != "param/components_"}
    np.savez(arrays, **kept)
    record = next(tmp_path.glob("*.json"))
    state = json.loads(record.read_text())
    record.write_text(json.dumps({**state, "arrays_bytes": arrays.stat().st_size}))
    with pytest.raises(ValueError, match=f"{record.name}.*components_"):
        TopKSAE(**params).fit(X)


# ---------------------------------------------------------------- the file layer
def test_a_failed_write_leaves_the_previous_file_and_no_partial_one(tmp_path):
    path = tmp_path / "state.json"
    checkpoint_module.atomic_write(str(path), lambda handle: handle.write(b"old"))

    def fails_part_way(handle):
        handle.write(b"new, half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        checkpoint_module.atomic_write(str(path), fails_part_way)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["state.json"]


def test_write_checkpoint_keeps_one_generation_and_reads_back_what_it_wrote(tmp_path):
    arrays = {"a/b": np.arange(6, dtype=np.float32).reshape(2, 3), "keys": np.arange(4, dtype=np.uint32)}
    checkpoint_module.write_checkpoint(str(tmp_path), {"x": np.zeros(1)}, {"first": True})
    (tmp_path / ".checkpoint-partial-stale").write_bytes(b"left by a crash")
    checkpoint_module.write_checkpoint(str(tmp_path), arrays, {"value": [1.5, None, "s"]})
    assert checkpoint_files(tmp_path) == ["checkpoint-00000002.json", "checkpoint-00000002.npz"]
    read, state, path = checkpoint_module.read_checkpoint(str(tmp_path))
    assert path.endswith("checkpoint-00000002.json")
    assert state["value"] == [1.5, None, "s"] and "first" not in state
    assert read.keys() == arrays.keys()
    for name in arrays:
        np.testing.assert_array_equal(read[name], arrays[name])
        assert read[name].dtype == arrays[name].dtype
    assert checkpoint_module.read_checkpoint(str(tmp_path / "missing")) is None


def test_object_arrays_are_refused_not_pickled(tmp_path):
    with pytest.raises(TypeError, match="pickle"):
        checkpoint_module.write_checkpoint(str(tmp_path), {"bad": np.array([object()])}, {})


class _Loop:
    def __init__(self):
        self.total = np.float32(0.1)
        self.best = float("inf")
        self.rows = 3
        self.nested = type("Nested", (), {})()
        self.nested.mean = np.arange(3.0)
        self.nested.n = np.int64(7)
        self.log = {"loss": [np.float64(0.5), float("nan")], "step": (1, 2)}
        self.ended_by = None


def test_loop_state_round_trips_with_its_numpy_scalar_types():
    """A float32 running sum must resume as float32 (float64 would add differently)."""
    loop, arrays = _Loop(), {}
    encoded = json.loads(json.dumps(checkpoint_module.encode(loop, arrays, "loop")))
    target = _Loop()
    target.total, target.best, target.rows, target.nested.mean, target.nested.n = np.float32(9), 0.0, 0, None, 0
    checkpoint_module.restore_attributes(target, checkpoint_module.decode(encoded, arrays))
    assert type(target.total) is np.float32 and target.total == loop.total
    assert target.best == np.inf and target.rows == 3 and target.ended_by is None
    assert type(target.nested.n) is np.int64 and target.nested.n == 7
    np.testing.assert_array_equal(target.nested.mean, loop.nested.mean)
    assert type(target.log["loss"][0]) is np.float64 and np.isnan(target.log["loss"][1])
    assert target.log["step"] == [1, 2]
