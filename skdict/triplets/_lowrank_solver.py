r"""The low-rank solver: Φ = U Uᵀ with U of a given rank, fitted by minibatch Adam (NumPy or CuPy).

The objective over a batch of :math:`n` triplets is

.. math::

    J(U) = \frac{1}{n} \Big( \sum_{i \in E} s_i^2 + \sum_{i \in I} \max(0,\, m - y_i s_i) \Big)
           + \frac{\alpha}{p} \lVert U^\top U \rVert_F^2,
    \qquad s_i = \frac{\lVert U^\top b_i \rVert^2 - \lVert U^\top a_i \rVert^2}{w_i},

the least-squares residuals of the equalities :math:`E`, a hinge with margin
:math:`m` for the labelled triplets :math:`I`, and the ridge term of the SDP
(:math:`\lVert U^\top U \rVert_F = \lVert \Phi \rVert_F`). The scale is pinned at
:math:`\operatorname{tr}\Phi = \lVert U \rVert_F^2 = p`: gradients are projected onto
the tangent space of that sphere, clipped, and :math:`U` is rescaled after each step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from skdict._array import get_namespace
from skdict._guards import DivergenceGuard
from skdict._progress import EpochProgress
from skdict.ops.adam import Adam
from skdict.ops.schedule import learning_rate_factor
from skdict.triplets._comparisons import contrasts_from_factor

#: Learning-rate schedule: a short linear warmup, then a linear decay over the second half.
_WARMUP_FRACTION = 0.02
_DECAY_FRACTION = 0.5


def lowrank_objective(U, A, B, inverse_scale, labels, *, margin, alpha):
    r"""The objective :math:`J(U)` and its gradient :math:`\partial J / \partial U` (hand-written).

    With :math:`g_i = \partial \ell_i / \partial s_i` (:math:`2 s_i` for an equality,
    :math:`-y_i [m - y_i s_i > 0]` for a labelled triplet) and :math:`c_i = g_i / (n w_i)`,

    .. math::

        \frac{\partial J}{\partial U} = 2 \big( B^\top \operatorname{diag}(c) B U
        - A^\top \operatorname{diag}(c) A U \big) + \frac{4 \alpha}{p} U U^\top U.

    Parameters
    ----------
    U : array of shape (n_features, rank)
    A, B : arrays of shape (n_triplets, n_features)
        Differences :math:`x - y` and :math:`x - z`.
    inverse_scale : array of shape (n_triplets,)
        :math:`1 / w_i` (0 for a triplet with :math:`x = y = z`).
    labels : array of shape (n_triplets,)
        Values in {-1, 0, +1}.
    margin, alpha : float

    Returns
    -------
    loss : float
    grad : array of shape (n_features, rank)
    """
    xp = get_namespace(U, A, B)
    n, p = A.shape
    s, AU, BU = contrasts_from_factor(A, B, inverse_scale, U)
    equality = labels == 0
    slack = margin - labels * s
    violated = ~equality & (slack > 0)
    losses = xp.where(equality, s * s, xp.where(violated, slack, 0))
    dloss = xp.where(equality, 2 * s, -labels * violated)
    gram = U.T @ U
    loss = float(xp.sum(losses)) / n + alpha / p * float(xp.sum(gram * gram))
    weights = (dloss * inverse_scale / n)[:, None]
    grad = 2 * (B.T @ (weights * BU) - A.T @ (weights * AU)) + (4 * alpha / p) * (U @ gram)
    return loss, grad.astype(U.dtype, copy=False)


def lowrank_settings(params):
    """The entries of ``params`` (e.g. an estimator's ``get_params()``) that :class:`LowRankSolver` takes."""
    return {field.name: params[field.name] for field in fields(LowRankSolver) if field.name in params}


def _pin_scale(U, trace):
    """Rescale ``U`` in place so that :math:`\\lVert U \\rVert_F^2 = ` ``trace``; returns whether its norm was finite and nonzero."""
    xp = get_namespace(U)
    squared_norm = float(xp.sum(U * U))
    if not 0 < squared_norm < math.inf:
        return False
    U *= math.sqrt(trace / squared_norm)
    return True


@dataclass(frozen=True)
class LowRankSolver:
    r"""Minibatch Adam on :math:`J(U)`; one :meth:`solve` call per fit.

    Parameters
    ----------
    rank : int
        Columns of :math:`U`.
    alpha, margin : float
        See :func:`lowrank_objective`.
    learning_rate : float
        Adam's base step; the schedule warms up over the first 2 % of the steps
        and decays linearly over the second half.
    batch_size, max_iter : int
        Triplets per step and the most epochs.
    tol : float
        Early stop when the epoch's mean loss has not dropped below
        ``(1 - tol)`` times the best one for ``n_iter_no_change`` epochs.
    n_iter_no_change : int
    max_grad_norm : float or None
        Clip the (tangent) gradient to this Frobenius norm.
    verbose : int
    """

    rank: int
    alpha: float
    margin: float
    learning_rate: float
    batch_size: int
    max_iter: int
    tol: float
    n_iter_no_change: int
    max_grad_norm: float | None
    verbose: int

    def initial_factor(self, n_features, dtype, xp, rng):
        """Gaussian :math:`U` of shape (n_features, rank), rescaled to :math:`\\lVert U \\rVert_F^2 = p`."""
        U = xp.asarray(rng.standard_normal((n_features, self.rank)), dtype=dtype)
        _pin_scale(U, n_features)
        return U

    def _step(self, U, adam, grad, rate, guard, where):
        """Tangent projection, clipping, one Adam step and the scale pin, in place.

        A non-finite gradient, or a step that overflows (or zeroes) :math:`\\lVert U \\rVert_F^2`,
        is a divergence: ``guard`` restores the last sane :math:`U` and raises.
        """
        xp = get_namespace(U)
        p = U.shape[0]
        grad -= (float(xp.sum(grad * U)) / p) * U  # the pinned sphere has radius sqrt(p)
        norm = math.sqrt(float(xp.sum(grad * grad)))
        if not math.isfinite(norm):
            guard.fail(where, "the gradient became non-finite")
        if self.max_grad_norm is not None and norm > self.max_grad_norm:
            grad *= self.max_grad_norm / norm
        adam.step({"U": U}, {"U": grad}, {"U": rate})
        if not _pin_scale(U, p):
            guard.fail(where, f"the step made the factor's squared norm {float(xp.sum(U * U)):g}")

    def solve(self, A, B, inverse_scale, labels, U, rng, *, estimator=None):
        """Fit ``U`` in place from its initial value; return ``(U, n_iter, losses)``.

        ``losses`` holds the mean minibatch objective of every epoch. Every minibatch
        loss is checked by a :class:`~skdict._guards.DivergenceGuard` (against 100x the
        first one), with :math:`U` checkpointed at every epoch start.

        Raises
        ------
        skdict.exceptions.TrainingDivergedError
            With ``U`` restored in place to its last checkpoint whose loss was sane;
            ``estimator`` (default: this solver) is named in the message.
        """
        xp = get_namespace(A, B, U)
        n = A.shape[0]
        batch = min(self.batch_size, n)
        steps_per_epoch = -(-n // batch)
        total_steps = steps_per_epoch * self.max_iter
        adam = Adam({"U": U})
        progress = EpochProgress(self.max_iter, enabled=bool(self.verbose), description="TripletFeatureLearner")
        guard = DivergenceGuard(
            {"U": U}, estimator=self if estimator is None else estimator,
            fix=f"Lower learning_rate (now {self.learning_rate:g}) or set max_grad_norm (now {self.max_grad_norm}).",
        )
        losses, best, stale, step = [], math.inf, 0, 0
        for epoch in range(1, self.max_iter + 1):
            guard.checkpoint()
            order = xp.asarray(rng.permutation(n))
            total = 0.0
            for start in range(0, n, batch):
                idx = order[start : start + batch]
                where = f"epoch {epoch}, step {step + 1}"
                with np.errstate(over="ignore", invalid="ignore"):  # the guard reports what did not stay finite
                    loss, grad = lowrank_objective(
                        U, A[idx], B[idx], inverse_scale[idx], labels[idx], margin=self.margin, alpha=self.alpha
                    )
                    guard.check(loss, where)
                    factor = learning_rate_factor(
                        step, total_steps, warmup_fraction=_WARMUP_FRACTION, decay_fraction=_DECAY_FRACTION
                    )
                    self._step(U, adam, grad, self.learning_rate * factor, guard, where)
                total += loss * idx.shape[0]
                step += 1
            losses.append(total / n)
            progress.update({"loss": losses[-1]})
            if losses[-1] < best * (1 - self.tol):
                best, stale = losses[-1], 0
            else:
                stale += 1
                if stale >= self.n_iter_no_change:
                    break
        progress.close()
        return U, len(losses), losses
