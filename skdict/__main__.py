"""``python -m skdict``: fit the SAE family on a synthetic ground-truth problem and on digits.

Prints one table per data set (explained variance, L0, dead fraction, ground-truth
recovery, fit time), writes the tables and, when matplotlib is installed, plots
into the output directory. The work itself lives in :mod:`skdict._report`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

DESCRIPTION = """\
Fit the skdict SAE family (TopKSAE, BatchTopKSAE, ReLUSAE, JumpReLUSAE, MPSAE),
dictionary learning (DL-FISTA, SoftplusAdam), LISTA unrolled on the true
features (LISTA-oracle) and anchored SAEs on three embedded problems and print
one table per problem:

  synthetic  make_linear_representation_bench: sparse codes over known
             features, so ground-truth recovery can be measured (anchored
             SAEs pin 16 true features; their recovery counts the others)
  ood        make_compositional_ood: compressed-sensing codes whose OOD split
             combines latents never seen together in training; MCC of the
             codes in and out of distribution, with sparse coding on the true
             features (FISTA-oracle) as the ceiling
  digits     scikit-learn's 8x8 digits scaled to [0, 1] (no download)

Columns: explained variance of inverse_transform(transform(X)), L0 (mean
nonzeros per row of the codes), dead fraction (latents never active on X;
SoftplusAdam's codes are never exactly zero, so for it both count only
|z| > {threshold:g} of the row's largest |z|, marked *; a note under a table says what
dead fraction to expect when n_components exceeds the true features),
ground-truth recovery (fraction of true features matched by a learned atom
with |cosine| > 0.95; n/a without ground truth), M_IP (mean over true features
of the best |cosine|), MCC in / OOD (Hungarian-matched |Pearson| of the codes)
and fit seconds. A last line fits TripletFeatureLearner on known feature
matrices. Notes under a table name the methods whose budget ran out before
their tolerance was met (ConvergenceWarning). The tables go to
OUTPUT_DIR/report.txt; with matplotlib installed, training curves (and the
TopK atoms of digits) go to PNG files there too.

Methods (for --methods): {methods}

On your own data (see each command's --help):
  skdict train DATA --model topk|batchtopk|relu|jumprelu|mp --output DIR
  skdict evaluate MODEL DATA
"""


def _build_parser(method_names, code_threshold):
    from skdict.cli._common import add_device_option

    parser = argparse.ArgumentParser(
        prog="python -m skdict",
        description=DESCRIPTION.format(methods=", ".join(method_names), threshold=code_threshold),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: smaller problems (synthetic 2000 x 28 with 32 true features, ood 2000 samples, "
        "digits with 128 latents) and fewer epochs and iterations: about 13 s in all (18 s of CPU time) on 2 cores, "
        "against about 1 min 40 s for the default run. Its numbers are rougher and not comparable "
        "to the default run's",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="random_state of the synthetic data and of every estimator (default: %(default)s)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path("skdict_report"),
        help="directory for report.txt and the PNG plots; created if missing (default: %(default)s/)",
    )
    parser.add_argument(
        "--methods",
        default=",".join(method_names),
        help="comma-separated method names to fit, case-insensitive (default: all; listed above)",
    )
    add_device_option(parser)
    return parser


def _parse_methods(parser, text, method_names):
    by_lower = {name.lower(): name for name in method_names}
    chosen = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if item.lower() not in by_lower:
            parser.error(f"unknown method {item!r} in --methods; choose from {', '.join(method_names)}")
        if by_lower[item.lower()] not in chosen:
            chosen.append(by_lower[item.lower()])
    if not chosen:
        parser.error(f"--methods is empty; choose from {', '.join(method_names)}")
    return chosen


def _resolve_device(parser, device):
    """'auto' becomes 'cuda' when CuPy reaches a GPU, else 'cpu'; an unusable 'cuda' is a usage error."""
    from skdict.cli._common import UsageError, resolve_device

    try:
        return resolve_device(device)
    except UsageError as exc:
        parser.error(str(exc))


def main(argv=None):
    """Run a sub-command (``train``, ``evaluate``) or the demo report; returns the exit status.

    The demo's status is 0 when every fit succeeded; a sub-command's is documented in its ``--help``.
    """
    from skdict.cli import COMMANDS

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in COMMANDS:
        from skdict.cli import main as run_command

        return run_command(argv)
    return _run_demo(argv)


def _run_demo(argv):
    """The embedded demo report (``python -m skdict [options]``)."""
    from skdict import _report

    names = _report.method_names()
    parser = _build_parser(names, _report.CODE_THRESHOLD)
    args = parser.parse_args(argv)
    methods = _parse_methods(parser, args.methods, names)
    config = _report.RunConfig(quick=args.quick, seed=args.seed, device=_resolve_device(parser, args.device))

    def log(message):
        print(message, file=sys.stderr, flush=True)

    mode = "quick" if args.quick else "default"
    log(f"skdict report ({mode} sizes, seed {config.seed}, device {config.device})")
    start = time.perf_counter()
    reports = _report.run_report(config, methods, log=log)
    tables = [_report.format_table(problem, results) for problem, results in reports]
    if set(methods) == set(names):  # the full report: also the feedback learner
        from skdict.triplets._summary import triplet_summary_line

        tables.append(triplet_summary_line(quick=args.quick, seed=args.seed))
    text = "\n\n".join(tables)
    print(text, flush=True)

    output_dir = args.output_dir
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "report.txt").write_text(text + "\n", encoding="utf-8")
    print(f"\ntables written to {output_dir / 'report.txt'}")
    paths = _report.write_plots(reports, output_dir)
    if paths is None:
        from skdict.plotting._matplotlib import INSTALL_HINT

        print(f"plots skipped: matplotlib is not installed ({INSTALL_HINT})")
    else:
        for path in paths:
            print(f"plot written to {path}")
    print(f"total time {time.perf_counter() - start:.1f} s")

    failed = [r.method for _, results in reports for r in results if r.error is not None]
    if failed:
        print(f"{len(failed)} fit(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
