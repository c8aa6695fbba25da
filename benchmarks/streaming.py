"""Out-of-core training against in-memory training, as growth laws and ratios measured in one run (issue 11).

What is measured (each printed; ``--json PATH`` also writes the figures):

1. **Peak RSS against n_samples.** ``TopKSAE(n_components=m, k=k).fit(path)`` on
   ``.npy`` files of ``--sizes`` rows x ``d`` float32, each fit in a fresh
   subprocess that reports its peak resident memory (``VmHWM`` of
   ``/proc/self/status``, else ``ru_maxrss``). The growth per extra row is the
   slope of a least-squares line through (n_samples, peak) -- it must be ~0 --
   next to the same fit from an in-memory array (``np.load``), whose slope is
   about one row's bytes. The training budget is ``--steps`` optimizer steps
   where the SAEs have ``max_steps`` (``--rss-budget steps``, the default), or
   one epoch (``max_iter=1``: every row read once; ``--rss-budget epoch``, the
   stronger check and the only one without ``max_steps``).
2. **Throughput.** Samples/s of the same ``--steps`` steps of ``--batch`` rows
   (one epoch over a file of exactly that many rows), each as a ratio to the
   fit of the same rows in memory: a host array passed as a source (the
   streaming engine without the disk), the ``.npy`` file with its pages evicted
   from the page cache before each fit (cold: ``echo 3 >
   /proc/sys/vm/drop_caches`` where writable, else ``posix_fadvise(DONTNEED)``
   on the file; the file's resident fraction is read back with ``mincore`` and
   printed, so a failed eviction shows) and with the file cached (warm). Rates
   are for the training loop (``_train``: steps, reads, moments) and for the
   whole ``fit`` (also validation and initialisation). The fits are interleaved
   round-robin, ``--repeats`` rounds, medians. With ``--device cuda`` the
   reference is all on the GPU and the other sources stream from the host
   (issue 11's GPU target: >= 80%).
3. **Dask.** The same fit from a Dask array persisted on a 2-worker
   ``LocalCluster`` (processes, one thread each), in the same rounds.

The in-memory step itself is measured by ``benchmarks/sae_step.py``.

Run (quiet machine; the files are made once in ``--data-dir`` and reused)::

    PYTHONPATH=. python benchmarks/streaming.py --data-dir /tmp/skdict-bench --json benchmarks/results/streaming.json
    # smoke run (about 30 s): small shapes, a 4 MiB shuffle buffer so the multi-buffer path runs
    PYTHONPATH=. python benchmarks/streaming.py --sizes 100000,200000,400000 --d 64 --m 256 --steps 20 \\
        --batch 1024 --repeats 3 --buffer-mib 4 --block-mib 0.5 --cold fadvise

Sizes well above the initialisation sample's reads (``sample_rows`` reads up to
4 x 4096 rows) are needed for the RSS slope to mean anything.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
import subprocess
import sys
import time
import warnings

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from skdict import TopKSAE  # noqa: E402
from skdict.ops._threads import n_threads  # noqa: E402

DROP_CACHES = "/proc/sys/vm/drop_caches"


# ----------------------------------------------------------------------------------------------- data
def data_path(data_dir, n_rows, d):
    return os.path.join(data_dir, f"lowrank_sparse_{n_rows}x{d}_float32.npy")


def make_npy(data_dir, n_rows, d, seed=0, chunk_rows=16384):
    """A ``.npy`` file of ``n_rows`` x ``d`` float32 rows, written chunk by chunk (never held whole).

    Each row is a rank-``r`` Gaussian part plus a sparse sum of 8 unit features out of
    ``4 d`` (exponential magnitudes) plus 1% noise: activation-like, neither white nor
    exactly sparse. An existing complete file of the same shape is reused.
    """
    path = data_path(data_dir, n_rows, d)
    if os.path.exists(path):
        with contextlib.suppress(ValueError, OSError):
            existing = np.load(path, mmap_mode="r")
            if existing.shape == (n_rows, d) and existing.dtype == np.float32:
                return path
    os.makedirs(data_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    rank, n_atoms, n_active = min(32, d), 4 * d, 8
    basis = (rng.standard_normal((rank, d)) / np.sqrt(rank)).astype(np.float32)
    atoms = rng.standard_normal((n_atoms, d)).astype(np.float32)
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    partial = path + ".partial"
    out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=(n_rows, d))
    for start in range(0, n_rows, chunk_rows):
        c = min(chunk_rows, n_rows - start)
        rows = 0.5 * (rng.standard_normal((c, rank), dtype=np.float32) @ basis)
        features = rng.integers(0, n_atoms, size=(c, n_active))
        magnitudes = rng.exponential(1.0, size=(c, n_active)).astype(np.float32)
        for j in range(n_active):
            rows += magnitudes[:, j, None] * atoms[features[:, j]]
        rows += 0.01 * rng.standard_normal((c, d), dtype=np.float32)
        out[start : start + c] = rows
    out.flush()
    del out
    os.replace(partial, path)
    return path


# ----------------------------------------------------------------------------------------------- page cache
def resident_fraction(path):
    """Fraction of ``path``'s pages in the page cache (``mincore`` on a read-only map), ``None`` where unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]
        size = os.path.getsize(path)
        n_pages = -(-size // os.sysconf("SC_PAGE_SIZE"))
        fd = os.open(path, os.O_RDONLY)
        try:
            address = libc.mmap(None, size, 1, 1, fd, 0)  # PROT_READ, MAP_SHARED: maps, faults nothing in
            if address is None or address == ctypes.c_void_p(-1).value:
                return None
            pages = (ctypes.c_ubyte * n_pages)()
            status = libc.mincore(address, size, pages)
            libc.munmap(address, size)
        finally:
            os.close(fd)
        return None if status != 0 else float(np.mean(np.frombuffer(pages, dtype=np.uint8) & 1))
    except (OSError, AttributeError):
        return None


def evict(path, method):
    """Drop ``path`` from the page cache; returns ``(how, resident fraction after)``.

    ``method``: ``"drop"`` (``drop_caches``, root), ``"fadvise"`` (this file only, any
    user; works on clean pages), ``"auto"`` (drop where writable, else fadvise).
    """
    how = None
    if method in ("auto", "drop") and os.access(DROP_CACHES, os.W_OK):
        try:
            os.sync()
            with open(DROP_CACHES, "w") as handle:
                handle.write("3\n")
            how = "drop_caches"
        except OSError:
            how = None
    if how is None and method in ("auto", "fadvise", "drop") and hasattr(os, "posix_fadvise"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            how = "posix_fadvise(DONTNEED)"
        finally:
            os.close(fd)
    return how or "none", resident_fraction(path)


def warm(path, chunk=1 << 26):
    """Read ``path`` once so its pages are cached; returns the resident fraction after."""
    buffer = bytearray(chunk)
    with open(path, "rb", buffering=0) as handle:
        while handle.readinto(buffer):
            pass
    return resident_fraction(path)


# ----------------------------------------------------------------------------------------------- estimator
def budget(steps, epoch):
    """Parameters that bound a fit to ``steps`` steps (``max_steps`` when the SAEs have it) or one epoch."""
    available = TopKSAE().get_params()
    params = {"max_iter": 1}
    if not epoch and "max_steps" in available:
        params["max_steps"] = steps
    if "early_stopping" in available:
        params["early_stopping"] = False
    return params


def make_sae(args, **extra):
    device = getattr(args, "device", "cpu")
    return TopKSAE(n_components=args.m, k=args.k, batch_size=args.batch, device=device, random_state=0, **extra)


def apply_buffer_sizes(buffer_mib, block_mib):
    """Override the engine's shuffle-buffer and block sizes (smoke runs: force the multi-buffer path)."""
    import skdict.sae._data as engine

    if buffer_mib is not None:
        engine.SHUFFLE_BUFFER_BYTES = int(buffer_mib * 2**20)
    if block_mib is not None:
        engine.BLOCK_BYTES = int(block_mib * 2**20)
    return engine.SHUFFLE_BUFFER_BYTES, engine.BLOCK_BYTES


def timed_fit(model, X):
    """Fit ``model`` on ``X``; returns ``(fit seconds, training-loop seconds)`` (``_train``, else the fit)."""
    loop = []
    train = getattr(model, "_train", None)
    if train is not None:

        def timed_train(*a, **kw):
            start = time.perf_counter()
            try:
                return train(*a, **kw)
            finally:
                loop.append(time.perf_counter() - start)

        model._train = timed_train  # instance attribute: this model only
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # one-epoch budgets warn ConvergenceWarning by design
            model.fit(X)
    finally:
        model.__dict__.pop("_train", None)
    total = time.perf_counter() - start
    return total, (sum(loop) if loop else total)


# ----------------------------------------------------------------------------------------------- 1. peak RSS
def _status_bytes(key):
    """A ``kB`` line of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in bytes; ``None`` off Linux."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def child_fit(spec):
    """In the fresh process: one fit of ``spec["path"]`` (the file, or ``np.load`` of it); print its peak RSS as JSON."""
    import resource

    apply_buffer_sizes(spec["buffer_mib"], spec["block_mib"])
    model = make_sae(argparse.Namespace(**spec["args"]), **spec["budget"])
    X = np.load(spec["path"]) if spec["mode"] == "in-memory" else spec["path"]
    before = _status_bytes("VmRSS")
    fit_s, loop_s = timed_fit(model, X)
    peak = _status_bytes("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"peak": peak, "before_fit": before, "fit_s": fit_s, "loop_s": loop_s}))


def child_peak_rss(path, mode, args, params):
    """Run one fit in a fresh interpreter (this script with ``--child``); its peak RSS and timings (dict)."""
    spec = {
        "path": path,
        "mode": mode,
        "budget": params,
        "buffer_mib": args.buffer_mib,
        "block_mib": args.block_mib,
        "args": {"m": args.m, "k": args.k, "batch": args.batch, "device": args.device},
    }
    command = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the {mode} fit of {path} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def growth_per_row(n_rows, peaks):
    """Slope (bytes per row) and intercept (bytes) of the least-squares line through ``(n_rows, peak)``."""
    slope, intercept = np.polyfit(np.asarray(n_rows, float), np.asarray(peaks, float), 1)
    return float(slope), float(intercept)


def report_growth(mode, sizes, peaks, row_bytes):
    """Print (and return) the least-squares growth of the peak per extra row; the file's target is ~0."""
    slope, intercept = growth_per_row(sizes, peaks)
    verdict = ""
    if mode == "file":
        flat = slope <= 0.02 * row_bytes  # a negative slope is noise around flat
        verdict = f"; target ~0 (<= 2% of a row): {'met' if flat else 'NOT met'}"
    print(
        f"   growth per extra row, {mode}: {slope:9.1f} bytes/row = {slope / row_bytes:6.3f} x a row's "
        f"{row_bytes} bytes (line: {intercept / 2**20:.0f} MiB + slope x n){verdict}"
    )
    return {f"{mode}_bytes_per_row": slope, f"{mode}_intercept_bytes": intercept}


def measure_rss(args, paths, record):
    epoch = args.rss_budget == "epoch" or "max_steps" not in TopKSAE().get_params()
    params = budget(args.steps, epoch)
    what = "one epoch (max_iter=1)" if epoch else f"max_steps={args.steps}"
    row_bytes = args.d * 4
    print(f"\n1. peak RSS of TopKSAE(n_components={args.m}, k={args.k}).fit(...), a fresh process per fit, budget {what}")
    print(f"   {'source':10s} {'n_samples':>10s} {'file MiB':>9s} {'RSS before fit':>15s} {'peak RSS':>10s} {'fit s':>8s}")
    section = {"budget": params, "rows": []}
    for mode, sizes in (("file", args.sizes), ("in-memory", args.contrast_sizes)):
        peaks = []
        for n in sizes:
            out = child_peak_rss(paths[n], mode, args, params)
            peaks.append(out["peak"])
            section["rows"].append({"source": mode, "n_samples": n, **out})
            print(
                f"   {mode:10s} {n:10d} {n * row_bytes / 2**20:9.0f} {out['before_fit'] / 2**20:11.0f} MiB "
                f"{out['peak'] / 2**20:6.0f} MiB {out['fit_s']:8.1f}",
                flush=True,
            )
        if len(sizes) >= 2:
            section.update(report_growth(mode, sizes, peaks, row_bytes))
    record["rss"] = section


# ----------------------------------------------------------------------------------------------- 2./3. throughput
def _read_rows(path, start, stop):
    return np.array(np.load(path, mmap_mode="r")[start:stop])


def persisted_dask_array(path, chunk_rows):
    """The file's rows as a Dask array whose blocks are read by, and persisted on, the cluster's workers."""
    import dask
    import dask.array as da
    from distributed import wait

    n_rows, d = np.load(path, mmap_mode="r").shape
    bounds = [(start, min(start + chunk_rows, n_rows)) for start in range(0, n_rows, chunk_rows)]
    blocks = [
        da.from_delayed(dask.delayed(_read_rows)(path, start, stop), shape=(stop - start, d), dtype=np.float32)
        for start, stop in bounds
    ]
    array = da.concatenate(blocks, axis=0).persist()
    wait(array)
    return array


@contextlib.contextmanager
def dask_cluster_array(path, chunk_rows):
    """A 2-worker ``LocalCluster`` (processes, one thread each) holding the file's rows; ``None`` without dask."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        print(f"   dask skipped: {exc} (pip install skdict[dask])")
        yield None
        return
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
    ) as cluster, Client(cluster):
        array = persisted_dask_array(path, chunk_rows)
        print(f"   dask: {len(array.chunks[0])} blocks of {chunk_rows} rows persisted on 2 worker processes")
        yield array


def throughput_variants(args, X, path, dask_array):
    """``{name: data}`` of the fits compared, the in-memory reference first."""
    from skdict._array import to_device
    from skdict.sources import ArraySource

    variants = {
        "in-memory": to_device(X, args.device),  # all on the training device (on "cuda": the GPU)
        "host array, streamed": ArraySource(X),  # the streaming engine without the disk
    }
    if args.cold != "off":
        variants["file, cold cache"] = path
    variants["file, warm cache"] = path
    if dask_array is not None:
        variants["dask, 2-worker LocalCluster"] = dask_array
    return variants


def interleaved_fits(args, variants, path, params):
    """``args.repeats`` rounds of one fit per variant; per variant the (fit, loop) seconds, the last EV, the cache state."""
    times, scores = {name: [] for name in variants}, {}
    cache = {"cold": [], "warm": []}
    for _ in range(args.repeats):
        for name, data in variants.items():
            if name == "file, cold cache":
                cache["cold"].append(evict(path, args.cold))
            elif name == "file, warm cache":
                cache["warm"].append(warm(path))
            model = make_sae(args, **params)
            times[name].append(timed_fit(model, data))
            scores[name] = (getattr(model, "history_", {}).get("explained_variance") or [float("nan")])[-1]
    return times, scores, cache


def report_cache(cache):
    """Print how the cache was dropped and whether it worked; the figures as a dict."""
    how = sorted({h for h, _ in cache["cold"]})
    cold = [f for _, f in cache["cold"] if f is not None]
    warm_resident = [f for f in cache["warm"] if f is not None]
    if not cache["cold"]:
        line = "cold cache: not measured (--cold off)"
    elif not cold:
        line = f"cold cache by {', '.join(how)}: resident fraction unknown (mincore unavailable)"
    else:
        worked = "worked" if max(cold) < 0.05 else "did NOT work (the cold row is a warm one)"
        line = f"cold cache by {', '.join(how)}: at most {max(cold):.1%} of the file resident before a fit; eviction {worked}"
    if warm_resident:
        line += f"; warm: at least {min(warm_resident):.1%} resident"
    print(f"   {line}")
    return {"cold_by": how, "cold_resident": cold, "warm_resident": warm_resident}


def report_throughput(args, times, scores, n_rows):
    """Print the medians and the ratios to the in-memory fit; the rows as dicts."""
    goal = 0.8 if args.device == "cuda" else 0.9  # issue 11: GPU from host memory >= 80%, CPU from disk >= 90%
    print(f"   {'source':30s} {'loop s':>8s} {'samples/s':>10s} {'x in-memory':>12s} {'fit s':>8s} {'x in-memory':>12s} {'EV':>8s}")
    rows, reference = [], None
    for name, samples in times.items():
        fit_s, loop_s = (float(np.median([s[i] for s in samples])) for i in (0, 1))
        reference = reference or (fit_s, loop_s)
        loop_ratio, fit_ratio = reference[1] / loop_s, reference[0] / fit_s
        targeted = name.startswith("file") or (args.device == "cuda" and name.startswith("host"))
        target = f"  >= {goal:.2f} {'met' if loop_ratio >= goal else 'NOT met'}" if targeted else ""
        print(
            f"   {name:30s} {loop_s:8.2f} {n_rows / loop_s:10.0f} {loop_ratio:12.3f} {fit_s:8.2f} {fit_ratio:12.3f} "
            f"{scores[name]:8.4f}{target}"
        )
        rows.append({"source": name, "fit_s": fit_s, "loop_s": loop_s, "samples_per_s": n_rows / loop_s,
                     "ratio_loop": loop_ratio, "ratio_fit": fit_ratio, "explained_variance": scores[name],
                     "all_fit_s": [s[0] for s in samples], "all_loop_s": [s[1] for s in samples]})
    return rows


def measure_throughput(args, record):
    n_rows = args.steps * args.batch
    path = make_npy(args.data_dir, n_rows, args.d, seed=1)
    X = np.load(path)
    params = budget(args.steps, epoch=True)  # the file holds exactly steps x batch rows: one epoch
    print(
        f"\n2. throughput on {args.device}: {args.steps} steps of batch {args.batch} ({n_rows} rows, "
        f"{X.nbytes / 2**20:.0f} MiB), d={args.d}, m={args.m}, k={args.k}; median of {args.repeats} interleaved rounds"
    )
    chunk_rows = args.dask_chunk_rows or max(1, _engine_block_bytes() // (args.d * 4))
    with contextlib.ExitStack() as stack:
        dask_array = None if args.skip_dask else stack.enter_context(dask_cluster_array(path, chunk_rows))
        variants = throughput_variants(args, X, path, dask_array)
        timed_fit(make_sae(args, **params), variants["in-memory"][: 2 * args.batch])  # warm pools and imports
        times, scores, cache = interleaved_fits(args, variants, path, params)
    record["throughput"] = {"n_rows": n_rows, "budget": params, "cache": report_cache(cache),
                            "rows": report_throughput(args, times, scores, n_rows)}


def _engine_block_bytes():
    import skdict.sae._data as engine

    return engine.BLOCK_BYTES


# ----------------------------------------------------------------------------------------------- main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sizes = lambda text: [int(float(s)) for s in text.split(",") if s]  # noqa: E731 - "5e5,1e6" allowed
    parser.add_argument("--sizes", type=sizes, default=[500_000, 1_000_000, 2_000_000], help="rows of the RSS files")
    parser.add_argument("--contrast-sizes", type=sizes, default=None,
                        help="rows for the in-memory RSS contrast (default: the two smallest --sizes)")
    parser.add_argument("--d", type=int, default=768, help="n_features")
    parser.add_argument("--m", type=int, default=8192, help="n_components")
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--batch", type=int, default=4096, help="batch_size")
    parser.add_argument("--steps", type=int, default=50, help="optimizer steps per fit (throughput; RSS with max_steps)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved throughput rounds (medians)")
    parser.add_argument("--data-dir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "skdict-streaming-bench"))
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--skip-dask", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--rss-budget", choices=["steps", "epoch"], default="steps",
                        help="bound RSS fits by max_steps=--steps (falls back to epoch without max_steps) or one epoch")
    parser.add_argument("--cold", choices=["auto", "drop", "fadvise", "off"], default="auto",
                        help="how the page cache is dropped for the cold variant (auto: drop_caches if writable)")
    parser.add_argument("--dask-chunk-rows", type=int, default=None, help="rows per Dask block (default: the engine's block)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="training device; on cuda, in-memory means all on the GPU and the others stream from the host")
    parser.add_argument("--buffer-mib", type=float, default=None, help="override the shuffle buffer (smoke runs)")
    parser.add_argument("--block-mib", type=float, default=None, help="override the read block (smoke runs)")
    parser.add_argument("--child", metavar="SPEC", help=argparse.SUPPRESS)  # one RSS fit, in a fresh process
    args = parser.parse_args(argv)
    args.sizes = sorted(args.sizes)
    if args.contrast_sizes is None:
        args.contrast_sizes = args.sizes[:2]
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return child_fit(json.loads(args.child))
    buffer_bytes, block_bytes = apply_buffer_sizes(args.buffer_mib, args.block_mib)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, skdict threads {n_threads()}"
    print(
        f"machine: {machine}, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
        f"numpy {np.__version__}; shuffle buffer {buffer_bytes / 2**20:g} MiB, read block {block_bytes / 2**20:g} MiB; "
        f"data in {args.data_dir}"
    )
    record = {"machine": machine, "args": {k: v for k, v in vars(args).items()}}
    if not args.skip_rss:
        start = time.perf_counter()
        paths = {n: make_npy(args.data_dir, n, args.d) for n in sorted(set(args.sizes) | set(args.contrast_sizes))}
        print(f"data files ready ({time.perf_counter() - start:.0f} s)")
        measure_rss(args, paths, record)
    if not args.skip_throughput:
        measure_throughput(args, record)
    print("\nThe in-memory step is measured by benchmarks/sae_step.py (ratios to the encoder GEMM).")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(record, handle, indent=1)
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
