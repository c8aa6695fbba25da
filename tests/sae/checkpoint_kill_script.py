"""A fit that is killed (SIGKILL: no cleanup, no ``finally``) part-way, for tests/sae/test_checkpoint.py.

Usage: python checkpoint_kill_script.py DATA.npy SOURCE PARAMS_JSON KILL

- SOURCE: ``memory`` (the file loaded as an array) or ``npy`` (the path itself, streamed through
  buffers of 200 rows and blocks of 50: block shuffling).
- PARAMS_JSON: the ``TopKSAE`` parameters (with ``checkpoint_dir`` and ``checkpoint_every``).
- KILL: ``step:N`` kills the process as step N+1 begins; ``replace:K`` kills it inside the K-th
  file rename of the checkpoint writer (odd K: a checkpoint's ``.npz`` is written to its temporary
  file but not renamed; even K: its ``.npz`` is in place but its JSON commit record is not).

The fit never finishes: the script exits with a non-zero status if it does.
"""

import json
import os
import signal
import sys
import warnings

import numpy as np

import skdict.sae._checkpoint as checkpoint_module
import skdict.sae._data as data_module
import skdict.sae._training as training_module
from skdict import TopKSAE

ROW_BYTES_BUFFER, ROW_BYTES_BLOCK = 200, 50


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def kill_at_step(n):
    original, done = training_module._train_step, [0]

    def step(*args, **kwargs):
        if done[0] == n:
            die()
        done[0] += 1
        return original(*args, **kwargs)

    training_module._train_step = step


def kill_in_rename(k):
    original, calls = os.replace, [0]

    def replace(source, target):
        calls[0] += 1
        if calls[0] == k:
            die()
        return original(source, target)

    checkpoint_module.os = type(os)("os_with_a_fatal_replace")
    checkpoint_module.os.__dict__.update(os.__dict__)
    checkpoint_module.os.replace = replace


def main(path, source, params, kill):
    X = np.load(path)
    if source == "npy":
        row_bytes = X.shape[1] * X.dtype.itemsize
        data_module.SHUFFLE_BUFFER_BYTES = ROW_BYTES_BUFFER * row_bytes
        data_module.BLOCK_BYTES = ROW_BYTES_BLOCK * row_bytes
        X = path
    how, count = kill.split(":")
    (kill_at_step if how == "step" else kill_in_rename)(int(count))
    warnings.simplefilter("ignore")
    TopKSAE(**json.loads(params)).fit(X)
    sys.exit("the fit finished: it should have been killed")


if __name__ == "__main__":
    main(*sys.argv[1:])
