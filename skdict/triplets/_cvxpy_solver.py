r"""The exact solver: a semidefinite program over the feature matrix Φ, solved by cvxpy.

.. math::

    \min_{\Phi \succeq 0,\ \xi \ge 0} \ \frac{1}{n} \sum_{i \in I} \xi_i + \frac{\alpha}{p} \lVert \Phi \rVert_F^2
    \quad \text{s.t.} \quad \operatorname{tr} \Phi = p, \quad
    s_i(\Phi) = 0 \ (i \in E), \quad y_i\, s_i(\Phi) \ge m - \xi_i \ (i \in I),

with :math:`s_i` the contrasts of :mod:`skdict.triplets._comparisons`, :math:`E` the
equalities, :math:`I` the labelled triplets, :math:`m` the margin and :math:`n` the
number of triplets. The trace pin fixes the free scale of Φ (feedback only ever
determines Φ up to a positive factor); the ridge term makes the minimiser unique.

The equalities are linear: before solving they are replaced by an orthonormal
basis of their span (a thin SVD of the stacked :math:`\operatorname{vec}(b b^\top - a a^\top) / w`),
which drops repeated and redundant feedback and keeps the program small.
The program is solved by CLARABEL, the interior-point solver that ships with
cvxpy, at its default tolerances (gap and feasibility 1e-8).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from skdict._optional import import_optional, optional_module
from skdict.triplets._comparisons import comparison_rows

#: Singular values below this fraction of the largest one are rounding noise, not equalities.
EQUALITY_RANK_TOL = 1e-9

#: Constraint violation (relative to tr Φ) up to which a low-accuracy status of the solver is accepted silently.
FEASIBILITY_TOL = 1e-7


def _constraint_violation(Phi, equalities):
    """Largest violation of the equalities, of PSD-ness and of the trace pin, relative to tr Φ = p."""
    p = Phi.shape[0]
    violations = [abs(np.trace(Phi) - p), max(0.0, -np.linalg.eigvalsh(Phi)[0])]
    if equalities.shape[0]:
        violations.append(np.abs(equalities @ Phi.reshape(-1)).max())
    return max(violations) / p


def import_cvxpy():
    """Return the :mod:`cvxpy` module, or raise an ImportError that names the extra."""
    return import_optional("cvxpy", extra="exact", needed_for="solver='cvxpy'", alternative="or use solver='lowrank'")


def cvxpy_available():
    """Whether cvxpy can be imported."""
    return optional_module("cvxpy") is not None


def equality_basis(rows):
    """Orthonormal rows spanning ``rows`` (up to :data:`EQUALITY_RANK_TOL`), or an empty (0, d) array."""
    if rows.shape[0] == 0:
        return rows
    _, singular_values, Vt = np.linalg.svd(rows, full_matrices=False)
    keep = singular_values > EQUALITY_RANK_TOL * singular_values[0] if singular_values[0] > 0 else singular_values > 0
    return Vt[keep]


class SDPSolver:
    r"""Solve the SDP above for Φ; one :meth:`solve` call per fit.

    Parameters
    ----------
    alpha : float
        Weight :math:`\alpha` of the ridge term :math:`\alpha \lVert \Phi \rVert_F^2 / p`.
    margin : float
        Margin :math:`m` of the labelled triplets, in contrast units under :math:`\operatorname{tr}\Phi = p`.
    """

    def __init__(self, *, alpha, margin):
        self.alpha = alpha
        self.margin = margin

    def solve(self, A, B, inverse_scale, labels):
        """Return ``(Phi, n_iter)``: the optimal Φ (float64, trace p) and the solver's iteration count.

        Parameters
        ----------
        A, B : ndarray of shape (n_triplets, n_features)
            Differences :math:`x - y` and :math:`x - z`.
        inverse_scale : ndarray of shape (n_triplets,)
        labels : ndarray of shape (n_triplets,)
            Values in {-1, 0, +1}.
        """
        cp = import_cvxpy()
        n, p = A.shape
        informative = inverse_scale > 0  # x = y = z says nothing about Φ
        rows = comparison_rows(A, B, inverse_scale)[informative]
        labels = labels[informative]
        equalities = equality_basis(rows[labels == 0])
        if equalities.shape[0] >= p * (p + 1) // 2:
            raise ValueError(
                f"The equality triplets span all {p * (p + 1) // 2} directions of symmetric {p}x{p} matrices, "
                "so only Φ = 0 satisfies them exactly: the equalities are inconsistent (noisy feedback). "
                "Use solver='lowrank', which fits them in the least-squares sense."
            )
        Phi = cp.Variable((p, p), PSD=True)
        vec_phi = cp.reshape(Phi, (p * p,), order="F")  # the rows are symmetric, so the order is immaterial
        constraints = [cp.trace(Phi) == p]
        if equalities.shape[0]:
            constraints.append(equalities @ vec_phi == 0)
        objective = self.alpha / p * cp.sum_squares(Phi)
        labelled = labels != 0
        if np.any(labelled):
            hinge = cp.pos(self.margin - cp.multiply(labels[labelled], rows[labelled] @ vec_phi))
            objective = objective + cp.sum(hinge) / n
        problem = cp.Problem(cp.Minimize(objective), constraints)
        with warnings.catch_warnings():
            # cvxpy warns on every low-accuracy status; the solution is checked below instead.
            warnings.filterwarnings("ignore", message="Solution may be inaccurate", category=UserWarning)
            try:
                problem.solve(solver=cp.CLARABEL)
            except cp.error.SolverError as exc:
                raise ValueError(
                    f"CLARABEL could not solve the triplet SDP ({exc}). If the equalities come from noisy "
                    "feedback, use solver='lowrank'."
                ) from exc
        if problem.status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
            raise ValueError(
                "No PSD Φ with trace p satisfies the equality triplets: they are inconsistent (noisy feedback, "
                "or constraints that force Φ to 0). Use solver='lowrank', which fits them in the least-squares sense."
            )
        if problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            raise ValueError(f"CLARABEL stopped with status {problem.status!r} on the triplet SDP.")
        value = np.asarray(Phi.value, dtype=np.float64)
        value = (value + value.T) / 2
        if problem.status == cp.OPTIMAL_INACCURATE:
            # Exact recovery leaves a single feasible point on the boundary of the PSD cone (no interior),
            # where interior-point methods rarely certify full accuracy; what matters is checked directly.
            violation = _constraint_violation(value, equalities)
            if violation > FEASIBILITY_TOL:
                warnings.warn(
                    "CLARABEL reached only a low-accuracy solution of the triplet SDP (constraint violation "
                    f"{violation:.2g} relative to tr Φ); the feature matrix may be imprecise. Deduplicate or "
                    "rescale the triplets, or use solver='lowrank'.",
                    ConvergenceWarning,
                    stacklevel=3,
                )
        n_iter = problem.solver_stats.num_iters if problem.solver_stats is not None else 0
        return value, int(n_iter or 0)
