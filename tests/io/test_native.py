"""skdict.io.save / load: every estimator with arrays round-trips bit for bit, SAEs train on exactly, bad files are named."""

import json
import math
import os
import pickle
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from safetensors.numpy import load_file, save_file
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import skdict.io
from skdict import (
    LISTA,
    AnchoredSAE,
    BatchTopKSAE,
    GatedSAE,
    FISTADictionaryLearning,
    JumpReLUSAE,
    MatryoshkaSAE,
    MPSAE,
    ReLUSAE,
    SoftplusAdamDictionaryLearning,
    SparseCoder,
    TopKSAE,
    TripletFeatureLearner,
)
from skdict.datasets import make_triplet_feedback
from skdict.io._native import _TRANSIENT, _decode_parameter, _encode_parameter, _strict, _unstrict
from skdict.sae._base import BaseSparseAutoencoder

RNG = np.random.default_rng(0)
X = (RNG.normal(size=(300, 8)) @ RNG.normal(size=(8, 8))).astype(np.float32)
Y = (X @ RNG.normal(size=(8, 5))).astype(np.float32)
PHI = (lambda D: D.T @ D)(RNG.standard_normal((2, 6)))
TRIPLETS, LABELS = make_triplet_feedback(PHI, 200, kind="comparison", random_state=0)

SAE_CASES = {
    "topk": (TopKSAE(24, k=3), None),
    "topk-transcoder": (TopKSAE(24, k=3), Y),
    "batchtopk": (BatchTopKSAE(24, k=3), None),
    "jumprelu": (JumpReLUSAE(24, alpha=0.01), None),
    "relu": (ReLUSAE(24, alpha=0.01), None),
    "gated": (GatedSAE(24, alpha=0.01), None),
    "gated-transcoder": (GatedSAE(24, alpha=0.01), Y),
    "relu-crosscoder": (ReLUSAE(24, alpha=0.01, layer_sizes=(4, 4)), None),
    "matryoshka": (MatryoshkaSAE(24, k=3), None),
    "matryoshka-topk-transcoder": (MatryoshkaSAE(24, k=3, activation="topk", matryoshka_widths=(4, 12, 24)), Y),
    "mp": (MPSAE(24, k=3), None),
}


def _quiet_fit(estimator, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(*args)


def _fit_sae(name):
    estimator, target = SAE_CASES[name]
    return _quiet_fit(estimator.set_params(max_steps=12, batch_size=64, random_state=0), X, target), target


#: Every public estimator with array parameters, fitted: name -> (estimator, fit arguments, output function).
def _other_cases():
    anchored = AnchoredSAE(TopKSAE(24, k=3, max_steps=12, batch_size=64, random_state=0), anchors=X[:2], anchor_weight=0.5)
    return {
        "anchored": (anchored, (X,), lambda model: model.transform(X)),
        "fista": (FISTADictionaryLearning(6, max_iter=3, random_state=0), (X,), lambda model: model.transform(X)),
        "softplus-adam": (SoftplusAdamDictionaryLearning(6, max_iter=3, random_state=0), (X,), lambda model: model.transform(X)),
        "lista": (LISTA(6, max_iter=3, random_state=0), (X,), lambda model: model.transform(X)),
        "sparse-coder": (SparseCoder(np.eye(8)[:6], transform_algorithm="omp"), (X,), lambda model: model.transform(X)),
        "triplets": (
            TripletFeatureLearner(solver="lowrank", rank=2, max_iter=10, random_state=0),
            (TRIPLETS, LABELS),
            lambda model: model.predict(TRIPLETS),
        ),
    }


def assert_same(a, b, where="model"):
    """Recursive equality of saved state: arrays bit for bit (dtype too), estimators by class and state."""
    if isinstance(a, BaseEstimator):
        assert type(a) is type(b), where
        assert_same(a.get_params(deep=False), b.get_params(deep=False), f"{where}.get_params()")
        state = [{k: v for k, v in vars(m).items() if k not in _TRANSIENT and k not in m.get_params()} for m in (a, b)]
        assert_same(*state, where)
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), (where, set(a) ^ set(b))
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.random.RandomState):
        assert_same(list(a.get_state()), list(b.get_state()), where)
    elif hasattr(a, "__dict__") and not callable(a):
        assert type(a) is type(b), where
        assert_same(vars(a), vars(b), where)
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), where
    else:
        assert type(a) is type(b) and a == b, (where, a, b)


@pytest.mark.parametrize("name", sorted(SAE_CASES))
def test_sae_round_trip_is_bitwise_and_trains_on_exactly(name, tmp_path):
    model, target = _fit_sae(name)
    path = skdict.io.save(model, tmp_path / "model")
    with open(os.path.join(path, "config.json")) as handle:
        json.load(handle, parse_constant=lambda name: pytest.fail(f"config.json holds {name}: not standard JSON"))
    loaded = skdict.io.load(path)
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    assert_same(model, loaded)  # every fitted attribute, Adam's moments, the RNG, the dead-latent clock
    # continued training: the saved and the never-saved model end bitwise equal
    model.partial_fit(X, target)
    loaded.partial_fit(X, target)
    for parameter, value in model._params().items():
        np.testing.assert_array_equal(getattr(loaded, parameter), value, err_msg=parameter)
    _quiet_fit(model.set_params(warm_start=True, max_steps=5), X, target)
    _quiet_fit(loaded.set_params(warm_start=True, max_steps=5), X, target)
    assert_same(model, loaded)


@pytest.mark.parametrize("name", sorted(_other_cases()))
def test_every_estimator_with_arrays_round_trips(name, tmp_path):
    estimator, args, output = _other_cases()[name]
    model = _quiet_fit(estimator, *args)
    loaded = skdict.io.load(skdict.io.save(model, tmp_path / "model"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # SoftplusAdam's 3-epoch codes
        np.testing.assert_array_equal(output(loaded), output(model))
    assert_same(model, loaded)


def test_weights_only_file_starts_a_fresh_optimizer(tmp_path):
    model, _ = _fit_sae("jumprelu")
    path = skdict.io.save(model, tmp_path / "model", optimizer_state=False)
    assert not any(name.startswith(("_adam", "_rng", "_samples")) for name in load_file(os.path.join(path, "model.safetensors")))
    loaded = skdict.io.load(path)
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    assert not hasattr(loaded, "_adam") and loaded.n_steps_ == model.n_steps_
    for _ in range(3):
        loaded.partial_fit(X)
    assert loaded._adam.t == loaded.n_steps_ - model.n_steps_  # counted from the load, history kept
    assert len(loaded.history_["loss"]) == len(model.history_["loss"]) + 3


def test_gets_back_get_params_with_tuples_paths_and_nested_estimators(tmp_path):
    model = _quiet_fit(
        AnchoredSAE(ReLUSAE(24, alpha=0.01, layer_sizes=(4, 4), max_steps=3, checkpoint_dir=tmp_path / "ckpt"), anchors=X[:2]),
        X,
    )
    model.estimator_.feature_names_in_ = np.asarray([f"x{i}" for i in range(8)], dtype=object)  # as a DataFrame leaves
    loaded = skdict.io.load(skdict.io.save(model, tmp_path / "model"))
    assert_same(model.get_params(deep=True), loaded.get_params(deep=True))
    assert loaded.estimator_.layer_sizes == (4, 4)
    assert_same(model.estimator_.feature_names_in_, loaded.estimator_.feature_names_in_)
    assert list(loaded.get_feature_names_out()) == list(model.get_feature_names_out())


def test_save_refuses_what_it_cannot_write(tmp_path):
    with pytest.raises(NotFittedError, match="call fit before skdict.io.save"):
        skdict.io.save(TopKSAE(), tmp_path / "unfitted")
    model = _quiet_fit(TopKSAE(24, k=3, max_steps=2, random_state=np.random.RandomState(0)), X)
    with pytest.raises(TypeError, match=r"the parameter random_state=.*set_params\(random_state=0\)"):
        skdict.io.save(model, tmp_path / "rng")
    model.set_params(random_state=0)
    path = skdict.io.save(model, tmp_path / "model")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        skdict.io.save(model, path)
    model.partial_fit(X)
    skdict.io.save(model, path, overwrite=True)
    np.testing.assert_array_equal(skdict.io.load(path).components_, model.components_)
    with pytest.raises(TypeError, match="not one of skdict's public estimators"):
        skdict.io.save(_quiet_fit(type("MySAE", (TopKSAE,), {})(24, k=3, max_steps=2), X), tmp_path / "subclass")


@pytest.fixture
def saved(tmp_path):
    model, _ = _fit_sae("topk")
    return skdict.io.save(model, tmp_path / "model")


def _edit_config(path, **changes):
    config_path = os.path.join(path, "config.json")
    with open(config_path) as handle:
        config = json.load(handle)
    config.update(changes)
    with open(config_path, "w") as handle:
        json.dump(config, handle)


def test_newer_format_version_is_refused_naming_both(saved):
    _edit_config(saved, format_version=2)
    with pytest.raises(ValueError, match=r"format version 2, newer than version 1"):
        skdict.io.load(saved)


@pytest.mark.parametrize("change", ["missing", "ill-shaped"])
def test_missing_or_ill_shaped_tensor_is_named_with_both_shapes(saved, change):
    arrays_path = os.path.join(saved, "model.safetensors")
    arrays = load_file(arrays_path)
    if change == "missing":
        del arrays["components_"]
        expected = r"no tensor 'components_' \(config.json expects shape \(24, 8\)\)"
    else:
        arrays["components_"] = np.zeros((24, 7), dtype=np.float32)
        expected = r"tensor 'components_' has shape \(24, 7\).*expects shape \(24, 8\)"
    save_file(arrays, arrays_path)
    with pytest.raises(ValueError, match=expected):
        skdict.io.load(saved)


def test_arrays_that_disagree_with_each_other_are_named(saved):
    """A consistent file whose encoder has another width than its decoder: the model's own shape check."""
    arrays_path = os.path.join(saved, "model.safetensors")
    arrays = load_file(arrays_path)
    arrays["encoder_bias_"] = np.zeros(23, dtype=np.float32)
    save_file(arrays, arrays_path)
    with open(os.path.join(saved, "config.json")) as handle:
        config = json.load(handle)
    config["arrays"]["encoder_bias_"]["shape"] = [23]
    _edit_config(saved, arrays=config["arrays"], arrays_bytes=os.path.getsize(arrays_path))
    with pytest.raises(ValueError, match=r"encoder_bias_ is of shape \(23,\), expected shape \(24,\)"):
        skdict.io.load(saved)


def test_damaged_files_are_named(saved):
    with open(os.path.join(saved, "model.safetensors"), "wb") as handle:
        handle.write(b"\x80\x04not safetensors")
    with pytest.raises(ValueError, match=r"model.safetensors is not a safetensors file"):
        skdict.io.load(saved)
    with open(os.path.join(saved, "config.json"), "w") as handle:
        handle.write("{not json")
    with pytest.raises(ValueError, match=r"config.json is not a JSON file"):
        skdict.io.load(saved)
    with pytest.raises(FileNotFoundError, match="not a folder written by skdict.io.save"):
        skdict.io.load(os.path.dirname(saved))


def test_only_skdict_classes_are_loaded_and_nothing_is_unpickled(saved, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("pickle used while loading")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    assert isinstance(skdict.io.load(saved), TopKSAE)
    _edit_config(saved, **{"class": "os.system"})
    with pytest.raises(ValueError, match=r"names the class 'os.system', which is not one of skdict's public estimators"):
        skdict.io.load(saved)
    with pytest.raises(ValueError, match="device must be None, 'cpu' or 'cuda'"):
        skdict.io.load(saved, device="gpu")


@pytest.mark.gpu
def test_gpu_model_saves_and_loads_to_either_device(tmp_path):
    import cupy

    model = _quiet_fit(TopKSAE(24, k=3, max_steps=5, random_state=0), cupy.asarray(X))
    path = skdict.io.save(model, tmp_path / "model")
    on_gpu = skdict.io.load(path, device="cuda")
    assert isinstance(on_gpu.components_, cupy.ndarray) and isinstance(on_gpu._adam.m["encoder_"], cupy.ndarray)
    np.testing.assert_array_equal(cupy.asnumpy(on_gpu.transform(cupy.asarray(X))), cupy.asnumpy(model.transform(cupy.asarray(X))))
    on_cpu = skdict.io.load(path)
    assert isinstance(on_cpu.components_, np.ndarray)
    np.testing.assert_allclose(on_cpu.transform(X), cupy.asnumpy(model.transform(cupy.asarray(X))), rtol=1e-5, atol=1e-5)
    on_gpu.partial_fit(cupy.asarray(X))
    model.partial_fit(cupy.asarray(X))
    np.testing.assert_array_equal(cupy.asnumpy(on_gpu.components_), cupy.asnumpy(model.components_))


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3)
    | st.lists(inner, max_size=3).map(tuple)
    | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=60, deadline=None)
@given(value=_JSONISH)
def test_parameter_codec_gives_back_any_plain_value(value):
    """decode(json(encode(v))) == v with tuples kept tuples and NaN/inf kept, in standard JSON, for any nesting."""
    arrays = {}
    text = json.dumps(_strict(_encode_parameter("p", value, arrays, "params/p")), allow_nan=False)
    assert_same(value, _decode_parameter(_unstrict(json.loads(text)), arrays, "config.json"))
    assert not arrays


def test_encode_decode_are_one_definition_on_every_sae_and_anchored():
    for cls in [type(estimator) for estimator, _ in SAE_CASES.values()] + [AnchoredSAE]:
        assert cls.encode is BaseSparseAutoencoder.encode and cls.decode is BaseSparseAutoencoder.decode
    model = _quiet_fit(AnchoredSAE(TopKSAE(24, k=3, max_steps=3), anchors=X[:2]), X)
    codes = model.transform(X)
    np.testing.assert_array_equal(model.encode(X), codes)
    np.testing.assert_array_equal(model.decode(codes), model.inverse_transform(codes))
