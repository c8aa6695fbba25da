"""Do the SAEs' default budgets train small data to convergence? (issue: out-of-core training, "defaults")

For every SAE with default parameters (``random_state`` only) on scikit-learn's digits / 16 and on
``make_linear_representation_bench(4000, 64, 48)``, fit once with the defaults (early stopping ends
the fit), then again for 10x the steps the default fit took with early stopping off, and print the
explained variance of both on the training data and the relative gap. The criterion: every gap
within 1%.

Usage::

    PYTHONPATH=. python benchmarks/default_budget.py [--models TopKSAE MPSAE] [--data digits lrb] [--json PATH]

About 5 minutes per 10x reference fit on a 2-core machine (TopKSAE on digits: 36,800 steps).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skdict import BatchTopKSAE, JumpReLUSAE, MPSAE, ReLUSAE, TopKSAE
from skdict.datasets import make_linear_representation_bench

MODELS = {cls.__name__: cls for cls in (TopKSAE, BatchTopKSAE, ReLUSAE, JumpReLUSAE, MPSAE)}
DATA = {
    "digits": lambda: load_digits().data / 16.0,
    "lrb": lambda: make_linear_representation_bench(4000, 64, 48, random_state=0)[0],
}


def timed_fit(model, X):
    """``(model, seconds)``; a 10x reference that runs out of its budget warns by design."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    return model, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--data", nargs="+", default=list(DATA), choices=list(DATA))
    parser.add_argument("--factor", type=int, default=10, help="reference budget in multiples of the default's steps")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, python {platform.python_version()}")
    rows = []
    for data_name in args.data:
        X = DATA[data_name]()
        for model_name in args.models:
            cls = MODELS[model_name]
            default, seconds = timed_fit(cls(random_state=0), X)
            steps = default.n_steps_
            reference, ref_seconds = timed_fit(
                cls(random_state=0, early_stopping=False, max_steps=args.factor * steps), X
            )
            ev, ev_ref = default.score(X), reference.score(X)
            gap = (ev_ref - ev) / abs(ev_ref)
            rows.append(dict(data=data_name, model=model_name, ev=ev, steps=steps, seconds=seconds, ev_reference=ev_ref,
                             reference_steps=reference.n_steps_, reference_seconds=ref_seconds, relative_gap=gap))
            verdict = "met" if gap <= 0.01 else "NOT met"
            print(f"{data_name:7s} {model_name:13s} default EV {ev:.4f} ({steps} steps, {seconds:.1f} s) | "
                  f"{args.factor}x EV {ev_ref:.4f} ({reference.n_steps_} steps, {ref_seconds:.1f} s) | "
                  f"gap {gap:+.2%} (<= 1%: {verdict})", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
