"""``skdict evaluate MODEL DATA [--target TARGET]``: the table of ``skdict train`` for a saved or imported model on other rows."""

from __future__ import annotations

import argparse
import os

from skdict.cli import _common, _data, _summary

DESCRIPTION = """\
Measure a model on DATA (held-out activations, streamed) and print the table of skdict train:
explained variance, L0 (mean active latents per row), dead latents (never fired on DATA) and
dense latents (fire on more than {dense:g}% of DATA's rows).

MODEL is one of
  a folder written by skdict train (DIR/model) or skdict.io.save (it holds config.json);
  a SAELens folder (cfg.json + sae_weights.safetensors; skdict.io.load_saelens);
  a Gemma Scope params.npz (W_enc, W_dec, b_enc, b_dec, threshold; skdict.io.load_gemma_scope).

DATA: {formats}.

A transcoder MODEL (trained with skdict train --target, fit(X, Y), or a SAELens "transcoder" /
"jumprelu_transcoder") needs --target TARGET: its target rows, one per row of DATA, in any DATA
format. The explained variance is then that of TARGET's reconstruction; L0, dead and dense
latents are those of the codes of DATA; --image-shape shapes TARGET's rows (the decoder atoms).

With --output DIR: DIR/report.md, DIR/metrics.json, DIR/feature_density.png, DIR/training_curves.png
(when the model kept its training history) and DIR/atoms.png with --image-shape.

Exit status: 0 done; 1 measuring failed (e.g. a NaN row); 2 bad usage (options, MODEL, DATA or
TARGET, a width that is not the model's, --target missing for a transcoder or given for an SAE,
row counts of DATA and TARGET that differ, an existing --output).
"""


def build_parser():
    parser = argparse.ArgumentParser(
        prog="skdict evaluate",
        description=DESCRIPTION.format(formats=_data.FORMATS, dense=100 * _summary.DENSE_THRESHOLD),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL", help="a saved model folder, a SAELens folder or a params.npz")
    parser.add_argument("data", metavar="DATA", help="the activations to measure on; formats above")
    parser.add_argument("--target", metavar="TARGET",
                        help="a transcoder's targets: one row per row of DATA (formats as DATA)")
    parser.add_argument("--output", "-o", metavar="DIR", help="also write the report, metrics.json and plots here")
    parser.add_argument("--overwrite", action="store_true", help="write into an existing, non-empty DIR")
    _common.add_device_option(parser)
    _common.add_image_shape_option(parser)
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return parser


def load_model(path, device):
    """The model a MODEL path names (native folder, SAELens folder, Gemma Scope npz).

    Raises
    ------
    UsageError
        The path is none of these.
    """
    from skdict import io

    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "config.json")):
        return io.load(path, device=device)
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "cfg.json")):
        return io.load_saelens(path, device=device)
    if os.path.isfile(path) and path.endswith(".npz"):
        return io.load_gemma_scope(path, device=device)
    raise _common.UsageError(
        f"MODEL {path!r} is not a model skdict reads: give a folder with config.json (skdict train, skdict.io.save), "
        "a SAELens folder (cfg.json + sae_weights.safetensors) or a Gemma Scope params.npz."
    )


def check_model_fits(model, args, source, targets):
    """MODEL's kind (SAE or transcoder) and widths must be those of DATA and TARGET.

    Raises
    ------
    UsageError
        A transcoder without ``--target``, an SAE with it, or DATA / TARGET whose width is not the
        model's input / output width (the file, its width and the model's named).
    """
    transcoder = bool(getattr(model, "is_transcoder_", False))
    if transcoder and targets is None:
        raise _common.UsageError(
            f"MODEL {args.model} is a transcoder (it encodes {model.n_features_in_} features and reconstructs "
            f"{model.n_targets_} others): pass its targets with --target TARGET, one row per row of DATA."
        )
    if not transcoder and targets is not None:
        raise _common.UsageError(
            f"MODEL {args.model} is an SAE (it reconstructs its input DATA): drop --target, or give a transcoder MODEL "
            "(skdict train --target)."
        )
    widths = [("DATA", args.data, source, model.n_features_in_, "input")]
    if transcoder:
        widths.append(("TARGET", args.target, targets, model.n_targets_, "output"))
    for what, spec, rows, expected, side in widths:
        if rows.n_features != expected:
            raise _common.UsageError(
                f"{what} {spec} has {rows.n_features} features per row, but MODEL {args.model} has {expected} "
                f"{side} features: give the activations the model was trained on."
            )


def run(argv, log):
    """``skdict evaluate``; returns the exit status (errors propagate to :func:`skdict.cli.main`)."""
    args = build_parser().parse_args(argv)
    if args.output is not None:
        _common.check_output_dir(args.output, args.overwrite)
    model = load_model(args.model, _common.resolve_device(args.device))
    with _data.opened_pair(args.data, args.target) as (source, targets):
        check_model_fits(model, args, source, targets)
        _common.check_image_shape(args.image_shape, model.components_.shape[1],
                                  what="the data" if targets is None else f"TARGET {args.target}")
        metrics, frequencies = _summary.measure(model, source, targets)
        metrics.update(model=args.model, estimator=repr(model), data=args.data, measured_on="DATA")
        if targets is not None:
            metrics["target"] = args.target
        text = _summary.format_table(metrics, title=_summary.title(model, metrics, "rows", loaded_from=args.model))
        print(text, flush=True)
        if args.output is not None:
            _summary.write_report(args.output, text, metrics, model, source, frequencies,
                                  image_shape=args.image_shape, log=log)
    return 0
