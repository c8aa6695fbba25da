"""SAE speed against its physical floor, the encoder GEMM, as ratios measured in one run.

The floor of a TopK SAE training step is the one dense product
X @ W_encᵀ (batch x n_features x n_components); everything else is
O(batch x k x n_features) when done sparsely. This script times, interleaved
and repeated (medians):

* ``gemm``: ``(X - b_dec) @ W_encᵀ`` alone, at the step's batch;
* ``step``: one TopKSAE training step on that batch (forward, backward, Adam and
  the engine's bookkeeping: clipping, unit-norm decoder, finiteness checks),
  i.e. ``skdict.sae._training._train_step``; and its parts ``loss_and_grads``
  (forward + backward) and ``adam``;
* the same step of BatchTopKSAE (budget ``batch x k``) and JumpReLUSAE (thresholds set
  to each latent's ``1 - k/m`` quantile on the batch, so that the mean L0 is ``k``),
  each with its default forward and with the whole-batch one (issue 13);
* ``transform``: ``TopKSAE.transform`` of the batch (dense codes out);
* MPSAE ``transform`` at ``k`` steps against ``k`` dense GEMMs of the same
  shape (``k`` times the median of one GEMM, which is what the pursuit would
  cost if every step recomputed the correlations);
* peak extra memory of the training step (``tracemalloc``, NumPy), against
  ``batch x (n_features + k)`` and ``batch x n_components`` elements.

Targets (issue 6): step <= 2.0x GEMM, transform <= 1.5x GEMM, MPSAE transform
<= 0.25x of k GEMMs; issue 13: the BatchTopK and JumpReLU steps <= 2.0x GEMM too.

Run::

    PYTHONPATH=. python benchmarks/sae_step.py            # n = batch = 8192, d = 768, m = 8192, k = 32
    PYTHONPATH=. python benchmarks/sae_step.py --quick    # small shapes, a smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import time
import tracemalloc
import warnings

import numpy as np
import scipy.sparse
from sklearn.exceptions import ConvergenceWarning

from skdict import MPSAE, BatchTopKSAE, JumpReLUSAE, TopKSAE
from skdict.ops._threads import n_threads, single_threaded_blas
from skdict.sae._training import _train_step, _TrainingGuard


def median_times(functions, repeats):
    """Median wall time of each function, the calls interleaved round-robin."""
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(values)) for name, values in times.items()}


def _one_step(model, sample):
    """Fit ``model`` for its one step (a deliberately unconverged fit: its ConvergenceWarning is expected)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(sample)


def fitted_topk(X, n_components, k, seed, cls=TopKSAE):
    """A TopK-style SAE initialised and stepped once on a small sample (its speed does not depend on training)."""
    sample = X[: min(512, X.shape[0])]
    return _one_step(cls(n_components=n_components, k=k, batch_size=sample.shape[0], max_iter=1, random_state=seed), sample)


def fitted_jumprelu(X, n_components, k, seed):
    """A JumpReLUSAE stepped once, its thresholds then set so that each latent fires on ``k / m`` of ``X``.

    At its initial thresholds (0.001 x RMS) about half the latents fire on every row: a
    step there measures a dense code, not the sparse model a trained JumpReLU is.
    """
    sample = X[: min(512, X.shape[0])]
    model = _one_step(JumpReLUSAE(n_components=n_components, batch_size=sample.shape[0], max_iter=1,
                                  random_state=seed), sample)
    rows = X[: min(2048, X.shape[0])]
    A = (rows - model._centre()) @ model.encoder_.T + model.encoder_bias_
    model.threshold_[...] = np.maximum(np.quantile(A, 1 - k / n_components, axis=0), 0)
    return model


def fitted_mpsae(X, n_components, k, seed):
    sample = X[: min(256, X.shape[0])]
    return _one_step(MPSAE(n_components=n_components, k=k, batch_size=sample.shape[0], max_iter=1, random_state=seed), sample)


def step_functions(model, X):
    """Closures for the GEMM, the whole training step, and its parts, on the batch ``X``."""
    params = model._params()
    guard = _TrainingGuard(model, params)  # the divergence guard run_epochs gives the step
    centre = model._centre()

    def gemm():
        return (X - centre) @ params["encoder_"].T

    def whole_batch(function):
        """Run ``function`` with the whole-batch forward (B x m pre-activations) instead of TopKSAE's row blocks."""
        model._rowwise_support = False
        try:
            return function()
        finally:
            del model._rowwise_support  # back to the class's setting

    def step():
        # as run_epochs runs it: a row-blocked model trains with BLAS pinned to one thread
        with single_threaded_blas() if model._rowwise_support else contextlib.nullcontext():
            step_unpinned()

    def step_unpinned():
        # zero learning rate: the parameters (and so the support) stay as they are, the work is the same
        _train_step(model, params, X, X, 0.0, guard, "benchmark")

    def step_whole():
        whole_batch(step_unpinned)

    def loss_and_grads():
        return model._loss_and_grads(params, X, X, model._dead_mask())

    def loss_and_grads_whole():
        return whole_batch(loss_and_grads)

    grads = loss_and_grads().grads

    def adam():
        model._adam.step(params, grads, {name: 0.0 for name in grads})  # zero rate: parameters unchanged

    def transform():
        return model.transform(X)

    return {
        "gemm": gemm,
        "step": step,
        "step_whole": step_whole,
        "loss_and_grads": loss_and_grads,
        "loss_and_grads_whole": loss_and_grads_whole,
        "adam": adam,
        "transform": transform,
    }


def plain_references():
    """The ops as first written (single-threaded NumPy), to time the optimised ones against."""

    def topk(A, k):
        indices = np.argpartition(A, A.shape[1] - k, axis=1)[:, A.shape[1] - k :]
        return indices, np.take_along_axis(A, indices, axis=1)

    def csr(rows, cols, values, shape):
        counts = np.bincount(rows, minlength=shape[0])
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
        return scipy.sparse.csr_matrix((values, cols.astype(np.int32), indptr), shape=shape)

    def sddmm(G, W, rows, cols, block=1 << 22):
        dots = np.empty(rows.shape[0], dtype=G.dtype)
        step = max(1, block // G.shape[1])
        for start in range(0, rows.shape[0], step):
            stop = min(start + step, rows.shape[0])
            dots[start:stop] = np.sum(G[rows[start:stop]] * W[cols[start:stop]], axis=1)
        return dots

    def adam(theta, grad, m, v, step_size, beta1=0.9, beta2=0.999, eps=1e-8):
        m *= beta1
        m += (1.0 - beta1) * grad
        v *= beta2
        v += (1.0 - beta2) * (grad * grad)
        denom = np.sqrt(v)
        denom += eps
        theta -= step_size * (m / denom)

    return topk, csr, sddmm, adam


def op_functions(model, X):
    """Each optimised op of the step next to its plain reference, on the step's own operands."""
    from skdict.ops.codes import CodeMatrix, sampled_row_dots
    from skdict.ops.topk import row_topk
    from skdict.sae._step import preactivations

    topk, csr, sddmm, adam = plain_references()
    params = model._params()
    A, _ = preactivations(params, X, model._centre())
    k = model.k_
    indices, values = row_topk(A, k)
    rows = np.repeat(np.arange(X.shape[0]), k)
    cols = indices.reshape(-1)
    vals = values.reshape(-1)
    W = params["components_"]
    G = np.random.default_rng(1).standard_normal(X.shape).astype(X.dtype)
    theta, grad = W.copy(), np.random.default_rng(2).standard_normal(W.shape).astype(W.dtype)
    m, v = np.zeros_like(W), np.zeros_like(W)

    from skdict.ops.adam import Adam

    optimizer = Adam({"w": theta})
    return {
        "top-k": (lambda: row_topk(A, k), lambda: topk(A, k)),
        "Z W_dec (decode)": (
            lambda: CodeMatrix(rows, cols, vals, A.shape).dot(W),
            lambda: csr(rows, cols, vals, A.shape) @ W,
        ),
        "Z^T G (weight gradient)": (
            lambda: CodeMatrix(rows, cols, vals, A.shape).tdot(G),
            lambda: csr(rows, cols, vals, A.shape).T @ G,
        ),
        "SDDMM G W_dec^T on the support": (
            lambda: sampled_row_dots(G, W, rows, cols),
            lambda: sddmm(G, W, rows, cols),
        ),
        "Adam update of one (m, d) parameter": (
            lambda: optimizer.step({"w": theta}, {"w": grad}, {"w": 0.0}),
            lambda: adam(theta, grad, m, v, 0.0),
        ),
    }


def peak_step_memory(step):
    """Peak bytes allocated during one call of ``step`` beyond what existed before it (tracemalloc)."""
    step()
    tracemalloc.start()
    tracemalloc.reset_peak()
    before, _ = tracemalloc.get_traced_memory()
    step()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak - before


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8192)
    parser.add_argument("--features", type=int, default=768)
    parser.add_argument("--components", type=int, default=8192)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--skip-mpsae", action="store_true")
    parser.add_argument("--steps-only", action="store_true", help="only the step ratios (no ops, memory or MPSAE)")
    parser.add_argument("--quick", action="store_true", help="batch 1024, 2048 latents, 3 repeats")
    parser.add_argument("--json", metavar="PATH", help="also write the measured figures to PATH (for plot_performance.py)")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.components, args.repeats = 1024, 2048, 3

    n, d, m, k = args.batch, args.features, args.components, args.k
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d)).astype(args.dtype)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, skdict threads "
        f"{n_threads()}, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
        f"numpy {np.__version__}"
    )
    shapes = f"batch n={n}, n_features d={d}, n_components m={m}, k={k}, {args.dtype}"
    print(f"shapes: {shapes}; median of {args.repeats} interleaved repeats\n")
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, skdict threads {n_threads()}"
    record = {"machine": machine, "shapes": shapes, "repeats": args.repeats, "ratios": []}

    model = fitted_topk(X, m, k, seed=0)
    functions = step_functions(model, X)
    families = {"BatchTopKSAE": fitted_topk(X, m, k, seed=0, cls=BatchTopKSAE), "JumpReLUSAE": fitted_jumprelu(X, m, k, 0)}
    mean_l0 = {"TopKSAE": functions["loss_and_grads"]().n_active / n}  # also warms the caches and the thread pool
    for name, other in families.items():
        other_functions = step_functions(other, X)
        mean_l0[name] = other_functions["loss_and_grads"]().n_active / n
        functions.update({f"{name} {what}": other_functions[what] for what in ("step", "step_whole")})
    times = median_times(functions, args.repeats)
    gemm = times["gemm"]
    rows = [
        ("TopKSAE step (row-blocked forward, the default)", times["step"], 2.0),
        ("TopKSAE step with the whole-batch forward", times["step_whole"], None),
        ("  of which loss_and_grads", times["loss_and_grads"], None),
        ("  of which Adam", times["adam"], None),
        ("TopKSAE transform", times["transform"], 1.5),
    ]
    for name in families:
        rows += [
            (f"{name} step (its default forward)", times[f"{name} step"], 2.0),
            (f"{name} step with the whole-batch forward", times[f"{name} step_whole"], None),
        ]
    print("mean L0 of the timed steps: " + ", ".join(f"{name} {l0:.1f}" for name, l0 in mean_l0.items()))
    record["mean_l0"] = mean_l0
    print(f"{'what':48s} {'seconds':>9s} {'x GEMM':>8s} {'target':>8s}")
    print(f"{'encoder GEMM (X - b_dec) @ W_enc.T':48s} {gemm:9.4f} {1.0:8.2f}")
    for name, seconds, target in rows:
        verdict = "" if target is None else f"<= {target:.2f} {'met' if seconds / gemm <= target else 'NOT met'}"
        record["ratios"].append({"what": name.strip(), "seconds": seconds, "ratio": seconds / gemm, "target": target})
        print(f"{name:48s} {seconds:9.4f} {seconds / gemm:8.2f}   {verdict}")

    if args.steps_only:
        return write_record(args, record, gemm)

    ops = op_functions(model, X)
    flat = {f"{name}|{which}": pair[i] for name, pair in ops.items() for i, which in enumerate(("new", "plain"))}
    op_times = median_times(flat, args.repeats)
    print(f"\n{'op (on the step operands)':44s} {'skdict':>9s} {'plain':>9s} {'speed-up':>9s}")
    for name in ops:
        new, plain = op_times[f"{name}|new"], op_times[f"{name}|plain"]
        print(f"{name:44s} {new:9.4f} {plain:9.4f} {plain / new:9.2f}")

    itemsize = np.dtype(args.dtype).itemsize
    gradient_bytes = 2 * (m * d + m + d) * itemsize  # encoder and decoder gradients, parameter-sized
    print(
        f"\npeak memory allocated during one call (tracemalloc; parameters and Adam state exist before it; "
        f"units: batch*(d+k) = {n * (d + k) * itemsize / 2**20:.1f} MiB, batch*m = {n * m * itemsize / 2**20:.0f} "
        f"MiB, gradients {gradient_bytes / 2**20:.0f} MiB):"
    )

    params = model._params()
    for name, function in (
        ("loss_and_grads", functions["loss_and_grads"]),
        ("loss_and_grads, whole-batch", functions["loss_and_grads_whole"]),
        ("whole step", functions["step"]),
        ("whole step, whole-batch", functions["step_whole"]),
    ):
        peak = peak_step_memory(function)
        beyond = peak - gradient_bytes
        record.setdefault("memory", []).append(
            {"what": name, "mib_beyond_gradients": beyond / 2**20, "batch_m_units": beyond / (n * m * itemsize)}
        )
        print(
            f"  {name:28s} {peak / 2**20:8.1f} MiB; beyond the gradients {beyond / 2**20:7.1f} MiB = "
            f"{beyond / (n * (d + k) * itemsize):5.1f} x batch*(d+k) = {beyond / (n * m * itemsize):5.2f} x batch*m"
        )

    # The law, not one point: how the step's peak grows with the batch (per added row, in elements).
    half = X[: n // 2]
    slopes = {}
    for label, rowwise in (("row-blocked", True), ("whole-batch", False)):
        peaks = []
        for batch in (half, X):
            model._rowwise_support = rowwise
            try:
                peaks.append(peak_step_memory(lambda batch=batch: model._loss_and_grads(params, batch, batch, None)))
            finally:
                del model._rowwise_support
        slopes[label] = (peaks[1] - peaks[0]) / ((n - n // 2) * itemsize)
    print(
        f"  growth of the loss_and_grads peak per batch row, {n // 2} -> {n} rows (elements; d + k = {d + k}, "
        f"m = {m}): " + ", ".join(f"{label} {slope:.0f} = {slope / (d + k):.2f} (d + k)" for label, slope in slopes.items())
    )
    record["memory_growth_per_row"] = {label: slope for label, slope in slopes.items()}

    if not args.skip_mpsae:
        mp = fitted_mpsae(X, m, k, seed=0)
        W = mp.components_

        def mp_gemm():
            return X @ W.T

        mp_times = median_times({"gemm": mp_gemm, "transform": lambda: mp.transform(X)}, max(3, args.repeats // 2))
        budget = k * mp_times["gemm"]
        ratio = mp_times["transform"] / budget
        record["ratios"].append(
            {"what": f"MPSAE transform over {k} GEMMs", "seconds": mp_times["transform"], "ratio": ratio, "target": 0.25}
        )
        print(
            f"\nMPSAE transform, k={k}: {mp_times['transform']:.3f} s; one GEMM {mp_times['gemm']:.4f} s, "
            f"k GEMMs {budget:.3f} s; ratio {ratio:.3f} (target <= 0.25: {'met' if ratio <= 0.25 else 'NOT met'})"
        )

    write_record(args, record, gemm)


def write_record(args, record, gemm):
    """Write the measured figures to ``args.json`` when asked to."""
    if args.json:
        record["gemm_seconds"] = gemm
        with open(args.json, "w") as handle:
            json.dump(record, handle, indent=1)
        print(f"\nfigures written to {args.json}")


if __name__ == "__main__":
    main()
