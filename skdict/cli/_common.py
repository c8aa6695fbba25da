"""What the sub-commands share: counts like ``200M``, image shapes, the device, the output folder."""

from __future__ import annotations

import argparse
import os
import re

#: Multipliers of the suffixes a count may carry (``200M`` tokens, ``1.5k`` steps).
_SUFFIXES = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12}
_COUNT = re.compile(r"^\s*(\d[\d_]*(?:\.\d*)?(?:e\d+)?)\s*([kmbgt]?)\s*$", re.IGNORECASE)


class UsageError(ValueError):
    """A bad option or output folder: the CLI prints it and exits with status 2."""


def parse_count(text):
    """A positive whole count: ``20000``, ``20_000``, ``2e8``, ``200M``, ``1.5k`` (k, M, B/G, T).

    Raises
    ------
    argparse.ArgumentTypeError
        Not a number, not whole, or below 1.
    """
    match = _COUNT.match(str(text))
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count (examples: 20000, 2e8, 200M, 1.5k)")
    value = float(match.group(1).replace("_", "")) * _SUFFIXES[match.group(2).lower()]
    if value < 1 or value != int(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole count of at least 1")
    return int(value)


def parse_fraction(text):
    """A float in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not in [0, 1)")
    return value


def parse_image_shape(text):
    """``H,W`` (or ``HxW``) as a pair of positive ints."""
    parts = re.split(r"[,x]", str(text).strip().lower())
    if len(parts) != 2 or not all(part.strip().isdigit() and int(part) > 0 for part in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not an image shape H,W (e.g. 28,28)")
    return int(parts[0]), int(parts[1])


def check_image_shape(image_shape, n_features, what="the data"):
    """An image shape must hold exactly one row of activations (``what`` names them: a transcoder's atoms are TARGET's)."""
    if image_shape is not None and image_shape[0] * image_shape[1] != n_features:
        raise UsageError(
            f"--image-shape {image_shape[0]},{image_shape[1]} holds {image_shape[0] * image_shape[1]} pixels, "
            f"but {what} has {n_features} features per row."
        )


def resolve_device(device):
    """'auto' becomes 'cuda' when CuPy reaches a GPU, else 'cpu'.

    Raises
    ------
    UsageError
        'cuda' was asked for and CuPy cannot reach a GPU (the message says what to install).
    """
    from skdict._array import cuda_available, require_cuda

    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    if device == "cuda":
        try:
            require_cuda()
        except RuntimeError as exc:
            raise UsageError(str(exc)) from None
    return device


def check_output_dir(path, overwrite):
    """An output folder must be new or empty unless ``overwrite``.

    Raises
    ------
    UsageError
        ``path`` is a file, or a non-empty folder and ``overwrite`` is false.
    """
    if os.path.isfile(path):
        raise UsageError(f"--output {path} is a file; give a folder.")
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise UsageError(f"--output {path} exists and is not empty; pass --overwrite to replace what skdict writes there.")


def add_device_option(parser):
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where to compute: 'cpu'; 'cuda' (needs CuPy and a GPU: pip install 'skdict[gpu]'); "
        "'auto' uses the GPU when CuPy can reach one, else the CPU (default: %(default)s)",
    )


def add_image_shape_option(parser):
    parser.add_argument(
        "--image-shape",
        type=parse_image_shape,
        metavar="H,W",
        help="the features of a row are an H x W image (H*W = n_features): also plot the atoms as images (atoms.png)",
    )
