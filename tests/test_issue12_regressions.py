"""Regressions found by an adversarial pass over issue 12's surfaces: io, SAELens/Gemma Scope, CLI, plotting.

Each test feeds one bad input that used to load, plot or exit silently wrong (or with a raw
KeyError/TypeError/traceback) and checks the clear refusal that replaced it.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file
from sklearn.exceptions import NotFittedError

import skdict.io
from skdict import BatchTopKSAE, JumpReLUSAE, ReLUSAE, TopKSAE

SAELENS_FIXTURES = os.path.join(os.path.dirname(__file__), "io", "fixtures", "saelens")
N_FEATURES = 8


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).normal(size=(120, N_FEATURES)).astype(np.float32)


@pytest.fixture(scope="module")
def topk(X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TopKSAE(n_components=16, k=4, max_iter=2, random_state=0).fit(X)


@pytest.fixture
def saved(topk, tmp_path):
    return skdict.io.save(topk, tmp_path / "model")


def _edit_tensors(folder, edit):
    """Rewrite model.safetensors with ``edit`` applied, keeping its metadata and config.json consistent."""
    path = os.path.join(folder, "model.safetensors")
    with open(os.path.join(folder, "config.json")) as handle:
        config = json.load(handle)
    arrays = load_file(path)
    edit(arrays)
    metadata = {"format": "skdict", "format_version": "1"}
    if "save_id" in config:
        metadata["save_id"] = config["save_id"]
    save_file(arrays, path, metadata=metadata)
    config["arrays_bytes"] = os.path.getsize(path)
    for name, value in arrays.items():
        if name in config["arrays"]:
            config["arrays"][name] = {"shape": list(value.shape), "dtype": str(value.dtype)}
    with open(os.path.join(folder, "config.json"), "w") as handle:
        json.dump(config, handle)


def _edit_config(folder, edit):
    path = os.path.join(folder, "config.json")
    with open(path) as handle:
        config = json.load(handle)
    edit(config)
    with open(path, "w") as handle:
        json.dump(config, handle)


# ------------------------------------------------------------------ skdict.io.save / load
def test_load_refuses_nan_weights(saved, X):
    """Old: a NaN in encoder_ loaded and every code came out NaN."""
    _edit_tensors(saved, lambda a: a["encoder_"].__setitem__((3, 5), np.nan))
    with pytest.raises(ValueError, match=r"encoder_ holds 1 NaN or infinite value\(s\), the first at index \(3, 5\)"):
        skdict.io.load(saved)


@pytest.mark.parametrize("dtype", ["int32", "float16", "float64"])
def test_load_refuses_a_parameter_of_another_dtype(saved, dtype):
    """Old: an int32 encoder_ loaded next to float32 atoms (partial_fit then failed in NumPy's casting)."""
    _edit_tensors(saved, lambda a: a.update(encoder_=a["encoder_"].astype(dtype)))
    with pytest.raises(ValueError, match=f"encoder_ has dtype {dtype}.*components_ is float32"):
        skdict.io.load(saved)


def test_load_refuses_the_config_of_another_save(topk, X, tmp_path):
    """Old: a TopK folder whose config.json was replaced by a ReLU model's loaded as a ReLUSAE with TopK's weights."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        relu = ReLUSAE(n_components=16, max_iter=2, random_state=0).fit(X)
    top_path = skdict.io.save(topk, tmp_path / "topk")
    relu_path = skdict.io.save(relu, tmp_path / "relu")
    shutil.copy(os.path.join(relu_path, "config.json"), os.path.join(top_path, "config.json"))
    with pytest.raises(ValueError, match="two different saves"):
        skdict.io.load(top_path)


def test_load_refuses_unlisted_tensors(saved):
    """Old: a tensor config.json does not list was ignored."""
    _edit_tensors(saved, lambda a: a.update(extra=np.zeros(3, np.float32)))
    with pytest.raises(ValueError, match=r"holds tensor\(s\) \['extra'\] that config.json does not list"):
        skdict.io.load(saved)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c.update(format_version="1"), "format version '1', not a whole number"),
        (lambda c: c.update(format_version=True), "format version True, not a whole number"),
        (lambda c: c.pop("arrays"), "field 'arrays' is missing or not a JSON object"),
        (lambda c: c.update(arrays=[]), "field 'arrays' is missing or not a JSON object"),
        (lambda c: c["params"].update(k=-1), "The 'k' parameter of TopKSAE must be"),
        (lambda c: c["fitted"].update(__dict__={"dict": {}}), "fitted attribute '__dict__'"),
    ],
)
def test_load_refuses_a_damaged_config_by_name(saved, edit, message):
    """Old: a string version was called 'newer', True loaded, a missing 'arrays' raised KeyError,
    k=-1 loaded unchecked, a fitted '__dict__' replaced the instance dictionary (AttributeError)."""
    _edit_config(saved, edit)
    with pytest.raises(ValueError, match=message):
        skdict.io.load(saved)


def test_load_of_a_file_path_names_the_folder(saved):
    with pytest.raises(ValueError, match="is a file: skdict.io.load reads the folder"):
        skdict.io.load(os.path.join(saved, "config.json"))


def test_save_refuses_a_half_set_sae(topk, tmp_path):
    """Old: an SAE with only components_ set saved, and its folder failed to load with AttributeError."""
    half = TopKSAE(n_components=16, k=4)
    half.components_ = topk.components_
    with pytest.raises(NotFittedError, match="only partly fitted"):
        skdict.io.save(half, tmp_path / "half")
    assert not (tmp_path / "half").exists()


# ------------------------------------------------------------------ SAELens / Gemma Scope
def _saelens_copy(tmp_path, name, cfg_edit=None, tensor_edit=None):
    folder = tmp_path / name
    shutil.copytree(os.path.join(SAELENS_FIXTURES, name), folder)
    if cfg_edit is not None:
        cfg = json.loads((folder / "cfg.json").read_text())
        cfg_edit(cfg)
        (folder / "cfg.json").write_text(json.dumps(cfg))
    if tensor_edit is not None:
        tensors = load_file(str(folder / "sae_weights.safetensors"))
        tensor_edit(tensors)
        save_file(tensors, str(folder / "sae_weights.safetensors"))
    return folder


@pytest.mark.parametrize(
    "name, tensor, value",
    [("topk", "W_enc", np.nan), ("standard", "W_dec", np.inf), ("jumprelu", "threshold", np.nan)],
)
def test_load_saelens_refuses_non_finite_tensors(tmp_path, name, tensor, value):
    """Old: all three loaded; the codes were NaN (W_enc, W_dec) or the latent silently never fired (threshold)."""

    def edit(tensors):
        tensors[tensor].flat[0] = value

    folder = _saelens_copy(tmp_path, name, tensor_edit=edit)
    with pytest.raises(ValueError, match=f"tensor {tensor} holds 1 NaN or infinite"):
        skdict.io.load_saelens(folder)


def test_load_saelens_keeps_infinite_thresholds(tmp_path):
    """+inf (never fires) and -inf (fires as ReLU) thresholds are meaningful and still load."""

    def edit(tensors):
        tensors["threshold"][:2] = [np.inf, -np.inf]

    model = skdict.io.load_saelens(_saelens_copy(tmp_path, "jumprelu", tensor_edit=edit))
    assert model.threshold_[0] == np.inf and model.threshold_[1] == 0.0


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c.pop("d_in"), "d_in=None is not a positive whole number"),
        (lambda c: c.update(d_sae="32"), "d_sae='32' is not a positive whole number"),
        (lambda c: c.update(k=0), "k=0 is not a positive whole number"),
        (lambda c: c.update(k=2.5), "k=2.5 is not a positive whole number"),
    ],
)
def test_load_saelens_refuses_bad_sizes_by_name(tmp_path, edit, message):
    """Old: a missing d_in raised KeyError, a string d_sae an int() error, k=0 loaded, k=2.5 became k=2."""
    with pytest.raises(ValueError, match=message):
        skdict.io.load_saelens(_saelens_copy(tmp_path, "topk", cfg_edit=edit))


def test_load_saelens_refuses_a_bad_batchtopk_k(tmp_path):
    """Old: metadata k=0 gave a BatchTopKSAE with k=0."""
    folder = _saelens_copy(
        tmp_path, "batchtopk", cfg_edit=lambda c: c["metadata"]["training_architecture_details"].update(k=0)
    )
    with pytest.raises(ValueError, match="training_architecture_details k=0 is not a positive number"):
        skdict.io.load_saelens(folder)


@pytest.mark.parametrize(
    "file, content, message",
    [
        ("cfg.json", b"{", "cfg.json is not a JSON file"),
        ("cfg.json", b"[1]", "holds a JSON list"),
        ("sae_weights.safetensors", b"\x00" * 7, "sae_weights.safetensors is not a safetensors file"),
    ],
)
def test_load_saelens_names_a_damaged_file(tmp_path, file, content, message):
    """Old: JSONDecodeError, a TypeError of dict(), a raw SafetensorError."""
    folder = _saelens_copy(tmp_path, "topk")
    (folder / file).write_bytes(content)
    with pytest.raises(ValueError, match=message):
        skdict.io.load_saelens(folder)


def test_export_saelens_writes_nothing_when_metadata_is_not_json(tmp_path):
    """Old: the weights were written, then json.dumps failed: a folder of weights without cfg.json."""
    model = skdict.io.load_saelens(os.path.join(SAELENS_FIXTURES, "jumprelu"))
    with pytest.raises(TypeError, match="cfg.json cannot hold the metadata"):
        skdict.io.export_saelens(model, tmp_path / "out", model_name=object())
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_export_saelens_to_a_file_path(tmp_path):
    model = skdict.io.load_saelens(os.path.join(SAELENS_FIXTURES, "jumprelu"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="is a file; export_saelens writes a folder"):
        skdict.io.export_saelens(model, tmp_path / "file")


def _gemma_params(rng, d_in=6, d_sae=10):
    return {
        "W_enc": rng.normal(size=(d_in, d_sae)).astype(np.float32),
        "W_dec": rng.normal(size=(d_sae, d_in)).astype(np.float32),
        "b_enc": np.zeros(d_sae, np.float32),
        "b_dec": np.zeros(d_in, np.float32),
        "threshold": np.full(d_sae, 0.1, np.float32),
    }


def test_load_gemma_scope_names_files_that_are_not_npz(tmp_path):
    """Old: a damaged archive raised BadZipFile, a .npy a TypeError about context managers."""
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(ValueError, match="bad.npz is not a readable .npz archive"):
        skdict.io.load_gemma_scope(tmp_path / "bad.npz")
    np.save(tmp_path / "one.npy", np.zeros((3, 3)))
    with pytest.raises(ValueError, match="one.npy holds a single array, not an .npz archive"):
        skdict.io.load_gemma_scope(tmp_path / "one.npy")


def test_load_gemma_scope_refuses_nan(tmp_path):
    params = _gemma_params(np.random.default_rng(0))
    params["b_enc"][4] = np.nan
    np.savez(tmp_path / "params.npz", **params)
    with pytest.raises(ValueError, match=r"tensor b_enc holds 1 NaN or infinite value\(s\), the first at index \(4,\)"):
        skdict.io.load_gemma_scope(tmp_path / "params.npz")


# ------------------------------------------------------------------ skdict train / evaluate
def _train_argv(data, output, *extra):
    return ["train", str(data), "--model", "topk", "--n-components", "8", "--k", "2", "--max-steps", "3", "-q",
            "--output", str(output), *extra]


def test_ctrl_c_during_training_says_nothing_was_written(tmp_path, monkeypatch, capsys):
    """Old: Ctrl-C printed the traceback of the prefetch queue's wait; now one line, status 130, no folder."""
    from skdict.cli import main

    np.save(tmp_path / "acts.npy", np.random.default_rng(0).normal(size=(200, N_FEATURES)).astype(np.float32))

    def interrupted_fit(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(TopKSAE, "fit", interrupted_fit)
    try:
        status = main(_train_argv(tmp_path / "acts.npy", tmp_path / "out"))
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped skdict train (a traceback, no word on what is on disk)")
    err = capsys.readouterr().err
    assert status == 130
    assert "interrupted: training stopped before the model was saved: nothing of this run was written" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_a_bad_held_out_row_says_the_model_is_saved_but_unmeasured(tmp_path, capsys):
    """Old: 'row 199 contains NaN ... before training' and status 1, with a model folder left unexplained."""
    from skdict.cli import main

    X = np.random.default_rng(0).normal(size=(200, N_FEATURES)).astype(np.float32)
    X[-1, 2] = np.nan  # in the held-out tail (--eval-fraction 0.05: the last 10 rows)
    np.save(tmp_path / "acts.npy", X)
    status = main(_train_argv(tmp_path / "acts.npy", tmp_path / "out", "--eval-fraction", "0.05"))
    err = capsys.readouterr().err
    assert status == 1
    assert "row 199" in err and "model is saved in" in err and "no report was written" in err
    assert skdict.io.load(tmp_path / "out" / "model").n_features_in_ == N_FEATURES
    assert not (tmp_path / "out" / "metrics.json").exists()


# ------------------------------------------------------------------ firing_frequency / top_activating / plotting
@pytest.mark.parametrize("block_rows", [0, -1, 2.5])
def test_firing_frequency_refuses_a_bad_block_size(topk, X, block_rows):
    """Old: 0 raised range()'s 'arg 3 must not be zero', -1 read nothing and said 'X has no rows'."""
    from skdict.metrics import firing_frequency

    with pytest.raises(ValueError, match=f"block_rows must be a positive integer .*got {block_rows}"):
        firing_frequency(topk, X, block_rows=block_rows)


def test_plot_atoms_refuses_bad_image_shapes_and_atoms(topk):
    """Old: (-4, -4) multiplied to 16 and failed in NumPy's reshape; NaN atoms in matplotlib's axis limits;
    an unfitted estimator was read as 'an array of shape ()'."""
    pytest.importorskip("matplotlib")
    from skdict.plotting import plot_atoms

    with pytest.raises(ValueError, match=r"image_shape=\(-4, -2\) cannot show an atom of 8 features"):
        plot_atoms(topk, image_shape=(-4, -2))
    with pytest.raises(ValueError, match="the atoms hold NaN or infinity"):
        plot_atoms(np.full((3, N_FEATURES), np.nan))
    with pytest.raises(NotFittedError, match="TopKSAE is not fitted"):
        plot_atoms(TopKSAE())


@pytest.mark.parametrize(
    "frequencies, message",
    [([0.1, np.nan], "latent 1 has nan"), ([0.1, 3.0], "latent 1 has 3.0"), ([], "non-empty 1-D array")],
)
def test_plot_feature_density_refuses_frequencies_that_are_not_fractions(frequencies, message):
    """Old: each drew a histogram silently missing or misplacing latents (an empty one for [])."""
    pytest.importorskip("matplotlib")
    from skdict.plotting import plot_feature_density

    with pytest.raises(ValueError, match=message):
        plot_feature_density(frequencies=np.asarray(frequencies))


@pytest.mark.parametrize("estimators", [TopKSAE(), {}, {"a": 3}], ids=["unfitted", "empty", "not-an-estimator"])
def test_plot_training_curves_refuses_when_nothing_has_a_history(estimators):
    """Old: a figure of empty panels came back as if it were a plot."""
    pytest.importorskip("matplotlib")
    from skdict.plotting import plot_training_curves

    with pytest.raises(ValueError, match="has a history_ with any of"):
        plot_training_curves(estimators)


def test_plot_top_activating_refuses_n_latents_zero(topk, X):
    """Old: n_latents=0 said 'no latent of TopKSAE fires on X', which was false."""
    pytest.importorskip("matplotlib")
    from skdict.plotting import plot_top_activating

    with pytest.raises(ValueError, match="n_latents must be a positive integer"):
        plot_top_activating(topk, X, image_shape=(2, 4), n_latents=0)


@pytest.mark.parametrize(
    "options, message",
    [
        (["--k", "8", "--n-components", "4"], "--k 8 is larger than --n-components 4"),
        (["--k", "0"], "The 'k' parameter of TopKSAE must be"),
        (["--learning-rate", "0"], "The 'learning_rate' parameter of TopKSAE must be"),
    ],
)
def test_bad_model_options_are_usage_errors(tmp_path, capsys, options, message):
    """Old: these were found by fit after the data was opened and exited 1 (a failure), not 2 (bad usage)."""
    from skdict.cli import main

    np.save(tmp_path / "acts.npy", np.zeros((50, N_FEATURES), np.float32))
    argv = ["train", str(tmp_path / "acts.npy"), "--model", "topk", "-q", "--output", str(tmp_path / "out"), *options]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
