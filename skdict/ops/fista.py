r"""FISTA and ISTA: batched lasso codes for a fixed dictionary.

For every sample :math:`x_n` (a row of ``X``) and a dictionary :math:`D` whose
rows are the atoms, the codes solve

.. math::

    z_n = \arg\min_z \; \tfrac12 \lVert x_n - z D \rVert_2^2 + \alpha \lVert z \rVert_1
    \quad (\text{and } z \ge 0 \text{ when } \texttt{positive}),

scikit-learn's convention (not divided by the number of samples). All samples
are solved at once with matrix products: the gradient of the smooth part is
:math:`\nabla = z G - x D^\top` with the Gram matrix :math:`G = D D^\top`, so
:math:`X D^\top` is formed once and each iteration costs one
(n_samples × n_components × n_components) product.

References: Beck & Teboulle (2009), "A fast iterative shrinkage-thresholding
algorithm for linear inverse problems"; O'Donoghue & Candès (2015), "Adaptive
restart for accelerated gradient schemes".
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import NamedTuple

from skdict._array import get_namespace
from skdict.ops.gram import gram_matrix

#: The stopping test (a duality gap, two products) runs at iteration 1 and every this many iterations.
_CHECK_EVERY = 10
#: Above this size of the smaller Gram matrix, L is estimated by power iteration.
_EXACT_EIGVALSH_MAX = 2048
#: Power iteration: at most this many steps, stopping at this relative change of the estimate.
_POWER_MAX_ITER = 500
_POWER_TOL = 1e-6
#: Power iteration gives a lower bound on L; the step uses L times this factor.
_POWER_SAFETY = 1.02


class LassoInfo(NamedTuple):
    r"""How the rows of one lasso solve ended (``return_info=True`` of :func:`fista` and
    :func:`~skdict.ops.working_set.working_set_fista`).

    Attributes
    ----------
    n_iter : int
        Iterations of the slowest row (what the functions return without ``return_info``).
    iterations : int array of shape (n_samples,)
        Iterations run by each row.
    converged : bool array of shape (n_samples,)
        Rows certified by their duality gap: :math:`P(z_n) - \mathcal{D}(\nu_n) \le \mathrm{tol}\, P(z_n)`.
        The others stopped at ``max_iter``. (With ``tol=0`` only an exact optimum counts.)
    relative_gap : float array of shape (n_samples,)
        :math:`(P(z_n) - \mathcal{D}(\nu_n)) / P(z_n)` at the returned codes (0 where
        :math:`P(z_n) = 0`): a bound on the relative suboptimality of each row's objective.
    """

    n_iter: int
    iterations: object
    converged: object
    relative_gap: object

    @property
    def n_unconverged(self):
        """Number of rows that stopped at ``max_iter`` without their certificate."""
        return int((~self.converged).sum())

    def unconverged_message(self, max_iter, tol, *, max_iter_name="max_iter", tol_name="tol"):
        """What ran out, for :func:`skdict._guards.warn_not_converged`: rows, worst gap, the budget."""
        worst = float(self.relative_gap[~self.converged].max())
        return (
            f"{self.n_unconverged} of {self.converged.shape[0]} rows stopped at {max_iter_name}={max_iter} "
            f"iterations before their lasso duality gap reached {tol_name}={tol:g} times their objective "
            f"(worst relative gap {worst:.3g})"
        )

    @classmethod
    def concatenate(cls, parts):
        """One info for the rows of ``parts`` in order (e.g. row blocks of one call)."""
        xp = get_namespace(parts[0].converged)
        return cls(
            max(part.n_iter for part in parts),
            *(xp.concatenate([getattr(part, name) for part in parts]) for name in ("iterations", "converged", "relative_gap")),
        )


def relative_gap(gap, primal):
    """``gap / primal`` per row, 0 where the objective is 0 (then the gap is 0 too)."""
    xp = get_namespace(gap, primal)
    return xp.where(primal > 0, gap / xp.where(primal > 0, primal, 1), 0)


def _float_dtype(xp, dtype):
    return dtype if dtype in (xp.float32, xp.float64) else xp.float64


def _largest_eigenvalue_power(G):
    """Largest eigenvalue of the PSD matrix ``G`` by power iteration (a lower bound, made safe by the caller)."""
    xp = get_namespace(G)
    n = G.shape[0]
    v = xp.ones(n, dtype=G.dtype) + xp.arange(n, dtype=G.dtype) / n  # deterministic, not orthogonal to 1
    v /= xp.sqrt(xp.sum(v * v))
    estimate = 0.0
    for _ in range(_POWER_MAX_ITER):
        w = G @ v
        new_estimate = float(xp.sum(v * w))  # Rayleigh quotient, increases towards lambda_max
        norm = float(xp.sqrt(xp.sum(w * w)))
        if norm == 0.0:
            return 0.0
        v = w / norm
        if abs(new_estimate - estimate) <= _POWER_TOL * abs(new_estimate):
            return new_estimate
        estimate = new_estimate
    return estimate


def lipschitz_constant(D, *, gram=None):
    r"""Lipschitz constant :math:`L = \lVert D D^\top \rVert_2 = \sigma_{\max}(D)^2` of the lasso gradient.

    :math:`L` is the largest eigenvalue of the smaller of :math:`D D^\top` and
    :math:`D^\top D` (they share their nonzero spectrum). Up to 2048 × 2048 it is
    computed exactly with ``eigvalsh``; above, by power iteration (at most 500
    steps, relative change 1e-6) and multiplied by 1.02, so that the step
    :math:`1/L` never exceeds the stable step of an underestimated :math:`L`
    by much (power iteration approaches :math:`\lambda_{\max}` from below).

    Parameters
    ----------
    D : array of shape (n_components, n_features)
        Atoms as rows.
    gram : array of shape (n_components, n_components) or None
        :math:`D D^\top` if already computed (used when it is the smaller Gram).

    Returns
    -------
    L : float
        Non-negative; 0 only for a zero dictionary.
    """
    xp = get_namespace(D)
    n_components, n_features = D.shape
    if n_components <= n_features:
        G = gram_matrix(D) if gram is None else gram
    else:
        G = gram_matrix(D.T)
    if G.shape[0] <= _EXACT_EIGVALSH_MAX:
        return max(float(xp.linalg.eigvalsh(G)[-1]), 0.0)
    return _POWER_SAFETY * _largest_eigenvalue_power(G)


def soft_threshold(V, threshold, *, positive=False, out=None):
    r"""Proximal operator of :math:`\theta\lVert\cdot\rVert_1` (plus the indicator of :math:`z \ge 0` if ``positive``).

    Signed: :math:`\operatorname{sign}(v)\max(|v| - \theta, 0)`; positive:
    :math:`\max(v - \theta, 0)`. ``threshold`` is a scalar or an array
    broadcastable against ``V`` (e.g. one threshold per component).
    """
    xp = get_namespace(V)
    if positive:
        result = V - threshold
        return xp.maximum(result, 0, out=result if out is None else out)
    clipped = xp.clip(V, -threshold, threshold)
    if out is None:
        return V - clipped
    return xp.subtract(V, clipped, out=out)


def lasso_objective(X, D, codes, alpha):
    r"""Per-sample objective :math:`\tfrac12\lVert x_n - z_n D\rVert_2^2 + \alpha\lVert z_n\rVert_1`, shape (n_samples,)."""
    xp = get_namespace(X, D, codes)
    residual = X - codes @ D
    return 0.5 * xp.sum(residual * residual, axis=1) + alpha * xp.sum(xp.abs(codes), axis=1)


def duality_gap(X, D, codes, alpha, *, positive=False):
    r"""Per-sample lasso duality gap :math:`P(z_n) - \mathcal{D}(\nu_n) \ge P(z_n) - P^\star_n \ge 0`, and :math:`P(z_n)`.

    With the residual :math:`r = x - zD` and correlations :math:`c = r D^\top`,
    the dual point :math:`\nu = s\,r` is made feasible by
    :math:`s = \min(1, \alpha / \max_j |c_j|)` (:math:`\max_j c_j` when
    ``positive``), and the gap

    .. math::

        P(z) - \mathcal{D}(\nu) = \tfrac12 (1 - s)^2 \lVert r\rVert^2
        + \sum_j \big(\alpha |z_j| - s\, z_j c_j\big)

    is a sum of non-negative terms (no cancellation between large numbers), with
    :math:`\mathcal{D}(\nu) = \langle x, \nu\rangle - \tfrac12\lVert\nu\rVert^2`.
    For ``alpha=0`` (least squares) the bound is only useful at an exact fit.

    Returns
    -------
    gap, primal : arrays of shape (n_samples,)
    """
    xp = get_namespace(X, D, codes)
    residual = X - codes @ D
    return gap_from_correlation(xp.sum(residual * residual, axis=1), residual @ D.T, codes, alpha, positive=positive)


def gap_from_correlation(squared_residual, correlation, codes, alpha, *, positive=False):
    r"""The duality gap of :func:`duality_gap` from :math:`\lVert r_n\rVert^2` and :math:`c_n = r_n D^\top`.

    ``correlation`` and ``codes`` may hold any subset of the columns (the same
    subset): on all columns it is the lasso's gap; on a working set :math:`W` it is
    the gap of the lasso restricted to the atoms in :math:`W`.

    Parameters
    ----------
    squared_residual : array of shape (n_samples,)
    correlation, codes : arrays of shape (n_samples, n_columns)
    alpha : float
    positive : bool, default=False

    Returns
    -------
    gap, primal : arrays of shape (n_samples,)
    """
    xp = get_namespace(correlation, codes)
    largest = xp.max(correlation if positive else xp.abs(correlation), axis=1)
    scale = xp.minimum(1.0, alpha / xp.maximum(largest, xp.finfo(codes.dtype).tiny))
    l1 = xp.sum(xp.abs(codes), axis=1)
    gap = 0.5 * (1.0 - scale) ** 2 * squared_residual + alpha * l1 - scale * xp.sum(codes * correlation, axis=1)
    return xp.maximum(gap, 0.0), 0.5 * squared_residual + alpha * l1


def _check_fista_arguments(X, D, alpha, max_iter, tol, init, gram, lipschitz):
    if X.ndim != 2 or D.ndim != 2:
        raise ValueError(
            f"X and D must be 2-D (samples x features and components x features); got X.ndim={X.ndim}, D.ndim={D.ndim}."
        )
    if X.shape[1] != D.shape[1]:
        raise ValueError(
            f"X has {X.shape[1]} features but the dictionary D has {D.shape[1]}; atoms must be the rows of D, "
            "of shape (n_components, n_features)."
        )
    if not isinstance(alpha, Real) or not alpha >= 0 or not math.isfinite(alpha):
        raise ValueError(f"alpha must be a finite float >= 0 (the l1 penalty), got {alpha!r}.")
    if not isinstance(max_iter, Integral) or max_iter < 1:
        raise ValueError(f"max_iter must be an int >= 1, got {max_iter!r}.")
    if not isinstance(tol, Real) or not tol >= 0:
        raise ValueError(f"tol must be a float >= 0, got {tol!r}.")
    shape = (X.shape[0], D.shape[0])
    if init is not None and tuple(init.shape) != shape:
        raise ValueError(f"init must have shape (n_samples, n_components) = {shape}, got {tuple(init.shape)}.")
    if gram is not None and tuple(gram.shape) != (D.shape[0], D.shape[0]):
        raise ValueError(
            f"gram must be D @ D.T of shape (n_components, n_components) = {(D.shape[0],) * 2}, got {tuple(gram.shape)}."
        )
    if lipschitz is not None and (not isinstance(lipschitz, Real) or not lipschitz >= 0 or not math.isfinite(lipschitz)):
        raise ValueError(f"lipschitz must be a finite float >= 0 (the largest eigenvalue of D @ D.T), got {lipschitz!r}.")


def fista(
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
    return_info=False,
):
    r"""Lasso codes of every row of ``X`` on the dictionary ``D`` by FISTA (or ISTA).

    Iterates, for all samples at once, with step :math:`1/L`:

    .. math::

        z^{k+1} = \operatorname{prox}_{\alpha/L}\big(y^k - (y^k G - X D^\top)/L\big), \quad
        t_{k+1} = \tfrac{1 + \sqrt{1 + 4 t_k^2}}{2}, \quad
        y^{k+1} = z^{k+1} + \tfrac{t_k - 1}{t_{k+1}} (z^{k+1} - z^k),

    from :math:`y^0 = z^0` (``init`` or zeros) and :math:`t_0 = 1`. ``prox`` is
    :func:`soft_threshold`. With ``momentum=False`` :math:`y^k = z^k` (ISTA).

    Adaptive restart (``restart=True``, gradient scheme of O'Donoghue & Candès):
    each sample has its own :math:`t`; when
    :math:`\langle y^k - z^{k+1}, z^{k+1} - z^k\rangle > 0` (the momentum points
    uphill) that sample's momentum is dropped (:math:`y^{k+1} = z^{k+1}`,
    :math:`t = 1`). This restores linear convergence once the support is found.

    Stopping is per sample, on the relative duality gap (:func:`duality_gap`):
    at iteration 1 and every 10 iterations, a sample with
    :math:`P(z_n) - \mathcal{D}(\nu_n) \le \mathrm{tol}\cdot P(z_n)` stops:
    its codes are final and it leaves the batch. The gap bounds the distance to
    the optimal objective, :math:`P(z_n) - P^\star_n`, so ``tol`` is a
    certified relative accuracy of the objective; a sample's codes do not depend
    on which other samples share the call; and the batch shrinks as samples
    converge. (A rule on the change of the codes stops too early on
    ill-conditioned dictionaries, where steps are small far from the optimum.)

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    D : array of shape (n_components, n_features)
        Atoms as rows (any norms).
    alpha : float
        :math:`\alpha \ge 0`, the l1 penalty per sample.
    positive : bool, default=False
        Constrain codes to :math:`z \ge 0`.
    max_iter : int, default=200
    tol : float, default=1e-6
        Relative duality gap that stops a sample (see above); 0 runs all ``max_iter`` iterations.
    init : array of shape (n_samples, n_components) or None
        Warm start :math:`z^0` (not modified).
    momentum : bool, default=True
        Nesterov momentum (FISTA); ``False`` gives ISTA.
    restart : bool, default=True
        Per-sample adaptive restart of the momentum (ignored without momentum).
    gram : array of shape (n_components, n_components) or None
        :math:`G = D D^\top`, to reuse across calls.
    lipschitz : float or None
        :math:`L`, to reuse across calls; default :func:`lipschitz_constant`.
    return_info : bool, default=False
        Return a :class:`LassoInfo` (per-row iterations, convergence and relative
        gap) instead of ``n_iter``. Costs one gap evaluation for rows that end
        at ``max_iter``; the codes are the same.

    Returns
    -------
    codes : array of shape (n_samples, n_components)
        Dense, with ``X``'s dtype (float32 or float64) and backend.
    n_iter : int or LassoInfo
        Iterations run (by the slowest sample); a :class:`LassoInfo` with ``return_info``.
    """
    _check_fista_arguments(X, D, alpha, max_iter, tol, init, gram, lipschitz)
    xp = get_namespace(X, D, init, gram)
    dtype = _float_dtype(xp, X.dtype)
    X = X.astype(dtype, copy=False)
    D = D.astype(dtype, copy=False)
    G = gram_matrix(D) if gram is None else gram.astype(dtype, copy=False)
    L = lipschitz_constant(D, gram=G) if lipschitz is None else float(lipschitz)
    n_samples, n_components = X.shape[0], D.shape[0]
    codes = xp.zeros((n_samples, n_components), dtype=dtype) if init is None else init.astype(dtype, copy=True)
    if L == 0.0 or n_samples == 0:  # zero dictionary: the smooth part is constant and z = 0 is optimal
        info = trivial_info(xp, n_samples, dtype)
        return xp.zeros_like(codes), (info if return_info else 0)
    problem = SharedGram(X, D, G, L, alpha, positive=positive)
    codes, info = run_fista(problem, codes, max_iter=max_iter, tol=tol, momentum=momentum, restart=restart)
    return codes, (info if return_info else info.n_iter)


def trivial_info(xp, n_samples, dtype):
    """The :class:`LassoInfo` of rows solved exactly without iterating (zero codes are optimal)."""
    return LassoInfo(
        0, xp.zeros(n_samples, dtype=xp.int64), xp.ones(n_samples, dtype=bool), xp.zeros(n_samples, dtype=dtype)
    )


class SharedGram:
    r"""Rows of the lasso on one dictionary: one Gram matrix :math:`G = DD^\top` and one step :math:`1/L`.

    The problem interface of :func:`run_fista` (see there): ``gradient_step``,
    ``threshold``, ``gap`` and ``keep``. The gap is :func:`duality_gap`, from the
    explicit residual.
    """

    def __init__(self, X, D, G, L, alpha, *, positive=False):
        self.X, self.D, self.G, self.alpha, self.positive = X, D, G, alpha, positive
        self.step, self.threshold = 1.0 / L, alpha / L
        self.target = (X @ D.T) * self.step  # X D^T / L, formed once

    def gradient_step(self, y, out):
        """``out = y - (y G - X D^T) / L``."""
        xp = get_namespace(y)
        xp.matmul(y, self.G, out=out)
        out *= -self.step
        out += y
        out += self.target

    def gap(self, z):
        return duality_gap(self.X, self.D, z, self.alpha, positive=self.positive)

    def keep(self, mask):
        self.X, self.target = self.X[mask], self.target[mask]


def run_fista(problem, z, *, max_iter, tol, momentum=True, restart=True):
    r"""The FISTA/ISTA iterations of :func:`fista` on the rows of ``problem``, each stopping on its own gap.

    ``problem`` gives, for the rows still iterating: ``gradient_step(y, out)``
    (:math:`y - \nabla f(y)/L` into ``out``), ``threshold`` (:math:`\alpha/L`, a
    scalar or one per row, shape (n_rows, 1)), ``positive`` (the sign
    constraint), ``gap(z)`` (duality gap and
    objective per row) and ``keep(mask)`` (drop the rows that stopped).
    :class:`SharedGram` is the lasso of :func:`fista`;
    :class:`skdict.ops.working_set.GramBlocks` are lassos restricted to one
    working set per row.

    Parameters
    ----------
    problem : object with the interface above
    z : array of shape (n_rows, n_columns)
        Start :math:`z^0`; overwritten.
    max_iter : int or int array of shape (n_rows,)
        Iterations allowed, to all rows or to each row.
    tol : float or array of shape (n_rows,)
        A row stops once its gap is at most ``tol`` times its objective
        (checked at iteration 1 and every 10); 0 runs all ``max_iter``.
    momentum, restart : bool
        As in :func:`fista`.

    Returns
    -------
    z : array of shape (n_rows, n_columns)
        The last iterate of every row.
    info : LassoInfo
        Per row: iterations run, whether the gap certified it (``problem.gap``),
        and its relative gap when it stopped (evaluated once more for rows that
        ran out of budget between two checks).
    """
    xp = get_namespace(z)
    dtype = z.dtype
    n_rows = z.shape[0]
    codes = z
    per_row_budget = hasattr(max_iter, "shape")
    iterations = max_iter.astype(xp.int64, copy=True) if per_row_budget else xp.full(n_rows, max_iter, dtype=xp.int64)
    budget = iterations.copy()
    budget_ends = set(xp.unique(budget).tolist()) if per_row_budget else {max_iter}
    converged = xp.zeros(n_rows, dtype=bool)
    gaps = xp.zeros(n_rows, dtype=dtype)
    tol_rows = tol if not hasattr(tol, "shape") else tol.astype(dtype, copy=True)
    check = hasattr(tol, "shape") or tol != 0
    # Working arrays hold the rows still iterating; `rows` maps them back into `codes`.
    rows = xp.arange(n_rows)
    z = codes.copy()
    y = z.copy()
    t = xp.ones((n_rows, 1), dtype=dtype)
    z_new = xp.empty_like(z)
    for n_iter in range(1, max(budget_ends, default=0) + 1):
        problem.gradient_step(y, z_new)
        soft_threshold(z_new, problem.threshold, positive=problem.positive, out=z_new)
        change = z_new - z
        if momentum:
            t_next = (1.0 + xp.sqrt(1.0 + 4.0 * t * t)) / 2.0
            beta = (t - 1.0) / t_next
            if restart:
                uphill = xp.sum((y - z_new) * change, axis=1, keepdims=True) > 0
                beta = xp.where(uphill, 0.0, beta).astype(dtype, copy=False)
                t_next = xp.where(uphill, 1.0, t_next).astype(dtype, copy=False)
            t = t_next
            xp.multiply(change, beta, out=y)
            y += z_new
        else:
            y[...] = z_new
        z, z_new = z_new, z
        check_gap = check and (n_iter == 1 or n_iter % _CHECK_EVERY == 0)
        if not check_gap and n_iter not in budget_ends:
            continue
        gap, primal = problem.gap(z)
        certified = gap <= tol_rows * primal
        done = certified if check_gap else xp.zeros_like(certified)
        if n_iter in budget_ends:
            done |= budget == n_iter
        if bool(xp.any(done)):
            codes[rows[done]] = z[done]
            iterations[rows[done]] = n_iter
            converged[rows[done]] = certified[done]
            gaps[rows[done]] = relative_gap(gap[done], primal[done])
            keep = ~done
            if not bool(xp.any(keep)):
                return codes, LassoInfo(int(xp.max(iterations)) if n_rows else 0, iterations, converged, gaps)
            rows, z, y, t, budget = rows[keep], z[keep], y[keep], t[keep], budget[keep]
            if hasattr(tol_rows, "shape"):
                tol_rows = tol_rows[keep]
            problem.keep(keep)
            z_new = xp.empty_like(z)
    codes[rows] = z  # only reached with max_iter < 1 or no rows
    return codes, LassoInfo(int(xp.max(iterations)) if n_rows else 0, iterations, converged, gaps)
