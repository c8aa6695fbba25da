"""Row blocks on threads: the CPU parallelism of the ops layer.

NumPy's ufuncs, reductions, ``argpartition`` and BLAS calls, and SciPy's sparse
products, release the GIL, so independent row blocks of one large array can be
worked on by a small thread pool. On CuPy the GPU is already parallel: every
helper here runs the work as one block on the calling thread.

The pool has one thread per CPU the process may use, or ``SKDICT_NUM_THREADS``
when that environment variable is set (``1`` turns threading off).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

#: Below this many elements of work per block, a thread costs more than it saves.
MIN_BLOCK_ELEMENTS = 1 << 16
#: Name prefix of the pool's threads (work submitted from one of them runs inline).
_THREAD_PREFIX = "skdict-ops"


def n_threads():
    """Threads used by the ops layer on the CPU (at least 1)."""
    setting = os.environ.get("SKDICT_NUM_THREADS")
    if setting:
        try:
            value = int(setting)
        except ValueError:
            raise ValueError(
                f"SKDICT_NUM_THREADS must be a positive integer, got {setting!r}; unset it to use every CPU."
            ) from None
        if value < 1:
            raise ValueError(f"SKDICT_NUM_THREADS must be a positive integer, got {value}.")
        return value
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@functools.lru_cache(maxsize=4)
def _pool(size):
    return ThreadPoolExecutor(max_workers=size, thread_name_prefix=_THREAD_PREFIX)


def _in_pool_thread():
    return threading.current_thread().name.startswith(_THREAD_PREFIX)


def split(n_items, cost_per_item, *, max_blocks=None, min_block_elements=None):
    """Boundaries ``[(start, stop), ...]`` cutting ``range(n_items)`` into balanced blocks.

    As many blocks as threads (or ``max_blocks``), but none with less than
    ``min_block_elements`` of work, where one item costs ``cost_per_item`` elements.
    """
    threads = n_threads() if max_blocks is None else max_blocks
    if min_block_elements is None:
        min_block_elements = MIN_BLOCK_ELEMENTS  # read now, so that it can be changed (tests cut small arrays)
    by_size = max(1, (n_items * max(cost_per_item, 1)) // max(min_block_elements, 1))
    n_blocks = int(max(1, min(threads, by_size, n_items)))
    edges = np.linspace(0, n_items, n_blocks + 1).astype(np.int64)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def run_blocks(work, blocks, xp=np):
    """Call ``work(start, stop)`` for every block, on the thread pool when it helps.

    ``work`` must write to disjoint outputs per block. Returns the results in
    block order. With CuPy arrays (``xp`` not NumPy) or one block, runs inline.
    """
    threads = n_threads()
    # from inside a pool thread the work runs inline: waiting on the pool there could deadlock it
    if xp is not np or len(blocks) <= 1 or threads == 1 or _in_pool_thread():
        return [work(start, stop) for start, stop in blocks]
    pool = _pool(min(len(blocks), threads))
    # NumPy's floating-point error policy is per thread: the caller's (and its callback) holds in the pool too
    errors, callback = np.geterr(), np.geterrcall()

    def call(block):
        with np.errstate(call=callback, **errors):
            return work(*block)

    return list(pool.map(call, blocks))


@functools.lru_cache(maxsize=1)
def _blas_controller():
    """threadpoolctl's view of the loaded BLAS libraries (a scikit-learn dependency), or None."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - scikit-learn requires threadpoolctl
        return None
    return ThreadpoolController()


#: The process-wide BLAS pin: how many single_threaded_blas contexts are open, and threadpoolctl's limiter.
_pin = {"count": 0, "limiter": None}
_pin_lock = threading.Lock()


@contextlib.contextmanager
def single_threaded_blas():
    """Run BLAS on one thread inside the block (no-op when the ops layer itself has one thread).

    For code whose products run on the pool's threads: a multi-threaded BLAS
    there would oversubscribe the CPUs, and after every call its worker threads
    keep spinning for a while, which halved the speed of the threaded ops that
    followed a GEMM on 2 cores. The pin is process-wide (BLAS has one setting):
    while a context is open, every thread's BLAS runs on one core. Contexts may
    nest; the outermost pins and restores (no switching back and forth, which
    wakes BLAS's threads every time). Only the main thread pins: OpenBLAS
    ignored a thread count set from another thread here (measured with
    OpenBLAS 0.3.31), so a pin or a restore from there could not be trusted;
    elsewhere the context does nothing.
    """
    controller = _blas_controller()
    if controller is None or n_threads() == 1 or threading.current_thread() is not threading.main_thread():
        yield
        return
    with _pin_lock:
        if _pin["count"] == 0:
            _pin["limiter"] = controller.limit(limits=1, user_api="blas")
        _pin["count"] += 1
    try:
        yield
    finally:
        with _pin_lock:
            _pin["count"] -= 1
            if _pin["count"] == 0:
                _pin["limiter"].restore_original_limits()
                _pin["limiter"] = None


def blas_pinned():
    """Whether a :func:`single_threaded_blas` context is open (then a lone GEMM would use one core)."""
    return _pin["count"] > 0


def run_row_blocks(work, n_rows, rows_per_block, xp=np):
    """Call ``work(start, stop)`` on consecutive blocks of at most ``rows_per_block`` rows, on threads, BLAS on one thread.

    For work that starts with a product (one GEMM per block) followed by
    threaded-op work on its result: each pool thread multiplies and reduces its
    own blocks. Outside a :func:`single_threaded_blas` context a single block
    runs on the calling thread with BLAS as it is (one multi-threaded GEMM is
    faster there than smaller single-threaded ones); inside one, the rows are cut
    into at least one block per thread, since BLAS alone would use one core.
    Returns the results in block order. On CuPy, the blocks run one after the
    other on the calling thread.
    """
    threads = 1 if xp is not np or _in_pool_thread() else n_threads()
    if blas_pinned():
        rows_per_block = min(rows_per_block, -(-n_rows // threads))
    rows_per_block = max(1, rows_per_block)
    blocks = [(start, min(start + rows_per_block, n_rows)) for start in range(0, n_rows, rows_per_block)]
    if len(blocks) <= 1 or threads == 1:
        return [work(start, stop) for start, stop in blocks]
    with single_threaded_blas():
        return run_blocks(work, blocks, xp)
