"""``skdict train DATA --model M --n-components N --output DIR``: an SAE on the user's activations.

With ``--target TARGET`` (row-aligned with DATA) a transcoder: ``fit(DATA, TARGET)`` encodes DATA
and reconstructs TARGET. The data are streamed (never loaded whole) into the estimator's ``fit``;
the last rows (of both files) are held out to measure the model; the model is saved natively (:func:`skdict.io.save`) and in the SAELens
folder format (:func:`skdict.io.export_saelens`), with a report, ``metrics.json`` and plots.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import warnings

from skdict.cli import _common, _data, _summary

#: --model name -> (estimator class name, whether it takes k, whether it takes alpha, what it is).
MODELS = {
    "topk": ("TopKSAE", True, False, "keeps the k largest pre-activations per row"),
    "batchtopk": ("BatchTopKSAE", True, False, "keeps the k * batch largest over a batch (a threshold at inference)"),
    "relu": ("ReLUSAE", False, True, "ReLU codes with an L1 penalty alpha (SAELens 'standard')"),
    "jumprelu": ("JumpReLUSAE", False, True, "JumpReLU codes with an L0 penalty alpha"),
    "gated": ("GatedSAE", False, True, "a gate picks the latents, a magnitude path sizes them; L1 alpha on the gate"),
    "matryoshka": ("MatryoshkaSAE", True, False, "BatchTopK codes; each nested prefix of latents reconstructs too"),
    "mp": ("MPSAE", True, False, "k steps of matching pursuit over a tied dictionary"),
}

#: Files and folders skdict train writes in --output (removed before a run with --overwrite).
OUTPUTS = ("model", "saelens", "report.md", "metrics.json", "feature_density.png", "training_curves.png", "atoms.png")

DESCRIPTION = """\
Train a sparse autoencoder on activations stored on disk, streaming them (DATA is never
loaded whole), and write to --output DIR:

  DIR/model/            the model (skdict.io.save: safetensors + JSON; skdict.io.load reads it)
  DIR/saelens/          the model in the SAELens folder format (cfg.json + sae_weights.safetensors;
                        not for mp, nor a topk or gated transcoder: SAELens has none; the log says so)
  DIR/report.md         the table printed at the end; DIR/metrics.json the same figures
  DIR/feature_density.png, DIR/training_curves.png, and DIR/atoms.png with --image-shape
                        (with matplotlib: pip install 'skdict[plot]')

DATA: {formats}.

Transcoder: --target TARGET (any DATA format) holds one target row per row of DATA, e.g. an
MLP's output activations for its input activations in DATA. The model encodes DATA and
reconstructs TARGET (fit(DATA, TARGET); SAELens's "transcoder" / "jumprelu_transcoder"); the same
last rows of both are held out; the explained variance is that of TARGET, L0 and dead/dense
latents those of the codes of DATA; --image-shape then shapes TARGET's rows (the decoder atoms).
Every model but mp (its tied dictionary both codes and reconstructs DATA) trains as a transcoder.

Models (--model):{models}

Budget: training ends at the first of --epochs, --max-steps, --max-samples reached. Without
any, the estimator's default: train until the loss stops improving (early stopping), at most
20000 steps. A budget that runs out before the loss settles is reported as a warning.

The table: explained variance, L0 (mean active latents per row), dead latents (never fired on
the evaluation rows) and dense latents (fire on more than {dense:g}% of them), measured on the
held-out rows (--eval-fraction; the last rows of DATA, a contiguous tail), or on the training
rows with --eval-fraction 0.

Exit status: 0 done; 1 training or measuring failed (e.g. a NaN row, a diverged fit: the last
sane model is still saved); 2 bad usage (options, DATA or TARGET, row counts of DATA and TARGET
that differ, an existing --output).
"""


def _model_help():
    width = max(len(name) for name in MODELS) + 2
    return "\n".join(f"  {name:<{width}}{cls_name}: {what}" for name, (cls_name, _, _, what) in MODELS.items())


def build_parser():
    parser = argparse.ArgumentParser(
        prog="skdict train",
        description=DESCRIPTION.format(
            formats=_data.FORMATS, models="\n" + _model_help(), dense=100 * _summary.DENSE_THRESHOLD
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("data", metavar="DATA", help="the activations, (n_samples, n_features); formats above")
    parser.add_argument("--model", required=True, choices=tuple(MODELS), help="the SAE architecture (listed above)")
    parser.add_argument("--target", metavar="TARGET",
                        help="train a transcoder: encode DATA, reconstruct TARGET (one row per row of DATA, "
                        "n_target_features columns; formats as DATA)")
    parser.add_argument("--output", "-o", required=True, metavar="DIR", help="folder for the model, report and plots")
    parser.add_argument("--overwrite", action="store_true", help="replace skdict's files in an existing, non-empty DIR")
    model = parser.add_argument_group("model")
    model.add_argument("--n-components", type=_common.parse_count, metavar="N",
                       help="latents (dictionary size, e.g. 16384 or 16k; default: 8 x n_features)")
    model.add_argument("--k", type=int, help="active latents per row for topk, batchtopk, mp (default: min(32, N))")
    model.add_argument("--alpha", "--l1-coefficient", dest="alpha", type=float,
                       help="sparsity penalty of relu, gated (L1) and jumprelu (L0) (default: the class's, 0.1)")
    model.add_argument("--target-l0", dest="target_l0", type=float, metavar="L0",
                       help="for relu, gated, jumprelu: steer the penalty during training so the mean number of active "
                       "latents per row reaches L0 (--alpha is then its starting value)")
    model.add_argument("--resample-dead", action="store_true",
                       help="re-initialise latents dead for dead_after (10,000) samples towards badly reconstructed rows")
    model.add_argument("--batch-size", type=int, help="rows per Adam step (default: 256)")
    model.add_argument("--learning-rate", "--lr", dest="learning_rate", type=float,
                       help="Adam's step size (default: 1e-3)")
    model.add_argument("--seed", type=int, default=0, help="random_state of the model (default: %(default)s)")
    budget = parser.add_argument_group("budget (default: early stopping, at most 20000 steps)")
    budget.add_argument("--epochs", type=_common.parse_count, help="passes over the training rows (max_iter)")
    budget.add_argument("--max-steps", type=_common.parse_count, help="Adam steps (e.g. 50000, 50k)")
    budget.add_argument("--max-samples", type=_common.parse_count,
                        help="training rows read, over as many epochs as needed (tokens; e.g. 2e8, 200M)")
    run = parser.add_argument_group("run")
    _common.add_device_option(run)
    run.add_argument("--eval-fraction", type=_common.parse_fraction, default=0.01,
                     help=f"fraction of DATA's rows held out (its last rows) to measure the model, at most "
                     f"{_data.MAX_EVAL_ROWS} rows; 0: measure on the training rows (default: %(default)s)")
    _common.add_image_shape_option(run)
    run.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    run.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return parser


def _estimator(args):
    """The estimator --model names, with the options given (the class's defaults otherwise)."""
    from sklearn.utils._param_validation import InvalidParameterError

    import skdict

    cls_name, takes_k, takes_alpha, _ = MODELS[args.model]
    for option, value, allowed, column in (("--k", args.k, takes_k, 1), ("--alpha", args.alpha, takes_alpha, 2),
                                           ("--target-l0", args.target_l0, takes_alpha, 2)):
        if value is not None and not allowed:
            users = ", ".join(name for name, spec in MODELS.items() if spec[column])
            raise _common.UsageError(f"{option} does not apply to --model {args.model}; it is an option of {users}.")
    params = {
        "n_components": args.n_components,
        "k": args.k,
        "alpha": args.alpha,
        "target_l0": args.target_l0,
        "resample_dead": True if args.resample_dead else None,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "max_iter": args.epochs,
        "max_steps": args.max_steps,
        "max_samples": args.max_samples,
    }
    params = {name: value for name, value in params.items() if value is not None}
    if args.k is not None and args.n_components is not None and args.k > args.n_components:
        raise _common.UsageError(
            f"--k {args.k} is larger than --n-components {args.n_components}: a row cannot have more active latents "
            "than there are; lower --k or raise --n-components."
        )
    cls = getattr(skdict, cls_name)
    if args.target is not None and not cls._supports_transcoder:
        transcoders = ", ".join(name for name, spec in MODELS.items() if getattr(skdict, spec[0])._supports_transcoder)
        raise _common.UsageError(
            f"--target does not apply to --model {args.model}: {cls_name}'s codes are a pursuit over a tied dictionary "
            "(the atoms that code DATA are the atoms that reconstruct it), so it cannot reconstruct another TARGET. "
            f"Train a transcoder with --model {transcoders}."
        )
    device = _common.resolve_device(args.device)
    model = cls(**params, device=device, random_state=args.seed, verbose=0 if args.quiet else 1)
    try:  # the constraints fit checks, before any data is read (--k 0, --lr 0, --batch-size 0 ...)
        model._validate_params()
    except InvalidParameterError as exc:
        raise _common.UsageError(f"{exc} (an option of skdict train; see --help).") from None
    return model


def _fit(model, source, targets, log):
    """Fit on the source (a transcoder on ``targets``); ``(fit seconds, warnings raised, error message or None)``.

    A diverged fit keeps its last sane parameters (saved and measured like any other), and the
    command exits with status 1.
    """
    from skdict.exceptions import TrainingDivergedError

    start = time.perf_counter()
    error = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.fit(source, targets)
        except TrainingDivergedError as exc:
            error = f"training diverged: {exc}"
            if not hasattr(model, "components_"):
                raise
    seconds = time.perf_counter() - start
    notes = [f"{w.category.__name__}: {w.message}" for w in caught]
    for note in notes:
        log(f"warning: {note}")
    if error:
        log(f"error: {error}")
    return seconds, notes, error


def save_model(model, output_dir, log):
    """Save natively to DIR/model and in the SAELens format to DIR/saelens (a note when SAELens cannot hold it).

    :func:`skdict.io.export_saelens` raises TypeError for a model SAELens has no architecture for
    (an MPSAE; a TopK or gated transcoder) and ValueError for one it cannot write yet.
    """
    from skdict import io

    path = io.save(model, os.path.join(output_dir, "model"), overwrite=True)
    log(f"model saved to {path}")
    try:
        path = io.export_saelens(model, os.path.join(output_dir, "saelens"), overwrite=True)
    except (TypeError, ValueError, NotImplementedError) as exc:
        log(f"SAELens export skipped: {exc}")
        return
    log(f"SAELens folder written to {path}")


def _clear_outputs(output_dir):
    """Before an --overwrite run: remove what an earlier run wrote (and nothing else)."""
    for name in OUTPUTS:
        path = os.path.join(output_dir, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)


def _last(values):
    return float(values[-1]) if values else float("nan")


def _training_figures(model, seconds, notes, error):
    return {
        "n_steps": int(model.n_steps_),
        "n_samples_seen": int(model.n_samples_seen_),
        "n_epochs": int(model.n_iter_),
        "fit_seconds": seconds,
        "final_loss": float(model.history_["loss"][-1]) if model.history_["loss"] else float("nan"),
        # the SAE libraries' dead latents: none fired in the last dead_after training samples (NaN before that many)
        "training_dead_fraction": _last(model.history_.get("dead_fraction")),
        "dead_after": int(model.dead_after),
        "warnings": notes,
        "error": error,
    }


def _measure_saved(model, rows, targets, args):
    """:func:`_summary.measure` of the model just saved; a failure says the model is saved but unmeasured."""
    try:
        return _summary.measure(model, rows, targets)
    except ValueError as exc:
        saved = os.path.join(args.output, "model")
        measured = rows.name if targets is None else f"{rows.name} with targets {targets.name}"
        again = f"skdict evaluate {saved} DATA" + (" --target TARGET" if targets is not None else "")
        raise ValueError(
            f"{exc} -- The trained model is saved in {saved}, but measuring it on {measured} failed, so no report "
            f"was written: clean those rows, then run {again}."
        ) from exc


def _split(source, targets, eval_fraction):
    """``(training rows, held-out rows or None)`` of DATA and of TARGET (``None``s for an SAE): the same tail of both."""
    n_eval = _data.eval_rows(source.n_rows, eval_fraction)
    train, held_out = _data.split_tail(source, n_eval)
    train_targets, held_out_targets = _data.split_tail(targets, n_eval) if targets is not None else (None, None)
    return train, held_out, train_targets, held_out_targets


def _training_log(model, source, targets, train, held_out):
    rows = "no rows held out" if held_out is None else f"{held_out.n_rows} rows held out"
    what = f"{type(model).__name__} transcoder" if targets is not None else type(model).__name__
    to = f" to reconstruct {targets.n_features} features of {targets.name}" if targets is not None else ""
    return (f"training {what} on {train.n_rows} rows x {source.n_features} features of {source.name}{to} ({rows}), "
            f"device {model.device}")


def run(argv, log):
    """``skdict train``; returns the exit status (errors propagate to :func:`skdict.cli.main`)."""
    args = build_parser().parse_args(argv)
    _common.check_output_dir(args.output, args.overwrite)
    model = _estimator(args)
    with _data.opened_pair(args.data, args.target) as (source, targets):
        if targets is None:
            _common.check_image_shape(args.image_shape, source.n_features)
        else:  # the decoder atoms are rows of TARGET's space
            _common.check_image_shape(args.image_shape, targets.n_features, what=f"TARGET {args.target}")
        train, held_out, train_targets, held_out_targets = _split(source, targets, args.eval_fraction)
        log(_training_log(model, source, targets, train, held_out))
        try:
            seconds, notes, error = _fit(model, train, train_targets, log)
        except KeyboardInterrupt:
            raise KeyboardInterrupt(
                f"training stopped before the model was saved: nothing of this run was written to {args.output} "
                "(a model is saved only when training ends; give a budget, e.g. --max-steps, for a shorter run)."
            ) from None
        if args.overwrite and os.path.isdir(args.output):
            _clear_outputs(args.output)
        os.makedirs(args.output, exist_ok=True)
        save_model(model, args.output, log)  # before measuring: a bad held-out row must not lose the model
        measured_on, measured_targets = (held_out, held_out_targets) if held_out is not None else (train, train_targets)
        metrics, frequencies = _measure_saved(model, measured_on, measured_targets, args)
        metrics.update(_training_figures(model, seconds, notes, error))
        metrics.update(model=args.model, estimator=repr(model), data=args.data, n_train_rows=train.n_rows,
                       measured_on="held-out rows" if held_out is not None else "training rows")
        if targets is not None:
            metrics["target"] = args.target
        text = _summary.format_table(metrics, title=_summary.title(model, metrics, metrics["measured_on"]))
        print(text, flush=True)
        _summary.write_report(args.output, text, metrics, model, measured_on, frequencies,
                              image_shape=args.image_shape, log=log)
    return 1 if error else 0


def stderr_log(message):
    print(message, file=sys.stderr, flush=True)
