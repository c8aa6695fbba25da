"""``skdict train DATA --target TARGET`` and ``skdict evaluate MODEL DATA --target TARGET``: transcoders.

The oracle is the in-memory ``fit(X_train, Y_train)`` of the same rows with the same parameters,
and :func:`skdict.cli._summary.measure` (``score(X, Y)``, the firing frequencies of ``X``'s codes).
"""

import json
import os

import numpy as np
import pytest
from safetensors.numpy import save_file
from sklearn.exceptions import ConvergenceWarning

from skdict import ReLUSAE, TopKSAE
from skdict.__main__ import main
from skdict.cli import _data, _summary
from skdict.io import load, load_saelens

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.usefixtures("no_plots"),
]

#: A tiny model and budget; --model and its own option (--k or --alpha) are added per test.
TINY = ["--n-components", "16", "--max-steps", "12", "--batch-size", "32", "--seed", "0", "--quiet", "--device", "cpu"]
#: --model -> (class, its CLI option, the same as a parameter).
MODELS = {"topk": (TopKSAE, ["--k", "2"], {"k": 2}), "relu": (ReLUSAE, ["--alpha", "0.01"], {"alpha": 0.01})}


@pytest.fixture
def no_plots(monkeypatch):
    """Skip drawing (matplotlib's rendering is slow and plots are tested in test_train.py)."""
    monkeypatch.setattr(_summary, "write_plots", lambda *args, **kwargs: [])


@pytest.fixture
def XY(tmp_path):
    """X (400, 8) and Y = ReLU(X M) (400, 6): an MLP layer's input and output; saved as x.npy and y.npy."""
    rng = np.random.default_rng(3)
    X = (rng.normal(size=(400, 8)) @ rng.normal(size=(8, 8))).astype(np.float32)
    Y = np.maximum(X @ rng.normal(size=(8, 6)).astype(np.float32), 0)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y)
    return X, Y


def spec(tmp_path, name):
    return str(tmp_path / name)


def train(tmp_path, model="topk", *extra, target="y.npy", out="out"):
    options = MODELS[model][1] if model in MODELS else []
    argv = ["train", spec(tmp_path, "x.npy"), "--target", spec(tmp_path, target), "--model", model, *TINY, *options,
            *extra, "-o", spec(tmp_path, out)]
    return main(argv)


def reference_fit(model, X, Y):
    cls, _, params = MODELS[model]
    with pytest.warns(ConvergenceWarning):
        return cls(n_components=16, max_steps=12, batch_size=32, random_state=0, device="cpu", **params).fit(X, Y)


@pytest.mark.parametrize("model", ["topk", "relu"])
@pytest.mark.parametrize("target_format", ["npy", "safetensors"])
def test_the_cli_transcoder_is_the_in_memory_fit_of_the_rows_before_the_held_out_tail(tmp_path, XY, capsys, model,
                                                                                      target_format):
    X, Y = XY
    target = "y.npy"
    if target_format == "safetensors":
        save_file({"mlp_out": Y, "ids": np.arange(400)}, spec(tmp_path, "y.safetensors"))
        target = "y.safetensors:mlp_out"
    assert train(tmp_path, model, "--eval-fraction", "0.1", target=target) == 0  # holds out the last 40 rows
    trained, reference = load(spec(tmp_path, "out/model")), reference_fit(model, X[:360], Y[:360])
    assert trained.is_transcoder_ and trained.components_.shape == (16, 6)
    for name in ("encoder_", "encoder_bias_", "components_", "decoder_bias_", "input_center_"):
        np.testing.assert_array_equal(getattr(trained, name), getattr(reference, name), err_msg=name)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert (metrics["n_train_rows"], metrics["n_rows"], metrics["n_steps"]) == (360, 40, 12)
    assert metrics["kind"] == "transcoder" and metrics["target"] == spec(tmp_path, target)
    assert (metrics["n_features"], metrics["n_target_features"]) == (8, 6)
    np.testing.assert_allclose(metrics["explained_variance"], reference.score(X[360:], Y[360:]), rtol=1e-6)
    codes = reference.transform(X[360:])
    np.testing.assert_allclose(metrics["l0"], np.count_nonzero(codes) / 40, rtol=1e-12)
    assert metrics["dead_latents"] == int(np.count_nonzero(~codes.any(axis=0)))
    title = (tmp_path / "out" / "report.md").read_text().splitlines()[1]
    assert title == (f"{type(reference).__name__} transcoder on 40 held-out rows of {spec(tmp_path, 'x.npy')} "
                     f"-> targets {spec(tmp_path, target)}")
    assert title in capsys.readouterr().out


def test_the_held_out_figures_are_measure_of_the_held_out_pairs(tmp_path, XY):
    assert train(tmp_path, "relu", "--eval-fraction", "0.25") == 0
    model = load(spec(tmp_path, "out/model"))
    with _data.opened(spec(tmp_path, "x.npy")) as X, _data.opened(spec(tmp_path, "y.npy")) as Y:
        (_, X_held), (_, Y_held) = _data.split_tail(X, 100), _data.split_tail(Y, 100)
        expected, _ = _summary.measure(model, X_held, Y_held)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert {key: metrics[key] for key in expected} == expected


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_row_counts_that_differ_are_a_usage_error_naming_both_files_and_counts(tmp_path, XY, capsys, command):
    np.save(tmp_path / "short.npy", XY[1][:399])
    if command == "train":
        status = train(tmp_path, target="short.npy")
        assert not (tmp_path / "out").exists()
    else:
        assert train(tmp_path) == 0
        capsys.readouterr()
        status = main(["evaluate", spec(tmp_path, "out/model"), spec(tmp_path, "x.npy"), "--target",
                       spec(tmp_path, "short.npy"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert status == 2
    assert f"DATA {spec(tmp_path, 'x.npy')} has 400 rows but TARGET {spec(tmp_path, 'short.npy')} has 399" in err


def test_a_nan_target_row_is_named_and_exits_1(tmp_path, XY, capsys):
    bad = XY[1].copy()
    bad[123, 4] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    assert train(tmp_path, target="nan.npy") == 1
    err = capsys.readouterr().err
    assert "nan.npy: row 123" in err and "NaN or infinity" in err and "Traceback" not in err


def test_a_missing_target_is_named_as_target(tmp_path, XY, capsys):
    assert train(tmp_path, target="absent.npy") == 2
    assert f"TARGET {spec(tmp_path, 'absent.npy')!r} does not exist" in capsys.readouterr().err


def test_mp_is_refused_as_a_transcoder_with_the_reason(tmp_path, XY, capsys):
    assert train(tmp_path, "mp", "--k", "2") == 2
    err = capsys.readouterr().err
    assert "--target does not apply to --model mp" in err and "tied dictionary" in err
    assert "topk, batchtopk, relu, jumprelu, gated, matryoshka" in err
    assert not (tmp_path / "out").exists()


def test_the_image_shape_is_that_of_the_targets(tmp_path, XY, capsys):
    assert train(tmp_path, "topk", "--image-shape", "2,4") == 2  # DATA's 8 features, not TARGET's 6
    assert f"--image-shape 2,4 holds 8 pixels, but TARGET {spec(tmp_path, 'y.npy')} has 6 features" in (
        capsys.readouterr().err)
    assert train(tmp_path, "topk", "--image-shape", "2,3") == 0


def test_a_topk_transcoder_is_saved_and_its_saelens_export_skipped_with_the_reason(tmp_path, XY, capsys):
    assert train(tmp_path, "topk") == 0
    err = capsys.readouterr().err
    assert "SAELens export skipped: TopKSAE was fitted as a transcoder, and SAELens 6 has no TopK transcoder" in err
    assert sorted(os.listdir(tmp_path / "out")) == ["metrics.json", "model", "report.md"]


def test_a_relu_transcoders_saelens_folder_loads_back_with_the_same_codes(tmp_path, XY, capsys):
    X, Y = XY
    assert train(tmp_path, "relu") == 0
    assert "SAELens folder written to" in capsys.readouterr().err
    native, saelens = load(spec(tmp_path, "out/model")), load_saelens(spec(tmp_path, "out/saelens"))
    assert saelens.is_transcoder_ and saelens.n_targets_ == 6
    np.testing.assert_allclose(saelens.transform(X), native.transform(X), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(saelens.predict(X), native.predict(X), rtol=1e-4, atol=1e-4)
    # evaluate reads either folder and prints the same figures (the title names the MODEL path)
    outputs = []
    for folder in ("model", "saelens"):
        assert main(["evaluate", spec(tmp_path, f"out/{folder}"), spec(tmp_path, "x.npy"), "--target",
                     spec(tmp_path, "y.npy"), "--device", "cpu"]) == 0
        outputs.append(capsys.readouterr().out.splitlines())
    assert outputs[0][1:] == outputs[1][1:] and "transcoder from" in outputs[0][0]
    assert f"  explained variance           {native.score(X, Y):.4f}" in outputs[0]


def test_evaluate_writes_the_transcoders_figures(tmp_path, XY):
    X, Y = XY
    assert train(tmp_path) == 0
    assert main(["evaluate", spec(tmp_path, "out/model"), spec(tmp_path, "x.npy"), "--target", spec(tmp_path, "y.npy"),
                 "--device", "cpu", "-o", spec(tmp_path, "eval")]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    model = load(spec(tmp_path, "out/model"))
    np.testing.assert_allclose(metrics["explained_variance"], model.score(X, Y), rtol=1e-6)
    assert (metrics["kind"], metrics["n_rows"], metrics["target"]) == ("transcoder", 400, spec(tmp_path, "y.npy"))


def test_evaluate_refuses_a_kind_or_width_that_is_not_the_models(tmp_path, XY, capsys):
    X, Y = XY
    assert train(tmp_path) == 0
    assert main(["train", spec(tmp_path, "x.npy"), "--model", "topk", "--k", "2", *TINY, "-o", spec(tmp_path, "sae")]) == 0
    np.save(tmp_path / "wide.npy", np.hstack([Y, Y]))
    x, y, transcoder, sae = (spec(tmp_path, name) for name in ("x.npy", "y.npy", "out/model", "sae/model"))
    capsys.readouterr()
    cases = [
        ([transcoder, x], f"MODEL {transcoder} is a transcoder (it encodes 8 features and reconstructs 6 others): "
                          "pass its targets with --target TARGET"),
        ([sae, x, "--target", y], f"MODEL {sae} is an SAE (it reconstructs its input DATA): drop --target"),
        ([transcoder, y, "--target", y], f"DATA {y} has 6 features per row, but MODEL {transcoder} has 8 input"),
        ([transcoder, x, "--target", spec(tmp_path, "wide.npy")],
         f"TARGET {spec(tmp_path, 'wide.npy')} has 12 features per row, but MODEL {transcoder} has 6 output"),
        ([sae, y], f"DATA {y} has 6 features per row, but MODEL {sae} has 8 input"),
    ]
    for argv, message in cases:
        assert main(["evaluate", *argv, "--device", "cpu"]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
