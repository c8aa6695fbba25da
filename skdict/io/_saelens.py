"""SAELens folders (``cfg.json`` + ``sae_weights.safetensors``) to and from skdict SAEs, without torch.

Both libraries compute the same affine maps, written in transposed layouts:

.. math::

    a = (x - b_{dec}) W_{enc}^\\top + b_{enc}, \\qquad \\hat x = z W_{dec} + b_{dec}

(skdict stores ``encoder_`` as :math:`W_{enc}` of shape (n_components, n_features); SAELens
stores ``W_enc`` as its transpose, (d_in, d_sae)). What differs is folded into the weights so
that codes and reconstructions agree (the table of :doc:`/user_guide/interop`):

- SAELens ``apply_b_dec_to_input=False`` (and every SAELens transcoder) does not centre the
  input: :math:`b_{dec} W_{enc}^\\top` moves into :math:`b_{enc}`; a skdict transcoder's fixed
  ``input_center_`` :math:`c` moves into :math:`b_{enc} - c W_{enc}^\\top` on export.
- skdict's atoms are unit rows. Decoder rows of norm :math:`n_j \\ne 1` are folded as SAELens's
  ``fold_W_dec_norm`` does: encoder row, :math:`b_{enc,j}` and threshold times :math:`n_j`,
  atom divided by :math:`n_j`; reconstructions are unchanged and the codes are those of
  ``SAE.load_from_disk(path, fold_W_dec_norm=True)``. With ``rescale_acts_by_decoder_norm``
  (TopK) the fold leaves SAELens's codes themselves unchanged. A TopK SAE without it keeps
  its decoder rows (folding would change which latents are selected), with a warning.
- SAELens's JumpReLU is :math:`\\mathrm{ReLU}(a)\\,\\mathbb{1}[a > \\theta]`, skdict's
  :math:`a\\,\\mathbb{1}[a > \\theta]` with :math:`\\theta \\ge 0`: equal once negative
  thresholds are clipped at 0.
- A BatchTopK SAE is written as JumpReLU with its inference threshold in every latent, as
  SAELens writes its own; such a file whose metadata says ``training_architecture:
  "batchtopk"`` (and gives ``k``) comes back as a :class:`~skdict.BatchTopKSAE`, one that says
  ``"matryoshka_batchtopk"`` (with ``matryoshka_widths``) as a :class:`~skdict.MatryoshkaSAE`.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from skdict._array import to_numpy
from skdict.sae._parameter_values import non_finite

#: File names of a SAELens folder.
CFG_FILENAME = "cfg.json"
WEIGHTS_FILENAME = "sae_weights.safetensors"
#: The SAELens format written: sae-lens >= 6 reads cfg.json fields as they are (older versions are renamed on load).
SAELENS_FORMAT_VERSION = "6.0.0"
#: A decoder row whose norm is within this (relative) distance of 1 counts as unit and is not folded.
UNIT_NORM_TOL = 1e-5

_TRANSCODERS = {"transcoder": "standard", "jumprelu_transcoder": "jumprelu"}
_ARCHITECTURES = ("standard", "topk", "jumprelu", "gated", *_TRANSCODERS)
#: A gated SAE's tensors beyond W_enc, W_dec, b_dec (its b_gate takes the place of b_enc).
_GATED_TENSORS = ("b_gate", "r_mag", "b_mag")
#: cfg.json fields the exporter computes from the model: overriding them would break the equivalence.
_COMPUTED_FIELDS = (
    "architecture",
    "d_in",
    "d_sae",
    "d_out",
    "k",
    "apply_b_dec_to_input",
    "normalize_activations",
    "reshape_activations",
    "rescale_acts_by_decoder_norm",
)
_DTYPES = ("float32", "float64")


# ---------------------------------------------------------------------------------------- export
def export_saelens(estimator, path, *, overwrite=False, **cfg_overrides):
    """Write a fitted skdict SAE as a SAELens folder that ``sae_lens.SAE.load_from_disk`` loads.

    ======================  =========================  ===============================
    skdict                  SAELens (SAE)              SAELens (transcoder, ``fit(X, Y)``)
    ======================  =========================  ===============================
    ``ReLUSAE``             ``"standard"``             ``"transcoder"``
    ``TopKSAE``             ``"topk"`` (``k``)         not supported by SAELens 6
    ``JumpReLUSAE``         ``"jumprelu"``             ``"jumprelu_transcoder"``
    ``BatchTopKSAE``        ``"jumprelu"``, constant   ``"jumprelu_transcoder"``, constant
                            threshold :math:`\\theta`   threshold :math:`\\theta`
    ``GatedSAE``            ``"gated"``                not supported by SAELens 6
    ``MatryoshkaSAE``       as ``BatchTopKSAE`` (its   as ``BatchTopKSAE``
                            prefix widths in the
                            metadata), or as
                            ``TopKSAE`` (``"topk"``)
    ======================  =========================  ===============================

    The training penalty (``alpha``) is not written: SAELens's inference configs have no such
    field and the codes do not depend on it.

    Parameters
    ----------
    estimator : fitted skdict SAE
        One of the classes above (an :class:`~skdict.AnchoredSAE` is written as its ``estimator_``).
    path : str or path-like
        Folder to write (created if needed): ``cfg.json`` and ``sae_weights.safetensors``.
    overwrite : bool, default=False
        Replace those files when the folder already holds them.
    **cfg_overrides
        Metadata for the SAE ecosystem, e.g. ``model_name="gpt2"``,
        ``hook_name="blocks.8.hook_resid_pre"``, ``neuronpedia_id=...``; stored under
        ``cfg["metadata"]``. ``dtype`` ("float32" or "float64", default: the model's) and
        ``device`` (default "cpu") are top-level fields.

    Returns
    -------
    path : pathlib.Path
        The folder written.

    Raises
    ------
    TypeError
        The estimator has no SAELens counterpart (an MPSAE has no encoder: its codes are a
        pursuit over the tied dictionary, not :math:`\\mathrm{act}(a)`; a TopK transcoder has none in SAELens 6).
    ValueError
        The estimator is not fitted, a BatchTopK model has no inference threshold yet, or an
        override names a field computed from the model (``d_in``, ``k``, ...) or an unknown dtype.
    FileExistsError
        The folder holds a SAELens model and ``overwrite`` is False.
    """
    model = _unwrapped(estimator)
    architecture, extra_cfg, activation = _saelens_architecture(model)
    dtype = cfg_overrides.pop("dtype", str(np.dtype(model.components_.dtype)))
    if dtype not in _DTYPES:
        raise ValueError(f"dtype={dtype!r}: SAELens files from skdict are written as one of {_DTYPES}.")
    tensors = _saelens_tensors(model, activation)
    tensors = {name: np.ascontiguousarray(value, dtype=dtype) for name, value in tensors.items()}
    cfg = {
        "architecture": architecture,
        "d_in": int(model.n_features_in_),
        "d_sae": int(model.components_.shape[0]),
        "dtype": dtype,
        "device": cfg_overrides.pop("device", "cpu"),
        "apply_b_dec_to_input": not model.is_transcoder_,
        "normalize_activations": "none",
        "reshape_activations": "none",
        **({"d_out": int(model.n_targets_)} if model.is_transcoder_ else {}),
        **extra_cfg,
        "metadata": _metadata(activation[1], cfg_overrides),
    }
    return _write_folder(Path(path), cfg, tensors, overwrite=overwrite)


def _unwrapped(estimator):
    """The fitted SAE to export: ``estimator`` itself, or an AnchoredSAE's ``estimator_``."""
    from sklearn.utils.validation import check_is_fitted

    inner = getattr(estimator, "estimator_", None)
    model = inner if inner is not None and hasattr(inner, "components_") else estimator
    check_is_fitted(model, "components_")
    return model


def _saelens_architecture(model):
    """``(architecture, architecture's cfg fields, activation)`` of a skdict SAE; TypeError if SAELens has none."""
    from skdict.sae import BatchTopKSAE, GatedSAE, JumpReLUSAE, MatryoshkaSAE, ReLUSAE, TopKSAE

    name = type(model).__name__
    transcoder = model.is_transcoder_
    topk_codes = isinstance(model, TopKSAE) or (isinstance(model, MatryoshkaSAE) and model.activation == "topk")
    if isinstance(model, BatchTopKSAE) and not topk_codes:  # a Matryoshka BatchTopK SAE too, as SAELens saves it
        if model.threshold_ is None:
            raise ValueError(
                f"{name} has no inference threshold_ (its last fit was interrupted): fit or partial_fit it to the end "
                "before exporting."
            )
        details = {"training_architecture": "batchtopk", "training_architecture_details": {"k": model.k_}}
        if isinstance(model, MatryoshkaSAE):  # SAELens's own name and field for the nested prefixes
            details = {"training_architecture": "matryoshka_batchtopk", "training_architecture_details": {
                "k": model.k_, "matryoshka_widths": [int(width) for width in model.matryoshka_widths_]}}
        return ("jumprelu_transcoder" if transcoder else "jumprelu"), {}, ("constant_threshold", details)
    if isinstance(model, JumpReLUSAE):
        return ("jumprelu_transcoder" if transcoder else "jumprelu"), {}, ("threshold", {})
    if topk_codes:
        if transcoder:
            raise TypeError(
                f"{name} was fitted as a transcoder, and SAELens 6 has no TopK transcoder architecture "
                "(only 'transcoder' with ReLU and 'jumprelu_transcoder'): use ReLUSAE, JumpReLUSAE or "
                "BatchTopKSAE for a transcoder to share with SAELens, or export a TopK SAE (fit(X))."
            )
        return "topk", {"k": int(model.k_), "rescale_acts_by_decoder_norm": False}, (None, {})
    if isinstance(model, ReLUSAE):
        return ("transcoder" if transcoder else "standard"), {}, (None, {})
    if isinstance(model, GatedSAE):
        if transcoder:
            raise TypeError(
                f"{name} was fitted as a transcoder, and SAELens 6 has no gated transcoder architecture: export a "
                "gated SAE (fit(X)), or use ReLUSAE or JumpReLUSAE for a transcoder to share with SAELens."
            )
        return "gated", {}, ("gated", {})
    if not hasattr(model, "encoder_"):
        raise TypeError(
            f"{name} has no encoder (codes come from a pursuit over its tied dictionary, not from "
            "act((x - b_dec) W_enc^T + b_enc)), so no SAELens architecture computes them: export a TopKSAE, "
            "ReLUSAE, JumpReLUSAE or BatchTopKSAE instead."
        )
    raise TypeError(
        f"{name} has no SAELens counterpart: export_saelens writes TopKSAE, ReLUSAE, JumpReLUSAE, BatchTopKSAE and GatedSAE."
    )


def _saelens_tensors(model, activation):
    """SAELens's weights of a skdict SAE, in float64; a transcoder's ``input_center_`` folded into ``b_enc``."""
    encoder = to_numpy(model.encoder_).astype(np.float64)
    bias = to_numpy(model.encoder_bias_).astype(np.float64)
    if model.is_transcoder_:  # SAELens's transcoders never centre the input: (x - c) W^T + b = x W^T + (b - c W^T)
        bias = bias - to_numpy(model.input_center_).astype(np.float64) @ encoder.T
    tensors = {
        "W_enc": encoder.T,
        "b_enc": bias,
        "W_dec": to_numpy(model.components_),
        "b_dec": to_numpy(model.decoder_bias_),
    }
    kind = activation[0]
    if kind == "threshold":
        tensors["threshold"] = to_numpy(model.threshold_)
    elif kind == "constant_threshold":
        tensors["threshold"] = np.full(model.components_.shape[0], model.threshold_)
    elif kind == "gated":  # the gate's bias is SAELens's b_gate; the magnitude path's r_mag, b_mag
        tensors.update(b_gate=tensors.pop("b_enc"), r_mag=to_numpy(model.r_mag_), b_mag=to_numpy(model.b_mag_))
    return tensors


def _metadata(details, cfg_overrides):
    """cfg["metadata"]: format version, writer, training ``details`` (BatchTopK's k), then the user's fields."""
    from skdict import __version__

    for name in cfg_overrides:
        if name in _COMPUTED_FIELDS:
            raise ValueError(
                f"cfg field {name!r} is computed from the model (it decides what the SAE computes) and cannot be "
                f"overridden; metadata fields such as model_name and hook_name can."
            )
    metadata = {"sae_lens_version": SAELENS_FORMAT_VERSION, "exported_by": f"skdict {__version__}"}
    metadata.update(details)
    metadata.update(cfg_overrides.pop("metadata", None) or {})
    metadata.update(cfg_overrides)
    return metadata


def _write_folder(folder, cfg, tensors, *, overwrite):
    """Write the safetensors file, then ``cfg.json``, into ``folder``, each all at once (temporary file, rename)."""
    from safetensors.numpy import save as safetensors_bytes

    from skdict.sae._checkpoint import atomic_write

    try:  # before anything is written: a value JSON cannot hold must not leave weights without their cfg.json
        text = json.dumps(cfg, indent=2) + "\n"
    except (TypeError, ValueError) as error:
        raise TypeError(f"cfg.json cannot hold the metadata given ({error}): pass str, numbers, lists and dicts.") from None
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} is a file; export_saelens writes a folder: give another path.")
    folder.mkdir(parents=True, exist_ok=True)
    targets = (folder / WEIGHTS_FILENAME, folder / CFG_FILENAME)
    existing = [str(t) for t in targets if t.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists: pass overwrite=True to replace it, or choose another folder.")
    payload = safetensors_bytes(tensors)
    atomic_write(str(targets[0]), lambda handle: handle.write(payload))
    atomic_write(str(targets[1]), lambda handle: handle.write(text.encode()))
    return folder


# ---------------------------------------------------------------------------------------- import
def load_saelens(path, *, device=None):
    """A fitted skdict SAE from a SAELens folder (``cfg.json`` + ``sae_weights.safetensors``).

    ``"standard"`` and ``"transcoder"`` become a :class:`~skdict.ReLUSAE`, ``"topk"`` a
    :class:`~skdict.TopKSAE` (same ``k``), ``"jumprelu"`` and ``"jumprelu_transcoder"`` a
    :class:`~skdict.JumpReLUSAE` (a :class:`~skdict.BatchTopKSAE` or :class:`~skdict.MatryoshkaSAE`
    when the metadata says it was trained as one and its threshold is one constant), ``"gated"`` a
    :class:`~skdict.GatedSAE`. Codes and reconstructions equal
    SAELens's (to rounding), after the folds of this module's docstring. Training parameters
    (``alpha``, ``learning_rate``, ...) are skdict's defaults; ``set_params`` them before training on.

    Parameters
    ----------
    path : str or path-like
        The folder (or its ``cfg.json``).
    device : {None, "cpu", "cuda"}, default=None
        Where the model's arrays live (``None``: the CPU).

    Returns
    -------
    estimator : fitted skdict SAE
        ``transform``, ``inverse_transform``, ``score`` work; ``partial_fit`` trains on with a fresh optimizer.

    Raises
    ------
    FileNotFoundError
        The folder lacks ``cfg.json`` or ``sae_weights.safetensors``.
    ValueError
        A field cannot be mapped (``normalize_activations`` other than "none", ``reshape_activations``
        "hook_z", an unknown ``architecture``: the message names the field and its value), or a tensor
        is missing, unexpected or ill-shaped (naming it, its shape and the expected one).
    """
    cfg, tensors = read_saelens(path)
    return from_saelens(cfg, tensors, device=device)


def read_saelens(path):
    """``(cfg, tensors)`` of a SAELens folder: the JSON config and the safetensors arrays as NumPy (no torch)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    folder = Path(path)
    if folder.name == CFG_FILENAME:
        folder = folder.parent
    for name in (CFG_FILENAME, WEIGHTS_FILENAME):
        if not (folder / name).is_file():
            raise FileNotFoundError(
                f"{folder / name} not found: a SAELens folder holds {CFG_FILENAME} and {WEIGHTS_FILENAME}."
            )
    try:
        cfg = json.loads((folder / CFG_FILENAME).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{folder / CFG_FILENAME} is not a JSON file ({type(error).__name__}: {error}).") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"{folder / CFG_FILENAME} holds a JSON {type(cfg).__name__}, not the object of a SAELens config.")
    try:
        tensors = load_file(str(folder / WEIGHTS_FILENAME))
    except TypeError as error:  # e.g. bfloat16, which NumPy cannot hold
        raise ValueError(
            f"{folder / WEIGHTS_FILENAME}: {error}. Convert the weights to float32 with sae-lens first "
            "(SAE.load_from_disk(path, dtype='float32').save_model(new_path))."
        ) from error
    except (SafetensorError, OSError) as error:
        raise ValueError(f"{folder / WEIGHTS_FILENAME} is not a safetensors file ({type(error).__name__}: {error}).") from None
    return cfg, tensors


def from_saelens(cfg, tensors, *, device=None, source="SAELens"):
    """A fitted skdict SAE from a SAELens config dict and its tensors (NumPy arrays named as SAELens names them).

    ``source`` names the file's format in error messages (e.g. "Gemma Scope params.npz").
    """
    from skdict.io._build import build_fitted

    cfg = _checked_cfg(cfg)
    tensors = _checked_tensors(cfg, tensors, source)
    cls, params, arrays, fitted = _skdict_model(cfg, tensors)
    fitted["is_transcoder_"] = cfg["architecture"] in _TRANSCODERS
    return build_fitted(cls, params, arrays, fitted, device=device)


def _major_version(cfg):
    version = cfg.get("sae_lens_version") or (cfg.get("metadata") or {}).get("sae_lens_version")
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return 0


def _checked_cfg(cfg):
    """The config with pre-6.0 names updated and defaults filled; ValueError naming a field skdict cannot map."""
    cfg = dict(cfg)
    if _major_version(cfg) < 6:  # sae-lens < 6 wrote hook_point / activation_fn and no architecture
        if "hook_point" in cfg:
            cfg.setdefault("hook_name", cfg["hook_point"])
        if cfg.get("activation_fn", cfg.get("activation_fn_str")) == "topk":
            cfg.setdefault("architecture", "topk")
            cfg.setdefault("k", (cfg.get("activation_fn_kwargs") or {}).get("k"))
        cfg.setdefault("architecture", "standard")
        hook_name = str(cfg.get("hook_name") or (cfg.get("metadata") or {}).get("hook_name") or "")
        cfg.setdefault("reshape_activations", "hook_z" if "hook_z" in hook_name else "none")
        if cfg.get("finetuning_scaling_factor"):
            _refuse(cfg, "finetuning_scaling_factor", "a learned per-latent rescaling skdict does not have")
    architecture = cfg.get("architecture")
    if architecture not in _ARCHITECTURES:
        reason = (
            "SAELens's training format: save the inference model (save_inference_model writes it as 'jumprelu')"
            if architecture == "batchtopk"
            else f"skdict reads {', '.join(repr(a) for a in _ARCHITECTURES)}"
        )
        _refuse(cfg, "architecture", reason)
    if (cfg.get("normalize_activations") or "none") != "none":
        _refuse(
            cfg,
            "normalize_activations",
            "skdict models take the activations as they are; fold the normalisation into the weights with sae-lens "
            "first (e.g. sae.fold_activation_norm_scaling_factor(factor)) or normalise X yourself and load a copy "
            "with normalize_activations='none'",
        )
    if (cfg.get("reshape_activations") or "none") != "none":
        _refuse(
            cfg,
            "reshape_activations",
            "skdict reads 2-D activations: flatten hook_z's (n_heads, d_head) to n_heads * d_head columns yourself "
            "and load a copy with reshape_activations='none'",
        )
    if architecture == "topk" and cfg.get("k") is None:
        _refuse(cfg, "k", "a TopK SAE needs its k")
    for field in ("d_in", "d_sae", "k", "d_out"):
        if field in cfg or field in ("d_in", "d_sae"):
            cfg[field] = _positive(cfg, field, "cfg.json field")
    cfg.setdefault("apply_b_dec_to_input", True)
    return cfg


def _positive(fields, field, what, *, whole=True):
    """``fields[field]`` as a positive int (an integral float such as 4.0 too), or a positive float when not
    ``whole``; a ValueError naming the field otherwise."""
    value = fields.get(field)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    kinds = int if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not 0 < value < np.inf:
        kind = "whole number" if whole else "number"
        raise ValueError(f"SAELens {what} {field}={value!r} is not a positive {kind}: the config is damaged.")
    return value


def _refuse(cfg, field, reason):
    raise ValueError(f"SAELens cfg.json field {field}={cfg.get(field)!r} cannot be mapped to skdict: {reason}.")


def _checked_tensors(cfg, tensors, source):
    """The tensors an architecture needs, names and shapes checked; an older ``log_threshold`` is read as ``exp``."""
    tensors = dict(tensors)
    if "log_threshold" in tensors and "threshold" not in tensors:  # older JumpReLU training files
        tensors["threshold"] = np.exp(tensors.pop("log_threshold"))
    d_in, d_sae = cfg["d_in"], cfg["d_sae"]
    d_out = cfg.get("d_out", d_in) if cfg["architecture"] in _TRANSCODERS else d_in
    expected = {"W_enc": (d_in, d_sae), "b_enc": (d_sae,), "W_dec": (d_sae, d_out), "b_dec": (d_out,)}
    if _TRANSCODERS.get(cfg["architecture"], cfg["architecture"]) == "jumprelu":
        expected["threshold"] = (d_sae,)
    if cfg["architecture"] == "gated":
        del expected["b_enc"]
        expected.update((name, (d_sae,)) for name in _GATED_TENSORS)
    unexpected = sorted(set(tensors) - set(expected))
    if unexpected:
        raise ValueError(
            f"{source} weights hold tensor(s) {unexpected} that architecture {cfg['architecture']!r} does not use "
            f"(expected {sorted(expected)}); skdict cannot compute what they add (e.g. a skip connection)."
        )
    for name, shape in expected.items():
        if name not in tensors:
            raise ValueError(
                f"{source} tensor {name} is missing: architecture {cfg['architecture']!r} needs shape {shape}."
            )
        found = tuple(tensors[name].shape)
        if found != shape:
            raise ValueError(
                f"{source} tensor {name} has shape {found}, expected {shape} (d_in={d_in}, d_sae={d_sae}"
                + (f", d_out={d_out}" if d_out != d_in else "")
                + ")."
            )
        bad = non_finite(tensors[name], (np.inf, -np.inf) if name == "threshold" else ())
        if bad is not None:  # a threshold of +inf (never fires) or -inf (always, as ReLU) is meaningful
            raise ValueError(f"{source} tensor {name} holds {bad}: the SAE would compute NaN; the weights are damaged.")
    return tensors


def _skdict_model(cfg, tensors):
    """``(class, constructor parameters, arrays, fitted scalars)`` of the skdict SAE that computes the same."""
    from skdict.sae import GatedSAE, JumpReLUSAE, ReLUSAE, TopKSAE

    kind = _TRANSCODERS.get(cfg["architecture"], cfg["architecture"])
    transcoder = cfg["architecture"] in _TRANSCODERS
    dtype = np.result_type(*(t.dtype for t in tensors.values()))
    encoder = tensors["W_enc"].astype(np.float64).T  # (d_sae, d_in), skdict's layout
    gated = {name: tensors[name].astype(np.float64) for name in _GATED_TENSORS if name in tensors}
    bias = gated.pop("b_gate") if "b_gate" in gated else tensors["b_enc"].astype(np.float64)
    decoder = tensors["W_dec"].astype(np.float64)
    decoder_bias = tensors["b_dec"].astype(np.float64)
    if not transcoder and not cfg["apply_b_dec_to_input"]:  # x W^T + b = (x - b_dec) W^T + (b + b_dec W^T)
        bias = bias + decoder_bias @ encoder.T
        if gated:  # the magnitude path's directions are e^r_mag W
            gated["b_mag"] = gated["b_mag"] + np.exp(gated["r_mag"]) * (decoder_bias @ encoder.T)
    threshold = tensors["threshold"].astype(np.float64) if "threshold" in tensors else None
    scale = _decoder_fold(decoder, cfg)
    encoder, bias, decoder = encoder * scale[:, None], bias * scale, decoder / scale[:, None]
    arrays = {"encoder_": encoder, "encoder_bias_": bias, "components_": decoder, "decoder_bias_": decoder_bias}
    if transcoder:
        arrays["input_center_"] = np.zeros(encoder.shape[1])
    arrays = {name: value.astype(dtype) for name, value in arrays.items()}
    if kind == "standard":
        return ReLUSAE, {}, arrays, {}
    if kind == "topk":
        return TopKSAE, {"k": int(cfg["k"])}, arrays, {}
    if kind == "gated":  # decoder norms fold into b_mag as into b_gate (SAELens's fold_W_dec_norm); r_mag is unchanged
        magnitude = {"r_mag_": gated["r_mag"], "b_mag_": gated["b_mag"] * scale}
        return GatedSAE, {}, {**arrays, **{name: value.astype(dtype) for name, value in magnitude.items()}}, {}
    threshold = np.maximum(threshold * scale, 0.0).astype(dtype)  # SAELens: ReLU(a) 1[a > theta]
    trained_as = _batchtopk_training(cfg, threshold, n_components=decoder.shape[0])
    if trained_as is not None:
        cls, params = trained_as
        return cls, params, arrays, {"threshold_": float(threshold[0])}
    return JumpReLUSAE, {}, {**arrays, "threshold_": threshold}, {}


def _decoder_fold(decoder, cfg):
    """Per-latent factors :math:`n_j` folding the decoder row norms into the encoder (1 where a row is unit or zero).

    A TopK SAE without ``rescale_acts_by_decoder_norm`` selects on the raw pre-activations:
    scaling them per latent would change the selection, so its rows are kept (factors 1) and
    a warning says that skdict's training keeps atoms at unit norm.
    """
    norms = np.linalg.norm(decoder, axis=1)
    off_unit = (np.abs(norms - 1.0) > UNIT_NORM_TOL) & (norms > 0)
    if cfg["architecture"] == "topk" and cfg.get("rescale_acts_by_decoder_norm"):
        return np.where(norms > 0, norms, 1.0)
    if cfg["architecture"] == "topk" and off_unit.any():
        warnings.warn(
            f"{int(off_unit.sum())} decoder rows of this TopK SAE are not unit-norm and rescale_acts_by_decoder_norm "
            "is False, so their norms cannot be folded into the encoder without changing which latents the top-k "
            "selects: the rows are kept as they are (codes and reconstructions equal SAELens's), but training this "
            "model further rescales every atom to unit norm.",
            UserWarning,
            stacklevel=4,
        )
        return np.ones_like(norms)
    return np.where(off_unit, norms, 1.0)


def _batchtopk_training(cfg, threshold, *, n_components):
    """``(class, parameters)`` of a JumpReLU file trained as BatchTopK or Matryoshka BatchTopK, else None.

    The metadata's ``training_architecture`` is ``"batchtopk"`` (:class:`~skdict.BatchTopKSAE`) or
    ``"matryoshka_batchtopk"`` (:class:`~skdict.MatryoshkaSAE`, whose ``matryoshka_widths`` are the
    cumulative prefix widths; like SAELens, a list that stops short of ``d_sae`` gets ``d_sae`` added),
    its details give ``k``, and the threshold is one constant (SAELens's inference form of both).

    Raises
    ------
    ValueError
        ``k`` is not positive, or ``matryoshka_widths`` is not a strictly increasing list of whole
        numbers (the message names the cfg.json field).
    """
    from skdict.sae import BatchTopKSAE, MatryoshkaSAE
    from skdict.sae.matryoshka import resolve_widths

    metadata = cfg.get("metadata") or {}
    details = metadata.get("training_architecture_details") or {}
    architecture = metadata.get("training_architecture")
    if architecture not in ("batchtopk", "matryoshka_batchtopk") or details.get("k") is None or np.ptp(threshold) != 0:
        return None
    field = "cfg.json field metadata.training_architecture_details"
    params = {"k": _positive(details, "k", field, whole=False)}
    if architecture == "batchtopk":
        return BatchTopKSAE, params
    widths = details.get("matryoshka_widths")
    if not isinstance(widths, list):
        raise ValueError(f"{field}.matryoshka_widths must be a list of prefix widths, got {widths!r}.")
    if widths and widths[-1] != n_components:
        widths = [*widths, n_components]
    try:
        resolve_widths(widths, n_components)
    except ValueError as exc:
        raise ValueError(f"{field}: {exc}") from None
    return MatryoshkaSAE, {**params, "matryoshka_widths": widths}
