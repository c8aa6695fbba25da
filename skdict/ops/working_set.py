r"""Working-set FISTA: each sample's lasso solved on a few atoms at a time, certified on all of them.

A lasso code :math:`z_n` has few nonzeros, yet every iteration of plain batched
FISTA (:func:`skdict.ops.fista.fista`) multiplies by the whole Gram matrix
:math:`G = DD^\top`, at :math:`O(m^2)` per sample for :math:`m` atoms. Here every
sample :math:`n` gets its own working set :math:`W_n` of :math:`p \ll m` atoms and
FISTA runs on the restricted problem

.. math::

    \min_{u \in \mathbb{R}^p} \tfrac12 \lVert x_n - u D_{W_n} \rVert_2^2 + \alpha \lVert u \rVert_1,

in Gram form, :math:`O(p^2)` per iteration, with all samples of one size :math:`p`
batched as (rows, p, p) Gram blocks :math:`G_{W_n W_n}`. Then the residual
correlations :math:`c_n = (x_n - z_n D) D^\top` over *all* atoms (one sparse
decode, one product) give the full duality gap
(:func:`skdict.ops.fista.gap_from_correlation`). A sample whose gap is at most
``tol`` times its objective is final — the same certificate as plain FISTA, so
the codes are as accurate — and the others grow their working set by the atoms
that violate optimality, :math:`|c_{nj}| > \alpha` (:math:`c_{nj} > \alpha` when
``positive``), largest first, and go again from where they stopped.

References: Johnson & Guestrin (2015), "Blitz: a principled meta-algorithm for
scaling sparse optimization"; Massias, Gramfort & Salmon (2018), "Celer: a fast
solver for the lasso with dual extrapolation" (working sets grown by the
duality gap's violators).
"""

from __future__ import annotations

from skdict._array import get_namespace
from skdict.ops.codes import CodeMatrix
from skdict.ops.fista import (
    LassoInfo,
    SharedGram,
    _check_fista_arguments,
    _float_dtype,
    fista,
    gap_from_correlation,
    lipschitz_constant,
    relative_gap,
    run_fista,
    trivial_info,
)
from skdict.ops.gram import gram_matrix

#: Atoms in a sample's first working set (beyond the support of a warm start).
INITIAL_SIZE = 16
#: Rows whose working set would hold more than this fraction of the atoms go to plain FISTA on all
#: atoms: a batched (rows, p, p) product costs ~30x more per element than one GEMM with G on a CPU.
DENSE_ABOVE = 1 / 8
#: Working-set sizes are powers of two from this one; rows of one size are solved together.
_MIN_SIZE = 8
#: Elements of the (rows, p, p) Gram blocks gathered at once.
_BLOCK_ELEMENTS = 1 << 22
#: Iterations of one restricted solve before the full gap is checked again.
_ROUND_MAX_ITER = 500
#: A restricted solve stops at this fraction of ``tol`` (the atoms outside W add to the full gap).
_INNER_TOL = 0.5
#: A row that fails the full check with no atom to add had an inexact restricted solve:
#: its restricted tolerance shrinks by this factor.
_TIGHTEN = 0.1


class GramBlocks:
    r"""Lassos of ``n_rows`` samples, each restricted to its own atoms :math:`W_n` (the interface of ``run_fista``).

    Holds the Gram blocks :math:`G_{W_n W_n}` (n_rows, p, p), the correlations
    :math:`c_{n W_n} = x_n D_{W_n}^\top` and a step :math:`1/L_n` per row, with
    :math:`L_n = \min(\max_i \sum_j |G_{W_n, ij}|,\ L)` — Gershgorin's bound on
    :math:`\lambda_{\max}(G_{W_n W_n})`, never above the full :math:`L` (which
    also bounds every principal submatrix), so the step is safe and usually larger.
    The gap is the restricted lasso's, in Gram form
    (:math:`\lVert r\rVert^2 = \lVert x\rVert^2 - 2 u\cdot c + u G u`).
    """

    def __init__(self, G, correlation, W, squared_norms, alpha, lipschitz, *, positive=False):
        xp = get_namespace(G, correlation, W)
        m = G.shape[0]
        self.blocks = xp.take(G.reshape(-1), W[:, :, None] * m + W[:, None, :])
        self.correlation = xp.take_along_axis(correlation, W, axis=1)
        bound = xp.minimum(xp.max(xp.sum(xp.abs(self.blocks), axis=2), axis=1), lipschitz)
        self.step = (1.0 / xp.maximum(bound, xp.finfo(G.dtype).tiny))[:, None].astype(G.dtype, copy=False)
        self.threshold = alpha * self.step
        self.target = self.correlation * self.step
        self.squared_norms, self.alpha, self.positive = squared_norms, alpha, positive

    def _gram_product(self, u):
        xp = get_namespace(u)
        return xp.matmul(self.blocks, u[:, :, None])[:, :, 0]

    def gradient_step(self, y, out):
        """``out = y - (y G_W - c_W) / L_n`` for every row."""
        xp = get_namespace(y)
        xp.multiply(self._gram_product(y), -self.step, out=out)
        out += y
        out += self.target

    def gap(self, u):
        xp = get_namespace(u)
        product = self._gram_product(u)
        squared_residual = self.squared_norms - xp.sum(u * (2.0 * self.correlation - product), axis=1)
        return gap_from_correlation(
            xp.maximum(squared_residual, 0.0), self.correlation - product, u, self.alpha, positive=self.positive
        )

    def keep(self, mask):
        self.blocks, self.correlation, self.target = self.blocks[mask], self.correlation[mask], self.target[mask]
        self.step, self.threshold, self.squared_norms = self.step[mask], self.threshold[mask], self.squared_norms[mask]


def size_classes(need, n_components):
    """Working-set size of every row: ``need`` rounded up to a power of two, at least 8, at most ``n_components``."""
    xp = get_namespace(need)
    powers = 2 ** xp.ceil(xp.log2(xp.maximum(need, 1).astype(xp.float64)))
    return xp.clip(powers, _MIN_SIZE, n_components).astype(xp.int64)


def next_size(codes, violation, alpha, minimum):
    r"""Atoms wanted in the next working set: the support plus the violators, at most doubling.

    ``violation`` is :math:`|c_j|` (:math:`c_j` when positive); violators are the
    atoms off the support with violation above :math:`\alpha`. At most
    :math:`\max(|\mathrm{supp}|, \texttt{minimum})` of them are added per round.
    """
    xp = get_namespace(codes)
    support = codes != 0
    n_support = xp.sum(support, axis=1)
    n_violators = xp.sum((violation > alpha) & ~support, axis=1)
    return n_support + xp.minimum(n_violators, xp.maximum(n_support, minimum)), n_violators


_ROW_FIELDS = ("rows", "codes", "score", "need", "inner_tol", "used", "round_budget")


class _Rows:
    """The rows still being solved: their indices, dense codes, ranking of atoms and bookkeeping."""

    def __init__(self, rows, codes, score, need, inner_tol, used, round_budget):
        self.rows, self.codes, self.score, self.need, self.inner_tol, self.used = (
            rows, codes, score, need, inner_tol, used)
        self.round_budget = round_budget

    def take(self, index):
        return _Rows(*(getattr(self, name)[index] for name in _ROW_FIELDS))

    @staticmethod
    def concatenate(parts, xp):
        return _Rows(*(xp.concatenate([getattr(part, name) for part in parts]) for name in _ROW_FIELDS))


def working_set_fista(
    X,
    D,
    alpha,
    *,
    positive=False,
    max_iter=200,
    tol=1e-6,
    init=None,
    momentum=True,
    restart=True,
    gram=None,
    lipschitz=None,
    initial_size=INITIAL_SIZE,
    dense_above=DENSE_ABOVE,
    return_info=False,
):
    r"""Lasso codes of every row of ``X`` on ``D``, by FISTA on growing per-sample working sets.

    Solves the problem of :func:`skdict.ops.fista.fista` (same parameters, same
    result up to ``tol``). A round, for the rows not yet final:

    1. rank the atoms: the current support first, then by the violation
       :math:`|c_{nj}|` of the residual correlations (:math:`c_{nj}` when
       ``positive``; at the start :math:`c_n = x_n D^\top`, or the residual
       correlations of ``init``);
    2. working set :math:`W_n` = the first :math:`p_n` atoms, where :math:`p_n` is the
       support size plus its violators (at most doubling it; ``initial_size``
       violators at the start), rounded up to a power of two; rows of one size
       run FISTA together on their Gram blocks (:class:`GramBlocks`), warm
       started, until the restricted gap is below ``tol / 2`` (at most 500
       iterations);
    3. full check: a row whose duality gap over *all* atoms is at most
       ``tol`` times its objective is final; a row that failed with no violator
       left tightens its restricted tolerance tenfold.

    Rows whose working set would exceed ``dense_above`` of the atoms are
    finished by plain :func:`~skdict.ops.fista.fista` on all atoms, warm started;
    when even the first working set would (few atoms), or when nothing can be
    certified (``tol=0`` or ``alpha=0``), the whole call is plain FISTA.

    Parameters
    ----------
    X, D, alpha, positive, max_iter, tol, init, momentum, restart, gram, lipschitz
        As in :func:`skdict.ops.fista.fista`. ``max_iter`` bounds the FISTA
        iterations of a sample over all its rounds.
    initial_size : int, default=16
        Atoms in a first working set beyond a warm start's support.
    dense_above : float, default=1/8
        Largest working set, as a fraction of the atoms (1 allows all atoms).
    return_info : bool, default=False
        Return a :class:`~skdict.ops.fista.LassoInfo` instead of ``n_iter``: per
        row, its iterations, whether its full duality gap certified it, and that
        relative gap. The codes are the same.

    Returns
    -------
    codes : array of shape (n_samples, n_components)
        Every row with a certified relative duality gap ≤ ``tol``, unless it
        ran ``max_iter`` iterations.
    n_iter : int or LassoInfo
        FISTA iterations of the slowest sample, over all its rounds; a
        :class:`~skdict.ops.fista.LassoInfo` with ``return_info``.
    """
    _check_fista_arguments(X, D, alpha, max_iter, tol, init, gram, lipschitz)
    if not initial_size >= 1:
        raise ValueError(f"initial_size must be an int >= 1, got {initial_size!r}.")
    if not 0 < dense_above <= 1:
        raise ValueError(f"dense_above must be a fraction in (0, 1], got {dense_above!r}.")
    xp = get_namespace(X, D, init, gram)
    dtype = _float_dtype(xp, X.dtype)
    X, D = X.astype(dtype, copy=False), D.astype(dtype, copy=False)
    n_samples, n_components = X.shape[0], D.shape[0]
    plain = dict(positive=positive, tol=tol, momentum=momentum, restart=restart, gram=gram, lipschitz=lipschitz)
    first_size = int(size_classes(xp.asarray([initial_size]), n_components)[0])
    if tol == 0 or alpha == 0 or n_samples == 0 or first_size > dense_above * n_components:
        return fista(X, D, alpha, max_iter=max_iter, init=init, return_info=return_info, **plain)
    G = gram_matrix(D) if gram is None else gram.astype(dtype, copy=False)
    L = lipschitz_constant(D, gram=G) if lipschitz is None else float(lipschitz)
    if L == 0.0:
        return xp.zeros((n_samples, n_components), dtype=dtype), (trivial_info(xp, n_samples, dtype) if return_info else 0)
    C = X @ D.T
    squared_norms = xp.sum(X * X, axis=1)
    codes = xp.zeros((n_samples, n_components), dtype=dtype)
    start = codes if init is None else init.astype(dtype, copy=True)
    if positive and init is not None:  # the gap certifies feasible codes only: project the start first
        start = xp.maximum(start, 0)
    solver = _Solver(X, D, G, L, C, squared_norms, alpha, positive, tol, momentum, restart, max_iter, codes)
    active = solver.check(
        xp.arange(n_samples), start, C if init is None else None, xp.zeros(n_samples, dtype=xp.int64),
        xp.full(n_samples, _INNER_TOL * tol, dtype=dtype), min_size=initial_size, current_size=0,
    )
    while active is not None:
        sizes = size_classes(active.need, n_components)
        parts = []
        for size in xp.unique(sizes).tolist():
            group = active.take(xp.flatnonzero(sizes == size))
            if size > dense_above * n_components:
                solver.finish_dense(group)
                continue
            rows_per_block = max(1, _BLOCK_ELEMENTS // (size * size))
            for begin in range(0, group.rows.shape[0], rows_per_block):
                part = solver.round(group.take(slice(begin, begin + rows_per_block)), size)
                if part is not None:
                    parts.append(part)
        active = _Rows.concatenate(parts, xp) if parts else None
    return codes, (solver.info() if return_info else solver.n_iter)


class _Solver:
    """The fixed data of one :func:`working_set_fista` call and its rounds; writes final rows into ``codes``."""

    def __init__(self, X, D, G, L, C, squared_norms, alpha, positive, tol, momentum, restart, max_iter, codes):
        self.X, self.D, self.G, self.L, self.C, self.squared_norms = X, D, G, L, C, squared_norms
        self.alpha, self.positive, self.tol, self.max_iter = alpha, positive, tol, max_iter
        self.momentum, self.restart, self.codes, self.n_iter = momentum, restart, codes, 0
        self.xp = xp = get_namespace(X)
        n_samples = X.shape[0]
        self.iterations = xp.zeros(n_samples, dtype=xp.int64)
        self.converged = xp.zeros(n_samples, dtype=bool)
        self.relative_gap = xp.zeros(n_samples, dtype=X.dtype)

    def info(self):
        """The :class:`~skdict.ops.fista.LassoInfo` of the rows final so far (all of them after the call)."""
        return LassoInfo(self.n_iter, self.iterations, self.converged, self.relative_gap)

    def _finish(self, rows, codes, used, certified, gaps):
        """Write final rows: their codes, iterations, certificate and relative gap."""
        self.codes[rows] = codes
        self.iterations[rows] = used
        self.converged[rows] = certified
        self.relative_gap[rows] = gaps
        self.n_iter = max(self.n_iter, int(self.xp.max(used))) if used.shape[0] else self.n_iter

    def round(self, rows, size):
        """FISTA on the working sets of ``rows`` (all of one ``size``), then the full check."""
        xp = self.xp
        W = xp.argpartition(-rows.score, size - 1, axis=1)[:, :size] if size < self.D.shape[0] else (
            xp.broadcast_to(xp.arange(size), rows.score.shape).copy())
        W = xp.sort(W, axis=1)  # neighbouring atoms: a more local gather of the Gram blocks
        problem = GramBlocks(self.G, self.C[rows.rows], W, self.squared_norms[rows.rows], self.alpha, self.L,
                             positive=self.positive)
        budget = xp.minimum(self.max_iter - rows.used, rows.round_budget)
        restricted, inner = run_fista(problem, xp.take_along_axis(rows.codes, W, axis=1), max_iter=budget,
                                      tol=rows.inner_tol, momentum=self.momentum, restart=self.restart)
        iterations = inner.iterations
        codes = xp.zeros_like(rows.codes)
        codes[xp.arange(W.shape[0])[:, None], W] = restricted
        residual_product = CodeMatrix.from_row_pairs(W, restricted, self.D.shape[0]).dot(self.D)
        return self.check(rows.rows, codes, self.X[rows.rows] - residual_product, rows.used + iterations,
                          rows.inner_tol, min_size=_MIN_SIZE, current_size=size, exhausted=iterations >= budget)

    def check(self, rows, codes, residual, used, inner_tol, *, min_size, current_size, exhausted=None):
        """Full duality gap of ``codes``; final rows go to the output, the others come back ranked for a new round.

        ``residual`` is :math:`X - ZD` for those rows, or the correlations
        :math:`C` themselves when the codes are zero (then no product is needed).
        ``exhausted`` says which rows' last restricted solve ran out of its
        round budget. A row with no violator left keeps its working set: if its
        solve was cut short, the next round gets its whole remaining budget (a
        restart every 500 iterations stalled ill-conditioned rows); if it stopped
        on its restricted gap, that gap was inexact and its tolerance shrinks.
        """
        xp = self.xp
        if residual is None:
            residual = self.X[rows] - codes @ self.D
        if residual is self.C:
            correlation, squared_residual = self.C, self.squared_norms
        else:
            correlation, squared_residual = residual @ self.D.T, xp.sum(residual * residual, axis=1)
        gap, primal = gap_from_correlation(squared_residual, correlation, codes, self.alpha, positive=self.positive)
        self.n_iter = max(self.n_iter, int(xp.max(used)))
        certified = gap <= self.tol * primal
        final = certified | (used >= self.max_iter)
        self._finish(rows[final], codes[final], used[final], certified[final], relative_gap(gap[final], primal[final]))
        going = xp.flatnonzero(~final)
        if going.shape[0] == 0:
            return None
        codes, correlation = codes[going], correlation[going]
        violation = correlation if self.positive else xp.abs(correlation)
        need, n_violators = next_size(codes, violation, self.alpha, min_size)
        stuck = (n_violators == 0) & (current_size > 0)
        cut_short = xp.zeros_like(stuck) if exhausted is None else exhausted[going]
        inner_tol = xp.where(stuck & ~cut_short, _TIGHTEN, 1.0).astype(inner_tol.dtype) * inner_tol[going]
        round_budget = xp.where(stuck & cut_short, self.max_iter, _ROUND_MAX_ITER).astype(xp.int64)
        score = xp.where(codes != 0, xp.inf, violation)
        return _Rows(rows[going], codes, score, xp.maximum(need, current_size), inner_tol, used[going], round_budget)

    def finish_dense(self, rows):
        """Plain FISTA on all atoms, warm started, for rows whose working sets grew too large."""
        problem = SharedGram(self.X[rows.rows], self.D, self.G, self.L, self.alpha, positive=self.positive)
        codes, info = run_fista(problem, rows.codes, max_iter=self.max_iter - rows.used, tol=self.tol,
                                momentum=self.momentum, restart=self.restart)
        self._finish(rows.rows, codes, rows.used + info.iterations, info.converged, info.relative_gap)
