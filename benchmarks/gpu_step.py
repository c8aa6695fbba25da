"""TopKSAE training step on CuPy against the cuBLAS GEMM rate (skips without a GPU).

The step's useful floating-point work is the encoder GEMM, 2·B·d·m flops, plus
the sparse products: decoding Z W_dec, the SDDMM G W_decᵀ on the support and the
two weight gradients Zᵀ G and dAᵀ X̃, each 2·B·k·d flops. The step reaches a
rate of step_flops / step_time; cuBLAS reaches 2·B·d·m / gemm_time on the encoder
GEMM alone. Target (issue 6): the step's rate >= 50% of the GEMM's.

Run on a machine with an NVIDIA GPU and CuPy::

    PYTHONPATH=. python benchmarks/gpu_step.py                 # B = 8192, d = 768, m = 8192, k = 32
    PYTHONPATH=. python benchmarks/gpu_step.py --batch 32768   # a larger batch
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from skdict._array import cuda_available, get_namespace, to_device

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sae_step import fitted_topk, step_functions  # noqa: E402  (the same model and step closures as on the CPU)


def gpu_median_times(functions, repeats, xp):
    """Median wall time of each function (device synchronised around each call), interleaved."""
    times = {name: [] for name in functions}
    for name, function in functions.items():  # warm-up: kernels compiled, memory pool filled
        function()
    xp.cuda.Device().synchronize()
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            xp.cuda.Device().synchronize()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(values)) for name, values in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8192)
    parser.add_argument("--features", type=int, default=768)
    parser.add_argument("--components", type=int, default=8192)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    if not cuda_available():
        print("No CUDA GPU reachable through CuPy: GPU benchmark skipped.")
        return 0

    n, d, m, k = args.batch, args.features, args.components, args.k
    X = to_device(np.random.default_rng(0).standard_normal((n, d)).astype(np.float32), "cuda")
    xp = get_namespace(X)
    model = fitted_topk(X, m, k, seed=0)
    functions = step_functions(model, X)

    wanted = ("gemm", "step", "loss_and_grads", "transform")
    times = gpu_median_times({name: functions[name] for name in wanted}, args.repeats, xp)
    gemm_flops = 2.0 * n * d * m
    step_flops = gemm_flops + 4 * 2.0 * n * k * d
    gemm_rate = gemm_flops / times["gemm"]
    step_rate = step_flops / times["step"]
    props = xp.cuda.runtime.getDeviceProperties(xp.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    print(f"device: {name}; B={n}, d={d}, m={m}, k={k}, float32; median of {args.repeats}; {os.cpu_count()} CPUs")
    print(f"{'what':36s} {'ms':>9s} {'TFLOP/s':>9s} {'x GEMM time':>12s}")
    print(f"{'encoder GEMM (cuBLAS)':36s} {1e3 * times['gemm']:9.3f} {gemm_rate / 1e12:9.2f} {1.0:12.2f}")
    for what in ("step", "loss_and_grads", "transform"):
        rate = step_flops / times[what] if what != "transform" else gemm_flops / times[what]
        print(f"{what:36s} {1e3 * times[what]:9.3f} {rate / 1e12:9.2f} {times[what] / times['gemm']:12.2f}")
    fraction = step_rate / gemm_rate
    print(
        f"\nstep rate / GEMM rate = {fraction:.2f} (target >= 0.50: {'met' if fraction >= 0.5 else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
