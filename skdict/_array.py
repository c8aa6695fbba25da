"""Array backend: NumPy on the CPU, CuPy on a CUDA GPU, one code path.

This is the only module of skdict that imports :mod:`cupy`. Everything else asks
it for the namespace ``xp`` of its arrays and writes its numerics once against
``xp`` (NumPy and CuPy share the same API for what skdict uses).

Rules (see DESIGN.md, "Arrays follow the input"):

* CuPy in gives CuPy out; NumPy in gives NumPy out.
* ``device="cuda"`` moves NumPy input to the GPU; ``device="cpu"`` moves CuPy
  input to the host; ``device="auto"`` leaves arrays where they are.
* Asking for a GPU that CuPy cannot reach raises one clear :class:`RuntimeError`.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.sparse

from skdict._optional import optional_module

DEVICES = ("auto", "cpu", "cuda")

_GPU_HINT = (
    "Install the GPU extra (`pip install skdict[gpu]`, which provides cupy-cuda12x) "
    "on a machine with an NVIDIA GPU and a CUDA 12 driver, or use device='cpu'."
)


def _import_cupy():
    """Return the :mod:`cupy` module, or ``None`` if it is not installed."""
    return optional_module("cupy")


@functools.lru_cache(maxsize=1)
def _cuda_status():
    """Probe CuPy once: ``(ok, reason)``.

    CuPy can import fine and still fail on first use (no driver, no device,
    a toolkit mismatch), so the probe allocates and reduces a small array.
    """
    cupy = _import_cupy()
    if cupy is None:
        return False, "CuPy is not installed."
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return False, "CuPy found no CUDA device."
        probe = cupy.arange(4, dtype=cupy.float32)
        float((probe * probe).sum())
    except Exception as exc:  # any CUDA failure means "not reachable"
        return False, f"CuPy is installed but CUDA failed on first use: {exc!r}."
    return True, ""


def cuda_available():
    """Whether a CUDA GPU is reachable through CuPy (probed once, cached)."""
    return _cuda_status()[0]


def require_cuda():
    """Raise a clear :class:`RuntimeError` unless a CUDA GPU is reachable."""
    ok, reason = _cuda_status()
    if not ok:
        raise RuntimeError(f"device='cuda' was requested but no GPU is usable: {reason} {_GPU_HINT}")


def is_cupy_array(x):
    """Whether ``x`` is a CuPy array (``False`` when CuPy is not installed)."""
    module = type(x).__module__
    return module.startswith("cupy") and hasattr(x, "__cuda_array_interface__")


def get_namespace(*arrays):
    """Return the array module (:mod:`numpy` or :mod:`cupy`) of ``arrays``.

    Mixing host and device arrays is an error: move them with :func:`to_device`.
    ``None`` entries are ignored.
    """
    present = [a for a in arrays if a is not None]
    on_gpu = [is_cupy_array(a) for a in present]
    if any(on_gpu) and not all(on_gpu):
        raise TypeError(
            "NumPy and CuPy arrays were mixed in one call; move them to one device "
            "first (skdict._array.to_device or the estimator's device parameter)."
        )
    if on_gpu and on_gpu[0]:
        return _import_cupy()
    return np


def device_of(x):
    """``"cuda"`` for a CuPy array, ``"cpu"`` otherwise."""
    return "cuda" if is_cupy_array(x) else "cpu"


def resolve_device(device, x=None):
    """Turn a ``device`` parameter (``"auto"|"cpu"|"cuda"``) into ``"cpu"`` or ``"cuda"``.

    ``"auto"`` follows ``x`` (CPU when ``x`` is ``None``). ``"cuda"`` checks that a
    GPU is reachable and raises :class:`RuntimeError` otherwise.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}.")
    if device == "auto":
        return device_of(x) if x is not None else "cpu"
    if device == "cuda":
        require_cuda()
    return device


def to_device(x, device):
    """Return ``x`` on ``device`` (``"cpu"`` or ``"cuda"``), copying only if needed."""
    if x is None:
        return None
    if device == "cpu":
        return to_numpy(x)
    if device == "cuda":
        if is_cupy_array(x):
            return x
        require_cuda()
        return _import_cupy().asarray(x)
    raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}.")


def to_numpy(x):
    """Return ``x`` as a NumPy array (a device-to-host copy for CuPy arrays)."""
    if is_cupy_array(x):
        return x.get()
    return np.asarray(x)


def like_input(result, X_in):
    """``result`` as the same kind of array as the caller's input: CuPy stays CuPy, anything else becomes NumPy.

    What every estimator's outputs do, so that ``device="cuda"`` with NumPy input
    still hands NumPy back.
    """
    return result if is_cupy_array(X_in) else to_numpy(result)


def sparse_namespace(xp):
    """The sparse-matrix module matching ``xp``: :mod:`scipy.sparse` or :mod:`cupyx.scipy.sparse`."""
    if xp is np:
        return scipy.sparse
    import cupyx.scipy.sparse

    return cupyx.scipy.sparse


def to_float(x):
    """A Python float from a 0-d array of either backend (synchronises the GPU)."""
    return float(x)


class HostToDevice:
    """Copies host rows to the training device from a background (prefetch) thread.

    On the CPU it returns its input. For ``"cuda"`` each array is staged in
    page-locked (pinned) host memory and copied on a CUDA stream of its own that
    does not wait for the default stream, so the copy of the next minibatch
    overlaps the current training step (which runs on the default stream); the
    copying thread waits for its copy to finish before handing the array over, so
    the consumer always receives a complete array.

    Parameters
    ----------
    device : {"cpu", "cuda"}
    """

    def __init__(self, device):
        self.device = device
        self._stream = None

    def __call__(self, rows):
        if self.device == "cpu" or is_cupy_array(rows):
            return to_device(rows, self.device)
        cupy = _import_cupy()
        require_cuda()
        if self._stream is None:  # made in the copying thread on first use
            self._stream = cupy.cuda.Stream(non_blocking=True)
        host = np.ascontiguousarray(rows)
        pinned = _pinned_like(cupy, host)
        pinned[...] = host
        with self._stream:
            on_device = cupy.empty(host.shape, dtype=host.dtype)
            on_device.set(pinned, stream=self._stream)
        self._stream.synchronize()
        return on_device


def _pinned_like(cupy, host):
    """A NumPy array of ``host``'s shape and dtype in page-locked memory (fast, asynchronous copies to the GPU)."""
    memory = cupy.cuda.alloc_pinned_memory(host.nbytes)
    return np.frombuffer(memory, dtype=host.dtype, count=host.size).reshape(host.shape)
