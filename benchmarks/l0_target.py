"""Does ``target_l0`` reach its target? (issue 13: L0 targeting for the penalty SAEs)

For ReLUSAE and JumpReLUSAE with default parameters plus ``target_l0`` in {8, 16, 32} (``random_state=0``),
on scikit-learn's digits / 16, on ``make_linear_representation_bench(4000, 64, 48)`` (0.65 true features
per sample) and on ``make_linear_representation_bench(4000, 256, 96, sparsity=0.96)`` (``lrb_dense``: 10.1
true features per sample, the density of seed 000's Table 1), fit once and print
the achieved L0 (:func:`skdict.metrics.l0` of ``transform`` on the training data) beside the target, the
relative error (criterion: within 10%), the coefficient reached (``alpha_``, from ``alpha`` = 0.1), the
explained variance, the dead fraction (:func:`skdict.metrics.dead_fraction`: latents that fire on no
training row), the steps early stopping took and any ConvergenceWarning.

Usage::

    PYTHONPATH=. python benchmarks/l0_target.py [--models ReLUSAE JumpReLUSAE] [--data digits lrb]
        [--targets 8 16 32] [--json PATH]

About 18 fits of 10-60 s each on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skdict import JumpReLUSAE, ReLUSAE
from skdict.datasets import make_linear_representation_bench
from skdict.metrics import dead_fraction, l0

MODELS = {cls.__name__: cls for cls in (ReLUSAE, JumpReLUSAE)}
DATA = {
    "digits": lambda: load_digits().data / 16.0,
    "lrb": lambda: make_linear_representation_bench(4000, 64, 48, random_state=0)[0],
    # The paper's density (seed 000: sparsity 0.99 over 1000 features, ~10 active per sample) on a
    # small bench: 256 features in 96 dims at sparsity 0.96, 10.1 active features per sample.
    "lrb_dense": lambda: make_linear_representation_bench(4000, 256, 96, sparsity=0.96, random_state=0)[0],
}


def measure(cls, X, target):
    """One fit with ``target_l0=target``: a dict of the table's columns."""
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model = cls(target_l0=target, random_state=0).fit(X)
    seconds = time.perf_counter() - start
    codes = model.transform(X)
    achieved = l0(codes)
    return dict(
        target=target, l0=achieved, relative_error=achieved / target - 1, alpha=model.alpha_,
        ev=model.score(X), dead_fraction=dead_fraction(codes), steps=model.n_steps_, seconds=seconds,
        warnings=[str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)],
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--data", nargs="+", default=list(DATA), choices=list(DATA))
    parser.add_argument("--targets", nargs="+", type=float, default=[8.0, 16.0, 32.0])
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, python {platform.python_version()}")
    print("| data | model | target | L0 | error | alpha_ | EV | dead | steps | s | warning |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    rows = []
    for data_name in args.data:
        X = DATA[data_name]()
        for model_name in args.models:
            for target in args.targets:
                rows.append(dict(data=data_name, model=model_name, **measure(MODELS[model_name], X, target)))
                print(table_row(rows[-1]), flush=True)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(rows, indent=1))


def table_row(row):
    """One markdown row of the table; an L0 more than 10% off its target is marked."""
    verdict = "" if abs(row["relative_error"]) <= 0.10 else " (NOT within 10%)"
    warned = "; ".join(w[:60] for w in row["warnings"]) or "-"
    return (f"| {row['data']} | {row['model']} | {row['target']:g} | {row['l0']:.2f} | {row['relative_error']:+.1%}{verdict} "
            f"| {row['alpha']:.4g} | {row['ev']:.4f} | {row['dead_fraction']:.3f} | {row['steps']} | {row['seconds']:.1f} "
            f"| {warned} |")


if __name__ == "__main__":
    main()
