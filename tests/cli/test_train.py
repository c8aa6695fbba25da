"""``skdict train`` and ``skdict evaluate``: in-process through ``skdict.__main__.main``, once as a subprocess."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import save_file
from sklearn.exceptions import ConvergenceWarning

from skdict import GatedSAE, JumpReLUSAE, MPSAE, ReLUSAE, TopKSAE
from skdict.__main__ import main
from skdict.cli import _summary, _train
from skdict.metrics import l0

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

#: A tiny model and budget: every run below trains in a fraction of a second.
TINY = ["--n-components", "16", "--k", "2", "--max-steps", "12", "--batch-size", "32", "--seed", "0", "--quiet",
        "--device", "cpu"]


@pytest.fixture
def X():
    rng = np.random.default_rng(1)
    return (rng.normal(size=(400, 8)) @ rng.normal(size=(8, 8))).astype(np.float32)


@pytest.fixture
def npy(tmp_path, X):
    np.save(tmp_path / "acts.npy", X)
    return str(tmp_path / "acts.npy")


@pytest.fixture
def no_plots(monkeypatch):
    """Skip drawing (matplotlib's rendering is the slow part; one test below draws for real)."""
    monkeypatch.setattr(_summary, "write_plots", lambda *args, **kwargs: [])


def reference_fit(X, **extra):
    """The in-memory fit the CLI's options stand for."""
    params = {"n_components": 16, "k": 2, "max_steps": 12, "batch_size": 32, "random_state": 0, "device": "cpu", **extra}
    with pytest.warns(ConvergenceWarning):
        return TopKSAE(**params).fit(X)


def load(path):
    from skdict.io import load as load_model

    return load_model(path)


def assert_same_model(a, b):
    for name in ("encoder_", "encoder_bias_", "components_", "decoder_bias_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def data_specs(tmp_path, X):
    h5py = pytest.importorskip("h5py")
    zarr = pytest.importorskip("zarr")
    (tmp_path / "shards").mkdir()
    np.save(tmp_path / "shards" / "s0.npy", X[:150])
    np.save(tmp_path / "shards" / "s1.npy", X[150:])
    save_file({"resid": X, "tokens": np.arange(400, dtype=np.int64)}, str(tmp_path / "acts.safetensors"))
    save_file({"resid": X}, str(tmp_path / "only.safetensors"))
    with h5py.File(tmp_path / "acts.h5", "w") as f:
        f.create_dataset("layer/resid", data=X, chunks=(50, 8))
    z = zarr.open(str(tmp_path / "acts.zarr"), mode="w", shape=X.shape, chunks=(50, 8), dtype="f4")
    z[:] = X
    np.save(tmp_path / "acts.npy", X)
    return {
        "npy": str(tmp_path / "acts.npy"),
        "shards": str(tmp_path / "shards"),
        "glob": str(tmp_path / "shards" / "*.npy"),
        "safetensors:name": str(tmp_path / "acts.safetensors") + ":resid",
        "safetensors": str(tmp_path / "only.safetensors"),
        "h5": str(tmp_path / "acts.h5") + ":/layer/resid",
        "zarr": str(tmp_path / "acts.zarr"),
    }


@pytest.mark.usefixtures("no_plots")
def test_every_data_kind_trains_the_model_of_the_rows_before_the_held_out_tail(tmp_path, X, capsys):
    reference = reference_fit(X[:360])  # --eval-fraction 0.1 holds out the last 40 rows
    for kind, spec in data_specs(tmp_path, X).items():
        out = tmp_path / f"out-{kind}"
        assert main(["train", spec, "--model", "topk", *TINY, "--eval-fraction", "0.1", "-o", str(out)]) == 0, kind
        assert_same_model(load(out / "model"), reference)
        metrics = json.loads((out / "metrics.json").read_text())
        assert (metrics["n_train_rows"], metrics["n_rows"], metrics["n_steps"]) == (360, 40, 12), kind
        np.testing.assert_allclose(metrics["explained_variance"], reference.score(X[360:]), rtol=1e-6, err_msg=kind)
    assert "explained variance" in capsys.readouterr().out


def test_the_report_states_what_the_metrics_say_and_draws_the_plots(tmp_path, X, npy, capsys):
    pytest.importorskip("matplotlib")
    X8 = np.abs(X[:, :8])  # 8 features as a 2 x 4 image
    np.save(npy, X8)
    out = tmp_path / "out"
    assert main(["train", npy, "--model", "topk", *TINY, "--eval-fraction", "0.25", "--image-shape", "2,4",
                 "-o", str(out)]) == 0
    model, held_out = load(out / "model"), X8[300:]
    metrics = json.loads((out / "metrics.json").read_text())
    codes = model.transform(held_out)
    np.testing.assert_allclose(metrics["l0"], l0(codes), rtol=1e-12)
    frequencies = (codes != 0).mean(axis=0)
    assert metrics["dead_latents"] == int((frequencies == 0).sum())
    assert metrics["dense_latents"] == int((frequencies > 0.1).sum())
    assert metrics["n_samples_seen"] == model.n_samples_seen_ and metrics["fit_seconds"] > 0
    assert any("max_steps=12 ran out" in note for note in metrics["warnings"])
    # 12 steps are fewer samples than dead_after: the training dead fraction is not known yet, and says so
    assert metrics["training_dead_fraction"] is None and "dead in training" in (out / "report.md").read_text()
    for name in ("report.md", "feature_density.png", "training_curves.png", "atoms.png", "saelens/cfg.json",
                 "model/config.json"):
        assert (out / name).is_file(), name
    report = (out / "report.md").read_text()
    assert f"{metrics['explained_variance']:.4f}" in report and "fire on > 10% of the rows" in report
    captured = capsys.readouterr()
    assert report.strip("`\n") in captured.out
    assert "plot written to" in captured.err and "plots skipped" not in captured.err


@pytest.mark.usefixtures("no_plots")
def test_evaluate_prints_the_models_score_on_the_data(tmp_path, X, npy, capsys):
    out = tmp_path / "out"
    assert main(["train", npy, "--model", "topk", *TINY, "-o", str(out)]) == 0
    np.save(tmp_path / "heldout.npy", X[::-1].copy())
    capsys.readouterr()
    report = tmp_path / "eval"
    assert main(["evaluate", str(out / "model"), str(tmp_path / "heldout.npy"), "--device", "cpu",
                 "--output", str(report)]) == 0
    expected = load(out / "model").score(X[::-1].copy())
    assert f"explained variance           {expected:.4f}" in capsys.readouterr().out
    metrics = json.loads((report / "metrics.json").read_text())
    np.testing.assert_allclose(metrics["explained_variance"], expected, rtol=1e-6)
    assert metrics["n_rows"] == 400


@pytest.mark.usefixtures("no_plots")
def test_evaluate_reads_a_saelens_folder(tmp_path, npy, capsys):
    out = tmp_path / "out"
    assert main(["train", npy, "--model", "topk", *TINY, "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out / "saelens"), npy, "--device", "cpu"]) == 0
    saelens = capsys.readouterr().out
    assert main(["evaluate", str(out / "model"), npy, "--device", "cpu"]) == 0
    native = capsys.readouterr().out
    # the same figures: only the title (the MODEL path) differs
    assert saelens.splitlines()[1:] == native.splitlines()[1:]


@pytest.mark.usefixtures("no_plots")
@pytest.mark.parametrize(("model", "options", "cls"), [
    ("mp", ["--k", "2"], MPSAE), ("jumprelu", ["--alpha", "0.01"], JumpReLUSAE), ("gated", ["--alpha", "0.01"], GatedSAE),
    ("relu", ["--target-l0", "3", "--resample-dead"], ReLUSAE),
])
def test_other_models_take_their_own_options(tmp_path, npy, capsys, model, options, cls):
    out = tmp_path / "out"
    tiny = [option for option in TINY if option not in ("--k", "2")]
    assert main(["train", npy, "--model", model, *tiny, *options, "-o", str(out)]) == 0
    trained = load(out / "model")
    assert type(trained) is cls and trained.n_steps_ == 12
    if "--target-l0" in options:  # the options reach the estimator
        assert trained.target_l0 == 3.0 and trained.resample_dead and hasattr(trained, "alpha_")
    assert (out / "saelens").is_dir() == (model != "mp")
    if model == "mp":
        assert "SAELens export skipped" in capsys.readouterr().err


@pytest.mark.usefixtures("no_plots")
def test_nothing_is_overwritten_without_overwrite(tmp_path, npy, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["train", npy, "--model", "topk", *TINY, "-o", str(out)]) == 2
    assert f"--output {out} exists and is not empty; pass --overwrite" in capsys.readouterr().err
    assert sorted(os.listdir(out)) == ["notes.txt"]
    assert main(["train", npy, "--model", "topk", *TINY, "-o", str(out), "--overwrite"]) == 0
    assert (out / "model").is_dir() and (out / "notes.txt").read_text() == "mine"
    # a second run replaces its own files
    assert main(["train", npy, "--model", "topk", *TINY, "--seed", "1", "-o", str(out), "--overwrite"]) == 0
    assert load(out / "model").random_state == 1


def test_without_matplotlib_the_plots_are_skipped_and_the_rest_written(tmp_path, npy, monkeypatch, capsys):
    monkeypatch.setattr(_summary, "matplotlib_installed", lambda: False)
    out = tmp_path / "out"
    assert main(["train", npy, "--model", "topk", *TINY, "-o", str(out)]) == 0
    assert 'plots skipped: matplotlib is not installed (pip install "skdict[plot]", or from a checkout: pip install -e ".[plot]")' in capsys.readouterr().err
    assert sorted(name for name in os.listdir(out)) == ["metrics.json", "model", "report.md", "saelens"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--model", "relu", "--k", "4"],
            "--k does not apply to --model relu; it is an option of topk, batchtopk, matryoshka, mp",
        ),
        (["--model", "topk", "--alpha", "0.1"], "--alpha does not apply to --model topk"),
        (["--model", "topk", "--target-l0", "8"], "--target-l0 does not apply to --model topk; it is an option of relu"),
        (["--model", "topk", "--image-shape", "3,3"], "--image-shape 3,3 holds 9 pixels, but the data has 8 features"),
        (["--model", "topk", "--eval-fraction", "0.999"], "leaves 0 to train on"),
    ],
)
def test_bad_options_are_usage_errors(tmp_path, npy, capsys, argv, message):
    assert main(["train", npy, *argv, "--quiet", "-o", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_an_unknown_model_lists_the_models(tmp_path, npy, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", npy, "--model", "vanilla", "-o", str(tmp_path / "out")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'vanilla'" in err and all(name in err.split("choose from")[1] for name in _train.MODELS)


@pytest.mark.parametrize(
    ("content", "spec_suffix", "status", "message"),
    [
        ({"acts": np.zeros((40, 8), np.int64)}, "", 2, "dtype I64"),
        ({"acts": np.zeros((40, 8), np.float32), "ids": np.zeros(40, np.int64)}, "", 2, "2 tensors (acts, ids)"),
    ],
)
def test_bad_files_exit_nonzero_with_the_named_message(tmp_path, capsys, content, spec_suffix, status, message):
    path = str(tmp_path / "bad.safetensors")
    save_file(content, path)
    assert main(["train", path + spec_suffix, "--model", "topk", *TINY, "-o", str(tmp_path / "out")]) == status
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_non_finite_row_stops_training_with_its_row_named_and_exit_1(tmp_path, X):
    bad = X.copy()
    bad[123, 4] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "skdict", "train", str(tmp_path / "nan.npy"), "--model", "topk", *TINY, "-o", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 1
    assert "skdict train: error:" in result.stderr and "nan.npy: row 123" in result.stderr
    assert "NaN or infinity" in result.stderr and "Traceback" not in result.stderr


def test_debug_shows_the_traceback(tmp_path, capsys):
    (tmp_path / "acts.csv").write_text("1,2\n")
    assert main(["train", str(tmp_path / "acts.csv"), "--model", "topk", "-o", str(tmp_path / "o")]) == 2
    assert "not a format skdict reads" in capsys.readouterr().err
    from skdict.cli import DataError

    with pytest.raises(DataError):
        main(["train", str(tmp_path / "acts.csv"), "--model", "topk", "-o", str(tmp_path / "o"), "--debug"])


def test_a_diverged_fit_saves_the_last_sane_model_and_exits_1(tmp_path, npy, capsys):
    out = tmp_path / "out"
    status = main(["train", npy, "--model", "topk", "--n-components", "16", "--k", "2", "--learning-rate", "1e6",
                   "--max-steps", "50", "--quiet", "--device", "cpu", "-o", str(out)])
    assert status == 1
    assert "error: training diverged" in capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["error"].startswith("training diverged") and np.isfinite(metrics["explained_variance"])
    assert np.all(np.isfinite(load(out / "model").components_))


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_help_lists_every_option(capsys, command):
    parser = (_train if command == "train" else __import__("skdict.cli._evaluate", fromlist=["_"])).build_parser()
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    options = [string for action in parser._actions for string in action.option_strings]
    assert options and all(option in text for option in options)
    for word in ("DATA", "safetensors", "Exit status"):
        assert word in text
    if command == "train":
        assert all(name in text for name in _train.MODELS) and "early stopping" in text


def test_the_demo_help_names_the_subcommands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "skdict train DATA" in text and "skdict evaluate MODEL DATA" in text


@pytest.mark.usefixtures("no_plots")
def test_evaluate_reads_a_gemma_scope_params_npz(tmp_path, npy):
    out = tmp_path / "out"
    tiny = [option for option in TINY if option not in ("--k", "2")]
    assert main(["train", npy, "--model", "jumprelu", *tiny, "--alpha", "0.01", "-o", str(out)]) == 0
    model = load(out / "model")
    # Gemma Scope's convention: a = x W_enc + b_enc (no centring), W_enc of shape (d_in, d_sae)
    W_enc = model.encoder_.T
    np.savez(tmp_path / "params.npz", W_enc=W_enc, W_dec=model.components_, b_dec=model.decoder_bias_,
             b_enc=model.encoder_bias_ - model.decoder_bias_ @ W_enc, threshold=model.threshold_)
    for name, path in (("native", out / "model"), ("gemma", tmp_path / "params.npz")):
        assert main(["evaluate", str(path), npy, "--device", "cpu", "-o", str(tmp_path / name)]) == 0
    native, gemma = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("native", "gemma"))
    np.testing.assert_allclose(gemma["explained_variance"], native["explained_variance"], rtol=1e-5)
    np.testing.assert_allclose(gemma["l0"], native["l0"], atol=0.01)


def test_evaluate_refuses_what_is_not_a_model(tmp_path, npy, capsys):
    (tmp_path / "folder").mkdir()
    assert main(["evaluate", str(tmp_path / "folder"), npy]) == 2
    assert "is not a model skdict reads" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.usefixtures("no_plots")
def test_train_and_evaluate_on_a_gpu(tmp_path, npy):
    out = tmp_path / "out"
    on_cpu = [option for option in TINY if option not in ("--device", "cpu")]
    assert main(["train", npy, "--model", "topk", *on_cpu, "--device", "cuda", "-o", str(out)]) == 0
    for device in ("cuda", "cpu"):
        assert main(["evaluate", str(out / "model"), npy, "--device", device, "-o", str(tmp_path / device)]) == 0
    on_gpu, on_host = (json.loads((tmp_path / device / "metrics.json").read_text()) for device in ("cuda", "cpu"))
    trained = json.loads((out / "metrics.json").read_text())
    np.testing.assert_allclose(on_gpu["explained_variance"], on_host["explained_variance"], rtol=1e-4)
    assert trained["n_steps"] == 12 and "cuda" in trained["estimator"]


def test_the_training_dead_fraction_is_the_models_dead_latent_clock(tmp_path, npy, capsys):
    """Dead latents as the SAE libraries count them (silent for dead_after training samples), beside the held-out count."""
    out = tmp_path / "out"
    assert main(["train", npy, "--model", "topk", "--n-components", "32", "--k", "2", "--batch-size", "500",
                 "--max-samples", "11000", "--quiet", "-o", str(out)]) == 0
    model = load(out / "model")
    metrics = json.loads((out / "metrics.json").read_text())
    assert model.n_samples_seen_ >= model.dead_after
    assert metrics["training_dead_fraction"] == model.history_["dead_fraction"][-1]
    expected = int(np.count_nonzero(model._samples_since_fired >= model.dead_after))
    assert metrics["training_dead_fraction"] == expected / 32
    assert f"silent for the last {model.dead_after} training samples" in (out / "report.md").read_text()
