"""skdict's TopKSAE against overcomplete's TopKSAE (PyTorch, CPU): time per epoch and explained variance.

Same data (a Linear Representation Bench draw), width, k, batch size, epochs, Adam
step size, float32, gradient clipping at norm 1, on the same CPU cores. The peer
lives in its own virtual environment (PyTorch is not a dependency of skdict) and
runs as a subprocess with that environment's Python; when it cannot be imported
the script says so and skips it.

Peer set-up (CPU wheel of PyTorch)::

    python -m venv /work/peer-venv
    /work/peer-venv/bin/pip install torch==2.13.0 overcomplete

Run::

    PYTHONPATH=. python benchmarks/peer_overcomplete.py [--peer-python /work/peer-venv/bin/python]

overcomplete's package ``__init__`` imports its vision models (torchvision); the
runner loads only ``overcomplete.sae``, so a torchvision that does not match the
installed torch does not stop it. overcomplete's TopKSAE is run with its
defaults (linear encoder with bias, ReLU then top-k, its dictionary layer) and
its own ``train_sae`` loop (``monitoring=0``, ``clip_grad=1.0``) on the mean
squared error; skdict's with its defaults (AuxK, learning-rate warmup and
decay). Per-epoch time is total training time over epochs, skdict's including
its initialisation (geometric median of 4096 samples).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from skdict import TopKSAE
from skdict.datasets import make_linear_representation_bench

DEFAULT_PEER_PYTHON = "/work/peer-venv/bin/python"

#: Loads overcomplete.sae without the package __init__ (which imports torchvision models).
PEER_IMPORT = """
import importlib.util, sys, types
spec = importlib.util.find_spec("overcomplete")
if spec is None:
    raise ImportError("overcomplete is not installed")
package = types.ModuleType("overcomplete")
package.__path__ = list(spec.submodule_search_locations)
sys.modules["overcomplete"] = package
import torch
from overcomplete.sae import TopKSAE, train_sae
"""

PEER_RUN = """
import json, sys, time
import numpy as np
path, n_components, k, batch_size, epochs, learning_rate, seed = sys.argv[1:8]
n_components, k, batch_size, epochs, seed = map(int, (n_components, k, batch_size, epochs, seed))
torch.manual_seed(seed)
X = torch.from_numpy(np.load(path))
model = TopKSAE(X.shape[1], nb_concepts=n_components, top_k=k, device="cpu")
optimizer = torch.optim.Adam(model.parameters(), lr=float(learning_rate))
loader = torch.utils.data.DataLoader(X, batch_size=batch_size, shuffle=True)
criterion = lambda x, x_hat, *rest: ((x - x_hat) ** 2).mean()
start = time.perf_counter()
train_sae(model, loader, criterion, optimizer, nb_epochs=epochs, clip_grad=1.0, monitoring=0, device="cpu")
seconds = time.perf_counter() - start
with torch.no_grad():
    x_hat = torch.cat([model(X[i : i + 4096])[2] for i in range(0, X.shape[0], 4096)]).numpy().astype(np.float64)
x = X.numpy().astype(np.float64)
ev = 1.0 - ((x - x_hat) ** 2).sum() / ((x - x.mean(axis=0)) ** 2).sum()
print(json.dumps({"seconds": seconds, "explained_variance": float(ev), "torch": torch.__version__,
                  "torch_threads": torch.get_num_threads()}))
"""


def peer_available(python):
    """``(True, "")`` when the peer's Python imports torch and overcomplete.sae, else ``(False, why)``."""
    if not os.path.exists(python):
        return False, f"{python} does not exist"
    probe = subprocess.run([python, "-c", PEER_IMPORT], capture_output=True, text=True)
    if probe.returncode != 0:
        return False, probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else "import failed"
    return True, ""


def run_skdict(X, args):
    model = TopKSAE(
        n_components=args.components,
        k=args.k,
        batch_size=args.batch,
        max_iter=args.epochs,
        learning_rate=args.learning_rate,
        n_iter_no_change=args.epochs + 1,
        random_state=args.seed,
    )
    start = time.perf_counter()
    model.fit(X)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "explained_variance": float(model.score(X)), "epochs": model.n_iter_}


def run_peer(X, args):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "X.npy")
        np.save(path, X)
        command = [args.peer_python, "-c", PEER_IMPORT + PEER_RUN, path, str(args.components), str(args.k),
                   str(args.batch), str(args.epochs), str(args.learning_rate), str(args.seed)]
        done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the peer run failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peer-python", default=os.environ.get("SKDICT_PEER_PYTHON", DEFAULT_PEER_PYTHON))
    parser.add_argument("--samples", type=int, default=16384)
    parser.add_argument("--features", type=int, default=512, help="input width d")
    parser.add_argument("--true-features", type=int, default=2048)
    parser.add_argument("--components", type=int, default=4096)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="4096 samples, 1024 latents, 2 epochs")
    args = parser.parse_args()
    if args.quick:
        args.samples, args.components, args.true_features, args.epochs = 4096, 1024, 512, 2

    ok, why = peer_available(args.peer_python)
    if not ok:
        print(f"overcomplete is not importable with {args.peer_python} ({why}): peer skipped.")
        return 0

    X = make_linear_representation_bench(
        n_samples=args.samples, n_features=args.true_features, n_dims=args.features, sparsity=0.99,
        max_coherence=0.3, random_state=args.seed,
    )[0]
    X = np.ascontiguousarray(X, dtype=np.float32)
    print(f"data: {X.shape[0]} x {X.shape[1]} float32 (Linear Representation Bench, {args.true_features} true "
          f"features); n_components={args.components}, k={args.k}, batch={args.batch}, epochs={args.epochs}, "
          f"lr={args.learning_rate}; {os.cpu_count()} CPUs\n")
    ours = run_skdict(X, args)
    peer = run_peer(X, args)
    ours_epoch = ours["seconds"] / ours["epochs"]
    peer_epoch = peer["seconds"] / args.epochs
    print(f"{'':28s} {'s / epoch':>10s} {'EV':>8s}")
    print(f"{'skdict TopKSAE':28s} {ours_epoch:10.3f} {ours['explained_variance']:8.4f}")
    print(f"{'overcomplete TopKSAE':28s} {peer_epoch:10.3f} {peer['explained_variance']:8.4f}   "
          f"(torch {peer['torch']}, {peer['torch_threads']} threads)")
    speedup = peer_epoch / ours_epoch
    better = ours["explained_variance"] >= peer["explained_variance"]
    print(f"\nskdict is {speedup:.2f}x faster per epoch at {'equal or better' if better else 'LOWER'} explained "
          f"variance (target: >= 2x at equal or better EV: {'met' if speedup >= 2 and better else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
