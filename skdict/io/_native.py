"""skdict's own model files: a folder with ``config.json`` and ``model.safetensors``, no pickle.

``config.json`` holds the format version, the skdict version, the class (``"skdict.TopKSAE"``), the
constructor parameters (``get_params(deep=False)``; a nested estimator as ``{class, params}``), the
fitted attributes that are not arrays (``n_iter_``, ``k_``, ``history_``, ...) and the name, shape
and dtype of every array. ``model.safetensors`` holds the arrays: the estimator's fitted arrays and,
for an SAE saved with ``optimizer_state=True``, Adam's moments, the dead-latent clock and the
training RNG's key. Values are written with the checkpoints' codec
(:func:`skdict.sae._checkpoint.encode` / :func:`~skdict.sae._checkpoint.decode`), the one
serialisation mechanism of skdict, and each file atomically
(:func:`~skdict.sae._checkpoint.atomic_write`), the JSON last.

Loading executes nothing from the file: the class is looked up among skdict's public estimators,
the arrays are read by safetensors and everything else by ``json``.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import uuid

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save as safetensors_bytes
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from skdict.io._build import BUILD_DEVICES
from skdict.sae._parameter_values import check_parameter_values
from skdict.ops.adam import Adam
from skdict.sae._base import BaseSparseAutoencoder
from skdict.sae._checkpoint import atomic_write, decode, encode, restore_attributes

#: Version of the folder's layout; a newer one is refused, naming both versions.
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
ARRAYS_FILE = "model.safetensors"
#: An SAE's training state: left out by ``save(..., optimizer_state=False)`` (a later fit starts it afresh).
TRAINING_STATE = ("_adam", "_samples_since_fired", "_rng", "_data_scale", "_lr_scales")
#: Attributes of a fit in progress, never saved.
_TRANSIENT = ("_checkpoint_loop", "_regularizer", "_epoch_callback")
#: Attributes saved as an object and rebuilt around the loaded parameters.
_REBUILT = {"_adam": lambda model: Adam(model._params())}


# ------------------------------------------------------------------ classes
def public_estimators():
    """``{"skdict.<name>": class}`` for every estimator class skdict exports: the only classes a file may name."""
    import skdict

    classes = (getattr(skdict, name) for name in skdict.__all__)
    return {f"skdict.{cls.__name__}": cls for cls in classes if isinstance(cls, type) and issubclass(cls, BaseEstimator)}


def _class_name(estimator):
    name = f"skdict.{type(estimator).__name__}"
    if public_estimators().get(name) is not type(estimator):
        raise TypeError(
            f"{type(estimator).__module__}.{type(estimator).__qualname__} is not one of skdict's public estimators: "
            f"skdict.io.save writes {sorted(public_estimators())}."
        )
    return name


def _class_of(name, path):
    estimators = public_estimators()
    if name not in estimators:
        raise ValueError(
            f"{path} names the class {name!r}, which is not one of skdict's public estimators "
            f"({sorted(estimators)}): it was not written by skdict.io.save, or by a newer skdict."
        )
    return estimators[name]


# ------------------------------------------------------------------ constructor parameters
def _encode_parameter(name, value, arrays, key):
    """A constructor parameter as JSON (tuples, paths and nested estimators tagged); anything else refused."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, tuple):
        return {"tuple": [_encode_parameter(name, item, arrays, f"{key}/{i}") for i, item in enumerate(value)]}
    if isinstance(value, list):
        return [_encode_parameter(name, item, arrays, f"{key}/{i}") for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {"dict": {str(k): _encode_parameter(name, item, arrays, f"{key}/{k}") for k, item in value.items()}}
    if isinstance(value, os.PathLike):
        return {"path": os.fspath(value)}
    if isinstance(value, BaseEstimator):
        return {"estimator": _describe(value, arrays, f"{key}/", fitted=False)}
    if isinstance(value, (np.generic, np.ndarray)) or hasattr(value, "__cuda_array_interface__"):
        return encode(value, arrays, key)
    raise TypeError(
        f"the parameter {name}={value!r} ({type(value).__name__}) cannot be saved without pickle: set it to a "
        "plain value before saving (e.g. set_params(random_state=0) for a RandomState, "
        f"set_params({name}=None) for a callable) and set it again after loading."
    )


def _decode_parameter(value, arrays, path):
    if isinstance(value, list):
        return [_decode_parameter(item, arrays, path) for item in value]
    if not isinstance(value, dict):
        return value
    if "tuple" in value:
        return tuple(_decode_parameter(item, arrays, path) for item in value["tuple"])
    if "path" in value:
        return pathlib.Path(value["path"])
    if "estimator" in value:
        return _rebuild(value["estimator"], arrays, "cpu", path)
    if "dict" in value:
        return {name: _decode_parameter(item, arrays, path) for name, item in value["dict"].items()}
    return decode(value, arrays, "cpu")  # an array or a NumPy scalar given as a parameter


# ------------------------------------------------------------------ an estimator as JSON + arrays
def _fitted_attributes(estimator, optimizer_state):
    """``vars(estimator)`` less the constructor parameters, the transient state and (unless kept) the training state."""
    skipped = set(estimator.get_params(deep=False)) | set(_TRANSIENT)
    if not optimizer_state:
        skipped |= set(TRAINING_STATE)
    return {name: value for name, value in vars(estimator).items() if name not in skipped}


def _describe(estimator, arrays, prefix, *, fitted, optimizer_state=True):
    """``{class, params[, fitted]}`` of ``estimator``; its arrays go into ``arrays`` under names starting with ``prefix``."""
    params = estimator.get_params(deep=False)
    spec = {
        "class": _class_name(estimator),
        "params": {name: _encode_parameter(name, value, arrays, f"{prefix}params/{name}") for name, value in params.items()},
    }
    if fitted:
        spec["fitted"] = {}
        for name, value in _fitted_attributes(estimator, optimizer_state).items():
            if isinstance(value, BaseEstimator):  # e.g. AnchoredSAE's estimator_
                nested = _describe(value, arrays, f"{prefix}{name}/", fitted=True, optimizer_state=optimizer_state)
                spec["fitted"][name] = {"estimator": nested}
            else:
                spec["fitted"][name] = encode(value, arrays, f"{prefix}{name}")
    return spec


def _rebuild(spec, arrays, device, path):
    """The estimator a :func:`_describe` spec stands for, its arrays on ``device``."""
    model = _class_of(spec["class"], path)(
        **{name: _decode_parameter(value, arrays, path) for name, value in spec["params"].items()}
    )
    model._validate_params()  # the constraints fit would check: a hand-edited k=-1 is refused here
    for name, value in spec.get("fitted", {}).items():
        if not name.isidentifier() or name.startswith("__"):
            raise ValueError(f"{path} names the fitted attribute {name!r}, which no estimator has: the file is damaged.")
        if isinstance(value, dict) and "estimator" in value:
            setattr(model, name, _rebuild(value["estimator"], arrays, device, path))
        elif name not in _REBUILT:
            setattr(model, name, decode(value, arrays, device))
    for name, rebuild in _REBUILT.items():
        if name in spec.get("fitted", {}):
            state = rebuild(model)
            restore_attributes(state, decode(spec["fitted"][name], arrays, device))
            setattr(model, name, state)
    if isinstance(model, BaseSparseAutoencoder) and "fitted" in spec:
        model._check_parameter_shapes()  # the arrays agree with each other, not only with config.json
        check_parameter_values(model, os.path.join(os.path.dirname(path), ARRAYS_FILE))  # one float dtype, no NaN
    return model


# ------------------------------------------------------------------ strict JSON
def _strict(value):
    """``value`` with non-finite floats tagged (``{"__float__": "nan"}``): standard JSON, readable by any tool."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    if isinstance(value, list):
        return [_strict(item) for item in value]
    if isinstance(value, dict):
        return {key: _strict(item) for key, item in value.items()}
    return value


def _unstrict(value):
    """The inverse of :func:`_strict`."""
    if isinstance(value, list):
        return [_unstrict(item) for item in value]
    if isinstance(value, dict):
        if value.keys() == {"__float__"}:
            return float(value["__float__"])
        return {key: _unstrict(item) for key, item in value.items()}
    return value


# ------------------------------------------------------------------ save
def _check_complete(estimator):
    """An SAE must hold every parameter its class declares, of consistent shapes (a half-set model loads as nothing).

    Raises
    ------
    NotFittedError
        A parameter is missing (e.g. only ``components_`` was set by hand).
    ValueError
        A parameter has the wrong shape (naming it and both shapes).
    """
    if not isinstance(estimator, BaseSparseAutoencoder):
        return
    try:
        estimator._check_parameter_shapes()
    except AttributeError as exc:
        raise NotFittedError(
            f"This {type(estimator).__name__} is only partly fitted ({exc}): fit it, or set every parameter "
            "(encoder_, encoder_bias_, components_, decoder_bias_, ...) before skdict.io.save."
        ) from exc


def _check_target(path, overwrite):
    """Refuse a file, or a non-empty folder without ``overwrite``; create the folder."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise FileExistsError(f"{path} is a file; skdict.io.save writes a folder: give another path.")
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise FileExistsError(
            f"{path} exists and is not empty: pass overwrite=True to replace the model saved there, or give a new folder."
        )
    os.makedirs(path, exist_ok=True)


def save(estimator, path, *, overwrite=False, optimizer_state=True):
    """Save a fitted skdict estimator to the folder ``path`` (``config.json`` + ``model.safetensors``).

    Parameters
    ----------
    estimator : fitted skdict estimator
        Any of skdict's public estimators: the SAEs (transcoders and crosscoders included),
        :class:`~skdict.AnchoredSAE`, the dictionary learners, :class:`~skdict.SparseCoder`,
        :class:`~skdict.TripletFeatureLearner`.
    path : str or path-like
        A folder; created if missing.
    overwrite : bool, default=False
        Replace a model in an existing, non-empty folder.
    optimizer_state : bool, default=True
        For an SAE, also save Adam's moments, the dead-latent clock, the training RNG and the
        data scales, so that ``partial_fit`` / a ``warm_start`` fit of the loaded model continues
        exactly as the saved one would. ``False``: the weights (and fitted scalars) only; a loaded
        model then starts a fresh optimizer when it trains. Other estimators always save all they hold.

    Returns
    -------
    path : str
        The folder.

    Raises
    ------
    NotFittedError
        The estimator is not fitted.
    TypeError
        Not an skdict estimator, or a constructor parameter that JSON cannot hold (a callable,
        a ``RandomState`` instance): the message names the parameter and the fix.
    FileExistsError
        ``path`` is a file, or a non-empty folder and ``overwrite=False``.
    """
    check_is_fitted(
        estimator,
        msg=f"This {type(estimator).__name__} is not fitted yet: call fit before skdict.io.save (an unfitted "
        "estimator is only its parameters: get_params()).",
    )
    _check_complete(estimator)
    arrays = {}
    spec = _describe(estimator, arrays, "", fitted=True, optimizer_state=optimizer_state)
    arrays = {name: np.ascontiguousarray(value) for name, value in arrays.items()}
    save_id = uuid.uuid4().hex  # in both files: a folder mixing two saves is refused on load
    metadata = {"format": "skdict", "format_version": str(FORMAT_VERSION), "save_id": save_id}
    payload = safetensors_bytes(arrays, metadata=metadata)
    config = {
        "format": "skdict",
        "format_version": FORMAT_VERSION,
        "save_id": save_id,
        "skdict_version": _skdict_version(),
        "optimizer_state": bool(optimizer_state),
        **spec,
        "arrays": {name: {"shape": list(value.shape), "dtype": str(value.dtype)} for name, value in arrays.items()},
        "arrays_bytes": len(payload),
    }
    text = json.dumps(_strict(config), indent=1, sort_keys=True, allow_nan=False).encode()
    path = os.fspath(path)
    _check_target(path, overwrite)
    atomic_write(os.path.join(path, ARRAYS_FILE), lambda handle: handle.write(payload))
    atomic_write(os.path.join(path, CONFIG_FILE), lambda handle: handle.write(text))  # the commit record, last
    return path


# ------------------------------------------------------------------ load
def _read_config(path):
    config_path = os.path.join(path, CONFIG_FILE)
    try:
        with open(config_path, encoding="utf-8") as handle:
            config = _unstrict(json.load(handle))
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"{config_path} does not exist: {path} is not a folder written by skdict.io.save "
            "(a SAELens folder loads with skdict.io.load_saelens)."
        ) from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{config_path} is not a JSON file ({type(exc).__name__}: {exc}).") from exc
    if not isinstance(config, dict) or config.get("format") != "skdict" or "class" not in config:
        raise ValueError(f"{config_path} is not the config of a model saved by skdict.io.save.")
    version = config.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{config_path} has format version {version!r}, not a whole number from 1: the file is damaged.")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{config_path} has format version {version!r}, newer than version {FORMAT_VERSION}, the one this skdict "
            f"({_skdict_version()}) reads: upgrade skdict (the file was written by skdict {config.get('skdict_version')})."
        )
    _check_layout(config, config_path)
    return config, config_path


def _check_layout(config, config_path):
    """The fields :func:`load` reads have the types :func:`save` writes (a damaged file gets a message, not a KeyError)."""
    arrays = config.get("arrays")
    for field, kind in (("params", dict), ("fitted", dict), ("arrays", dict)):
        if not isinstance(config.get(field, {}), kind) or (field == "arrays" and arrays is None):
            raise ValueError(f"{config_path}: field {field!r} is missing or not a JSON object: the file is damaged.")
    for name, entry in arrays.items():
        if not (isinstance(entry, dict) and isinstance(entry.get("shape"), list) and isinstance(entry.get("dtype"), str)):
            raise ValueError(f"{config_path}: arrays[{name!r}] is not {{'shape': [...], 'dtype': ...}}: the file is damaged.")


def _skdict_version():
    import skdict

    return skdict.__version__


def _read_arrays(path, config):
    arrays_path = os.path.join(path, ARRAYS_FILE)
    try:
        size = os.path.getsize(arrays_path)
        with safe_open(arrays_path, framework="numpy") as handle:
            metadata = handle.metadata() or {}
            arrays = {name: handle.get_tensor(name) for name in handle.keys()}
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{arrays_path} does not exist: the model's arrays are missing.") from exc
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{arrays_path} is not a safetensors file ({type(exc).__name__}: {exc}).") from exc
    for name, expected in config["arrays"].items():
        if name not in arrays:
            raise ValueError(f"{arrays_path} has no tensor {name!r} (config.json expects shape {tuple(expected['shape'])}).")
        shape, wanted = tuple(arrays[name].shape), tuple(expected["shape"])
        if shape != wanted or str(arrays[name].dtype) != expected["dtype"]:
            raise ValueError(
                f"{arrays_path}: tensor {name!r} has shape {shape} and dtype {arrays[name].dtype}, but config.json "
                f"expects shape {wanted} and dtype {expected['dtype']}."
            )
    unlisted = sorted(set(arrays) - set(config["arrays"]))
    if unlisted:
        raise ValueError(
            f"{arrays_path} holds tensor(s) {unlisted} that config.json does not list: the folder holds parts of two "
            "different saves (or an edited file); save the model again."
        )
    if "arrays_bytes" in config and size != config["arrays_bytes"]:
        raise ValueError(
            f"{arrays_path} has {size} bytes, but its config.json recorded {config['arrays_bytes']}: the folder holds "
            "parts of two different saves (or a damaged file); save the model again."
        )
    if None not in (config.get("save_id"), metadata.get("save_id")) and config["save_id"] != metadata["save_id"]:
        raise ValueError(
            f"{arrays_path} was written by save {metadata.get('save_id')!r}, but its config.json by save "
            f"{config.get('save_id')!r}: the folder holds parts of two different saves; save the model again."
        )
    return arrays, arrays_path


def load(path, *, device=None):
    """Load an estimator saved by :func:`save`.

    Parameters
    ----------
    path : str or path-like
        The folder :func:`save` wrote.
    device : {None, "cpu", "cuda"}, default=None
        Where the fitted arrays go (``None``: the CPU).

    Returns
    -------
    estimator : skdict estimator
        Fitted, with the saved parameters: ``transform`` gives the saved model's codes bit for bit.

    Raises
    ------
    FileNotFoundError
        The folder lacks ``config.json`` or ``model.safetensors``.
    ValueError
        ``config.json`` is not JSON or names a class that is not skdict's; a newer format version
        (naming both versions); ``model.safetensors`` is not safetensors, lacks a tensor or holds one
        of another shape (naming the tensor and both shapes).
    RuntimeError
        ``device="cuda"`` and CuPy cannot reach a GPU.
    """
    if device not in BUILD_DEVICES:
        raise ValueError(f"device must be None, 'cpu' or 'cuda', got {device!r}.")
    path = os.fspath(path)
    if os.path.isfile(path):
        raise ValueError(f"{path} is a file: skdict.io.load reads the folder skdict.io.save wrote (the one holding {CONFIG_FILE}).")
    config, config_path = _read_config(path)
    arrays, arrays_path = _read_arrays(path, config)
    try:
        return _rebuild(config, arrays, "cpu" if device is None else device, config_path)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{config_path} does not describe a model ({type(exc).__name__}: {exc}).") from exc
    except ValueError as exc:
        if arrays_path in str(exc) or config_path in str(exc):
            raise
        raise ValueError(f"{arrays_path}: {exc}") from exc
