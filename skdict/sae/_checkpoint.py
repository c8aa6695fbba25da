"""Checkpoints of an SAE's ``fit``: a fit killed at any point resumes from its last checkpoint, exactly.

A checkpoint holds everything the training loop reads: the trained parameters, Adam's
state :math:`(m, v, t)`, the dead-latent clock, the training RNG, ``history_`` and
``n_iter_``, and the position in the data -- the epoch, the minibatches already done
in it, and the RNG state at the start of that epoch (the epoch's order is drawn again
from it and the minibatches done are skipped, so after the epoch the RNG is where an
uninterrupted fit leaves it) -- with the loop's running sums and the estimator's
``get_params()``. A resumed fit ends with the parameters of an uninterrupted fit with the
same ``random_state`` (bitwise, on the same machine with the same thread settings).

On disk (no pickle), in ``checkpoint_dir``, one *generation* ``checkpoint-<n>``:

- ``checkpoint-<n>.npz``: the arrays (``numpy.savez``, read back with ``allow_pickle=False``);
- ``checkpoint-<n>.json``: the scalars, the format version, and the name and size of its
  ``.npz``. The JSON is the commit record: it is written after its ``.npz`` is on disk.

Each file is written to a temporary file in the same folder, flushed, ``fsync``-ed and
renamed over its name (``os.replace``, atomic); older generations are deleted only
after the new JSON is durable. A crash at any moment leaves the last complete
generation readable (a ``.npz`` without its JSON, or a temporary file, is ignored and
cleaned up by the next write).

A folder holds one training run. Only ``fit`` writes checkpoints (``partial_fit`` has no
run to resume). ``fit`` resumes when it would initialise the model (``warm_start=False``,
or a model not fitted yet) and the folder holds a checkpoint of the same class,
``get_params()`` (but :data:`FREE_PARAMETERS`) and data shape and dtype; the checkpoint a
finished fit writes gives back the fitted model without training. A stream (generator) is
resumed by passing it again from its beginning: the minibatches done are read and skipped.
A divergence guard's reference loss is not saved: after a resume it is taken again from
the first minibatch (it decides only when a fit is stopped as diverged, never a step).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import zipfile

import numpy as np

from skdict._array import device_of, get_namespace, to_device, to_numpy

#: Version of the files' layout; a checkpoint of another version is refused, naming it.
FORMAT_VERSION = 1
#: ``get_params()`` entries that may differ between the fit that wrote a checkpoint and the one resuming.
FREE_PARAMETERS = frozenset({"verbose", "checkpoint_dir", "checkpoint_every", "callback"})

_STEM = "checkpoint-"
_TEMPORARY = ".checkpoint-partial-"
_GENERATION = re.compile(r"^checkpoint-(\d+)\.(json|npz)$")


# ----------------------------------------------------------------------------- files
def _fsync_directory(directory):
    """Make a rename in ``directory`` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path, write):
    """Write a file all at once: ``write(handle)`` into a temporary file beside ``path``, fsync, rename.

    Parameters
    ----------
    path : str
    write : callable
        Called with a binary file handle open for writing.

    A crash at any point leaves ``path`` either as it was or complete, never partial.
    """
    directory = os.path.dirname(path) or "."
    fd, temporary = tempfile.mkstemp(prefix=_TEMPORARY, dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)


def _generations(directory):
    """``{n: set of suffixes}`` of the checkpoint files in ``directory`` (empty when it does not exist)."""
    found = {}
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(directory):
            match = _GENERATION.match(name)
            if match:
                found.setdefault(int(match.group(1)), set()).add(match.group(2))
    return found


def _generation_path(directory, number, suffix):
    return os.path.join(directory, f"{_STEM}{number:08d}.{suffix}")


def write_checkpoint(directory, arrays, state):
    """Write one checkpoint generation atomically; delete the older ones once it is durable.

    Parameters
    ----------
    directory : str
        Created if missing.
    arrays : dict of str to ndarray
        Numeric arrays (no object dtype: nothing is pickled).
    state : dict
        JSON-serialisable scalars, lists and dicts.

    Returns
    -------
    path : str
        The generation's JSON file.
    """
    os.makedirs(directory, exist_ok=True)
    existing = _generations(directory)
    number = max(existing, default=0) + 1
    arrays_path = _generation_path(directory, number, "npz")
    for name, array in arrays.items():
        if array.dtype.hasobject:
            raise TypeError(f"checkpoint array {name!r} has dtype object, which cannot be saved without pickle.")
    atomic_write(arrays_path, lambda handle: np.savez(handle, **arrays))
    record = {
        "format_version": FORMAT_VERSION,
        "arrays": os.path.basename(arrays_path),
        "arrays_bytes": os.path.getsize(arrays_path),
        **state,
    }
    text = json.dumps(record, indent=1, sort_keys=True).encode()
    state_path = _generation_path(directory, number, "json")
    atomic_write(state_path, lambda handle: handle.write(text))
    _remove_stale(directory, keep=number)
    return state_path


def _remove_stale(directory, keep):
    """Delete older generations (commit record first) and temporary files left by a crash."""
    for number, suffixes in sorted(_generations(directory).items()):
        if number == keep:
            continue
        for suffix in ("json", "npz"):  # a JSON never outlives the arrays it names
            if suffix in suffixes:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(_generation_path(directory, number, suffix))
    for name in os.listdir(directory):
        if name.startswith(_TEMPORARY):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, name))


class CorruptCheckpointError(ValueError):
    """A checkpoint file that cannot be read back (its message names the file)."""


def _corrupt(path, why):
    return CorruptCheckpointError(
        f"the checkpoint file {path} cannot be read ({why}). It was damaged after it was written (a fit "
        "never leaves a partial checkpoint): delete this checkpoint's .json and .npz files to train afresh, "
        "or set checkpoint_dir to another folder."
    )


def read_checkpoint(directory):
    """The latest complete checkpoint in ``directory``: ``(arrays, state, path)``, or ``None`` if it holds none.

    Raises
    ------
    ValueError
        The latest checkpoint is damaged (truncated, not JSON, not a zip, a wrong size or CRC, another
        format version); the message names the file.
    """
    complete = [number for number, suffixes in _generations(directory).items() if "json" in suffixes]
    if not complete:
        return None
    state_path = _generation_path(directory, max(complete), "json")
    try:
        with open(state_path, encoding="utf-8") as handle:
            state = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _corrupt(state_path, f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(state, dict) or "arrays" not in state:
        raise _corrupt(state_path, "it is not a checkpoint record")
    if state.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"the checkpoint {state_path} has format version {state.get('format_version')!r}; this skdict "
            f"reads version {FORMAT_VERSION}: resume with the skdict that wrote it, or set checkpoint_dir to "
            "another folder to train afresh."
        )
    arrays_path = os.path.join(directory, os.path.basename(str(state["arrays"])))
    try:
        size = os.path.getsize(arrays_path)
    except OSError as exc:
        raise _corrupt(arrays_path, f"{type(exc).__name__}: {exc}") from exc
    if size != state.get("arrays_bytes"):
        raise _corrupt(arrays_path, f"{size} bytes, {state_path} recorded {state.get('arrays_bytes')}")
    try:
        with np.load(arrays_path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}  # reads each member whole: its CRC is checked
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise _corrupt(arrays_path, f"{type(exc).__name__}: {exc}") from exc
    return arrays, state, state_path


# ------------------------------------------------------------------ what identifies a run
def _describe(value):
    """A JSON value standing for a parameter's value, equal between two runs iff the value is the same.

    Plain values are kept; arrays become their shape, dtype and SHA-256; an estimator its
    class and parameters; any other object (e.g. a ``RandomState``) its type name.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return [_describe(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _describe(item) for key, item in value.items()}
    if hasattr(value, "__array__") or hasattr(value, "__cuda_array_interface__"):
        array = np.ascontiguousarray(to_numpy(value))
        digest = hashlib.sha256(array.tobytes()).hexdigest()
        return {"array": digest, "shape": list(array.shape), "dtype": str(array.dtype)}
    if hasattr(value, "get_params"):
        return {"estimator": type(value).__qualname__, "params": _describe(value.get_params(deep=False))}
    return f"<{type(value).__qualname__}>"


def run_identity(model, data):
    """What a checkpoint must share with the fit that resumes from it.

    The estimator's class and ``get_params()`` (but :data:`FREE_PARAMETERS`), and the
    training data's width, number of rows (when known), dtype and kind (SAE or transcoder).
    """
    params = model.get_params(deep=False)
    return {
        "estimator": f"{type(model).__module__}.{type(model).__qualname__}",
        "params": {name: _describe(value) for name, value in sorted(params.items()) if name not in FREE_PARAMETERS},
        "data": {
            "n_features": int(data.n_features),
            "n_rows": None if data.n_rows is None else int(data.n_rows),
            "dtype": str(np.dtype(data.dtype)),
            "transcoder": bool(data.has_target),
        },
    }


def check_same_run(saved, current, path):
    """Raise a ValueError naming the first difference between a checkpoint's run and this fit.

    Parameters
    ----------
    saved, current : dict
        :func:`run_identity` of the checkpoint and of this fit.
    path : str
        The checkpoint file, named in the message.
    """
    name = current["estimator"].rsplit(".", 1)[-1]
    if saved.get("estimator") != current["estimator"]:
        raise ValueError(
            f"the checkpoint {path} was written by {saved.get('estimator')}, not by {current['estimator']}: "
            "set checkpoint_dir to another folder (or empty this one) to train afresh."
        )
    old, new = saved.get("params", {}), current["params"]
    for parameter in sorted(set(old) | set(new)):
        if old.get(parameter, "<absent>") != new.get(parameter, "<absent>"):
            raise ValueError(
                f"the checkpoint {path} was written by a {name} with {parameter}={old.get(parameter, '<absent>')!r}, "
                f"but this {name} has {parameter}={new.get(parameter, '<absent>')!r}: set {parameter} back to resume "
                "from it, or set checkpoint_dir to another folder (or empty this one) to train afresh."
            )
    for field, value in current["data"].items():
        if saved.get("data", {}).get(field) != value:
            raise ValueError(
                f"the checkpoint {path} was written while training on data with {field}={saved['data'].get(field)!r}, "
                f"but this fit's data has {field}={value!r}: resume on the same data, or set checkpoint_dir to "
                "another folder (or empty this one) to train afresh."
            )


# ------------------------------------------------------------------ state as JSON + arrays
def encode(value, arrays, key):
    """``value`` as JSON, its arrays moved into ``arrays`` (under names starting with ``key``).

    Plain Python values are kept; a NumPy scalar keeps its dtype (``{"scalar": dtype, "value": v}``:
    a float32 running sum resumes as float32); an array (NumPy or CuPy) becomes ``{"array": name, "device": d}``,
    an array of strings (e.g. ``feature_names_in_``) ``{"strings": [...]}``, a ``RandomState``
    ``{"random_state": scalars, "keys": name}``; an object (e.g. a dataclass of the loop) becomes the
    dict of its attributes.
    """
    if isinstance(value, np.generic):
        return {"scalar": value.dtype.str, "value": value.item()}
    if isinstance(value, np.ndarray) and value.dtype.kind in "OUS":
        return {"strings": [str(item) for item in value.tolist()]}
    if isinstance(value, np.random.RandomState):
        scalars, arrays[key] = _rng_state(value.get_state())
        return {"random_state": scalars, "keys": key}
    if isinstance(value, np.ndarray) or hasattr(value, "__cuda_array_interface__"):
        arrays[key] = to_numpy(value)
        return {"array": key, "device": device_of(value)}
    if isinstance(value, dict):
        return {"dict": {str(name): encode(item, arrays, f"{key}/{name}") for name, item in value.items()}}
    if isinstance(value, (list, tuple)):
        return [encode(item, arrays, f"{key}/{i}") for i, item in enumerate(value)]
    if hasattr(value, "__dict__"):
        return {"object": {name: encode(item, arrays, f"{key}/{name}") for name, item in vars(value).items()}}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{key} ({type(value).__name__}) cannot be written to a checkpoint.")


def decode(value, arrays, device=None):
    """The inverse of :func:`encode` (an object comes back as the dict of its attributes).

    Arrays go back to the device they were encoded from, or to ``device`` ("cpu"/"cuda") when given.
    """
    if isinstance(value, list):
        return [decode(item, arrays, device) for item in value]
    if not isinstance(value, dict):
        return value
    if "scalar" in value:
        return np.dtype(value["scalar"]).type(value["value"])
    if "array" in value:
        return to_device(arrays[value["array"]], value["device"] if device is None else device)
    if "strings" in value:
        return np.asarray(value["strings"], dtype=object)
    if "random_state" in value:
        rng = np.random.RandomState()
        _set_rng_state(rng, value["random_state"], arrays[value["keys"]])
        return rng
    inner = value["dict"] if "dict" in value else value["object"]
    return {name: decode(item, arrays, device) for name, item in inner.items()}


def restore_attributes(target, saved):
    """Set the attributes of ``target`` from a decoded object, in place into nested objects."""
    for name, value in saved.items():
        current = getattr(target, name, None)
        if isinstance(value, dict) and hasattr(current, "__dict__") and not isinstance(current, dict):
            restore_attributes(current, value)
        else:
            setattr(target, name, value)


# ------------------------------------------------------------------ the model's state
#: Counters of a model in training, saved with its parameters (those it has); ``alpha_`` and ``_l0_error`` are
#: the state of the L0 target's controller (:mod:`skdict.sae._l0_target`), ``_resample_rng`` the RNG of
#: ``resample_dead``, ``_level_guess`` BatchTopK's guess of the next batch level (which rows its step encodes twice).
_MODEL_COUNTERS = ("n_iter_", "n_steps_", "n_samples_seen_", "_data_scale", "_lr_scales", "history_", "alpha_",
                   "_l0_error", "_resample_rng", "_level_guess")


def _rng_state(state):
    """A ``RandomState.get_state()`` tuple as (JSON scalars, key array)."""
    kind, keys, position, has_gauss, cached_gaussian = state
    return {"kind": kind, "pos": int(position), "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)}, keys


def _set_rng_state(rng, scalars, keys):
    rng.set_state((scalars["kind"], keys, scalars["pos"], scalars["has_gauss"], scalars["cached_gaussian"]))


def model_state(model, arrays):
    """The state of a model in training: parameters, Adam's :math:`m, v, t`, dead-latent clock, counters, history.

    Arrays go into ``arrays``; returns the JSON part.
    """
    for name, value in model._params().items():
        arrays[f"param/{name}"] = to_numpy(value)
        arrays[f"adam_m/{name}"] = to_numpy(model._adam.m[name])
        arrays[f"adam_v/{name}"] = to_numpy(model._adam.v[name])
    arrays["samples_since_fired"] = to_numpy(model._samples_since_fired)
    counters = {name: getattr(model, name) for name in _MODEL_COUNTERS if hasattr(model, name)}
    return {"adam_t": int(model._adam.t), "counters": encode(counters, arrays, "counters")}


def _put(target, saved, what, path):
    """Write a saved array into a live one in place (same shape and dtype), on the live one's device."""
    if saved.shape != target.shape or saved.dtype != target.dtype:
        raise _corrupt(path, f"{what} has shape {saved.shape} and dtype {saved.dtype}, the model's "
                             f"{target.shape} and {target.dtype}")
    target[...] = get_namespace(target).asarray(saved)


def load_model_state(model, arrays, scalars, path):
    """Put a checkpoint's state into a freshly initialised model (arrays written in place)."""
    for name, value in model._params().items():
        _put(value, arrays[f"param/{name}"], name, path)
        _put(model._adam.m[name], arrays[f"adam_m/{name}"], f"Adam's m of {name}", path)
        _put(model._adam.v[name], arrays[f"adam_v/{name}"], f"Adam's v of {name}", path)
    _put(model._samples_since_fired, arrays["samples_since_fired"], "the dead-latent clock", path)
    model._adam.t = int(scalars["adam_t"])
    for name, value in decode(scalars["counters"], arrays).items():
        setattr(model, name, value)


# ------------------------------------------------------------------ the training loop's side
def resume_from_checkpoint(model, data):
    """At the start of ``fit``, after a fresh initialisation: load ``checkpoint_dir``'s latest checkpoint, if any.

    The model then holds the checkpoint's parameters, optimizer state, RNG and
    history; where the training loop resumes is left for :class:`TrainingCheckpoints`.

    Returns
    -------
    resumed : bool

    Raises
    ------
    ValueError
        The checkpoint belongs to another run (class, a parameter, or the data's width,
        rows or dtype differ: the message names which), or it is damaged (naming the file).
    """
    model.__dict__.pop("_checkpoint_loop", None)
    if model.checkpoint_dir is None:
        return False
    found = read_checkpoint(os.fspath(model.checkpoint_dir))
    if found is None:
        return False
    arrays, state, path = found
    check_same_run(state.get("run", {}), run_identity(model, data), path)
    try:
        load_model_state(model, arrays, state["model"], path)
        loop = decode(state["loop"], arrays)
        _set_rng_state(model._rng, state["rng"], arrays["rng/keys"])
    except CorruptCheckpointError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise _corrupt(path, f"{type(exc).__name__}: {exc}") from exc
    model._checkpoint_loop = loop
    return True


class TrainingCheckpoints:
    """The checkpoints of one ``fit`` call, seen from its training loop.

    The loop hands over the objects that hold its state (by name; their attributes are
    saved, and restored in place) at four points: :meth:`resume` before the first epoch,
    :meth:`enter_epoch` before each epoch's minibatches are drawn, :meth:`maybe_save` before
    each step, :meth:`finish` at the end. Checkpoints are taken *before* a step, so one is
    never taken after the last step of a fit (:meth:`finish` writes that one).

    Parameters
    ----------
    model : SAE estimator
        With ``checkpoint_dir`` set, initialised, and resumed by :func:`resume_from_checkpoint`
        when a checkpoint was found.
    data : :class:`~skdict.sae._data.InMemoryData` or :class:`~skdict.sae._data.StreamedData`
    """

    def __init__(self, model, data):
        self.model, self.data = model, data
        self.directory = os.fspath(model.checkpoint_dir)
        self.every = model.checkpoint_every
        self._resumed = model.__dict__.pop("_checkpoint_loop", None)
        self._last_saved = 0
        self._epoch_rng = None

    @classmethod
    def of(cls, model, data):
        """The checkpoints of a fit, or ``None`` when ``checkpoint_dir`` is ``None``."""
        return None if model.checkpoint_dir is None else cls(model, data)

    def resume(self, **objects):
        """Restore the loop's objects (in place) from the checkpoint this fit resumed from, if any.

        Part-way through an epoch, ``objects["run"].n_epochs`` counts the epochs *before* it: the
        loop begins it again (:meth:`enter_epoch` skips its minibatches already done).

        Returns
        -------
        finished : bool
            The checkpoint is that of a finished fit: the loop has nothing left to do.
        """
        if self._resumed is None:
            return False
        saved = self._resumed
        for name, target in objects.items():
            restore_attributes(target, saved["objects"][name])
        self._last_saved = saved["step"]
        if saved["finished"]:
            self._resumed = None
            return True
        objects["run"].n_epochs -= 1
        return False

    def enter_epoch(self, epoch):
        """At the start of an epoch, before its order is drawn: minibatches of it to skip (done before the checkpoint).

        Records the RNG state the epoch starts from (saved with the checkpoints taken during
        it); the first epoch after a resume gets the epoch's saved running sums (into ``epoch``).
        """
        self._epoch_rng = self.model._rng.get_state()
        if self._resumed is None:
            return 0
        restore_attributes(epoch, self._resumed["objects"]["epoch"])
        done, self._resumed = self._resumed["batches_done"], None
        return done

    def maybe_save(self, step, batches_done, **objects):
        """Before the step after ``step`` steps (``batches_done`` of them in this epoch): checkpoint if one is due."""
        if step % self.every == 0 and step != self._last_saved:
            self._write(step, batches_done, objects, finished=False, rng_state=self._epoch_rng)

    def finish(self, step, **objects):
        """After the last step: the checkpoint of the finished fit (a fit that resumes from it trains no further)."""
        self._write(step, 0, objects, finished=True, rng_state=self.model._rng.get_state())

    def _write(self, step, batches_done, objects, *, finished, rng_state):
        """Write the model, the loop's objects and ``rng_state``.

        ``rng_state`` is the state the resumed fit's RNG starts from: part-way through an
        epoch, the one at its start (the epoch's order is drawn again from it, the minibatches
        done are skipped, and the RNG ends the epoch where an uninterrupted fit leaves it;
        the current state belongs to the prefetch thread, ahead of the step); after the last
        step, the current one.
        """
        arrays = {}
        rng_scalars, arrays["rng/keys"] = _rng_state(rng_state)
        loop = {"objects": objects, "step": step, "batches_done": batches_done, "finished": finished}
        state = {
            "run": run_identity(self.model, self.data),
            "model": model_state(self.model, arrays),
            "rng": rng_scalars,
            "loop": encode(loop, arrays, "loop"),
        }
        write_checkpoint(self.directory, arrays, state)
        self._last_saved = step
