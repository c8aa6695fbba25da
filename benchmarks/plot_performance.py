"""Plot the figures written by ``sae_step.py --json`` for the documentation's performance page.

Left: each measured time over the encoder GEMM of the same run, with the issue's target
where there is one. Right: the step's peak memory beyond its gradients, in units of the
(batch x n_components) pre-activation matrix, for the row-blocked (default) and the
whole-batch forward pass.

Run::

    PYTHONPATH=. python benchmarks/sae_step.py --json benchmarks/results/sae_step.json
    python benchmarks/plot_performance.py benchmarks/results/sae_step.json doc/_static/performance.png
"""

from __future__ import annotations

import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", help="JSON written by sae_step.py --json")
    parser.add_argument("output", help="image to write (e.g. doc/_static/performance.png)")
    args = parser.parse_args()
    with open(args.results) as handle:
        record = json.load(handle)

    ratios = [entry for entry in record["ratios"] if not entry["what"].startswith("of which")]
    memory = record.get("memory", [])
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [3, 2]})

    names = [entry["what"] for entry in ratios][::-1]
    values = [entry["ratio"] for entry in ratios][::-1]
    targets = [entry["target"] for entry in ratios][::-1]
    colours = ["tab:gray" if target is None else "tab:green" if value <= target else "tab:red"
               for value, target in zip(values, targets)]
    left.barh(names, values, color=colours)
    for position, target in enumerate(targets):
        if target is not None:
            left.plot([target, target], [position - 0.4, position + 0.4], color="black", linewidth=2)
    for position, (value, target) in enumerate(zip(values, targets)):
        left.text(max(value, target or 0.0), position, f" {value:.2f}", va="center")  # right of the target mark
    left.set_xlabel("time / encoder GEMM (black: target; green met, red not)")
    left.set_xlim(0, max(values + [t for t in targets if t is not None]) * 1.2)
    left.set_title(record["shapes"], fontsize=9)

    if memory:
        labels = [entry["what"] for entry in memory][::-1]
        units = [entry["batch_m_units"] for entry in memory][::-1]
        right.barh(labels, units, color="tab:gray")
        for position, value in enumerate(units):
            right.text(value, position, f" {value:.2f}", va="center")
        right.set_xlabel("peak extra memory / (batch x m)")
        right.set_xlim(0, max(units) * 1.3)
    right.set_title(record["machine"], fontsize=9)
    figure.tight_layout()
    figure.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
