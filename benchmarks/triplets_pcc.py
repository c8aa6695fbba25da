"""PCC of the learned feature matrix against the number of triplet feedbacks, at p = 512.

The true feature matrix comes from an SAE-sized dictionary: 512 unit features in
64 dimensions from :func:`skdict.datasets.make_linear_representation_bench`
(coherence at most 0.5), rows of :math:`F` (512 x 64), and :math:`\\Phi^* = F F^\\top`
acts on sparse activations over those 512 features (so :math:`\\Phi^*` is 512 x 512
of rank 64, :math:`d_{\\Phi^*}(x, y) = \\lVert F^\\top (x - y) \\rVert^2`). Feedback is
sampled with :func:`skdict.datasets.make_triplet_feedback` (equalities, each
activation coordinate 0 with probability ``--sparsity``, else U(0, 1]); the low-rank
solver fits rank 64 on float32 triplets. The table gives, for each number of
feedbacks, the PCC with :math:`\\Phi^*`, the relative Frobenius error, the epochs
and the fit time, beside the PCC of the isotropic guess :math:`\\Phi = I` (what no
feedback gives). ``p * r - r (r - 1) / 2`` is the number of free parameters of a
rank-r factor.

Run: ``OPENBLAS_NUM_THREADS=1 python benchmarks/triplets_pcc.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from skdict import TripletFeatureLearner
from skdict.datasets import make_linear_representation_bench, make_triplet_feedback
from skdict.metrics import feature_matrix_pcc


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=512, help="p, features of the dictionary")
    parser.add_argument("--dims", type=int, default=64, help="dimension of the features = rank of Φ*")
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8_000, 16_000, 32_000, 48_000, 64_000, 128_000])
    parser.add_argument("--max-iter", type=int, default=300)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="p = 64, rank 8, small sizes")
    args = parser.parse_args(argv)
    if args.quick:
        args.features, args.dims, args.sizes, args.max_iter = 64, 16, [1000, 2000, 4000], 100

    p, r = args.features, args.dims
    _, F, _ = make_linear_representation_bench(
        n_samples=1, n_features=p, n_dims=r, max_coherence=0.5, random_state=0
    )
    Phi = F @ F.T
    Phi_unit = Phi / np.linalg.norm(Phi)
    start = time.perf_counter()
    T, _ = make_triplet_feedback(Phi, max(args.sizes), kind="equality", sparsity=args.sparsity, random_state=1)
    T = T.astype(np.float32)
    generation = time.perf_counter() - start

    free = p * r - r * (r - 1) // 2
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores visible, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    print(f"p = {p}, rank(Φ*) = {r} (free parameters of U: {free}), sparsity {args.sparsity}, "
          f"lowrank rank {r}, learning_rate {args.learning_rate}, batch {args.batch_size}, max_iter {args.max_iter}")
    print(f"feedback generation: {generation:.1f} s for {max(args.sizes)} triplets")
    print(f"PCC of the isotropic guess Φ = I: {feature_matrix_pcc(Phi, np.eye(p)):.3f}\n")
    print(f"{'feedbacks':>10} {'/params':>8} {'PCC':>7} {'rel. error':>10} {'epochs':>7} {'fit s':>7}")
    for n in args.sizes:
        est = TripletFeatureLearner(
            solver="lowrank",
            rank=r,
            alpha=0.0,
            learning_rate=args.learning_rate,
            batch_size=args.batch_size,
            max_iter=args.max_iter,
            random_state=2,
        )
        start = time.perf_counter()
        est.fit(T[:n])
        seconds = time.perf_counter() - start
        pcc = feature_matrix_pcc(Phi, est.feature_matrix_)
        error = np.linalg.norm(est.feature_matrix_ - Phi_unit)
        print(f"{n:>10} {n / free:>8.2f} {pcc:>7.3f} {error:>10.3f} {est.n_iter_:>7} {seconds:>7.1f}", flush=True)


if __name__ == "__main__":
    main()
