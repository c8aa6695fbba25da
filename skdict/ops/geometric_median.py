"""Geometric median: Weiszfeld's iteration with a Newton polish."""

from __future__ import annotations

from skdict._array import get_namespace
from skdict.ops.scaling import max_exponent


def geometric_median(X, *, max_iter=100, tol=1e-6):
    """Point minimising :math:`f(m) = \\sum_n \\|x_n - m\\|` over the rows of ``X``.

    Used to initialise the decoder bias :math:`b_{pre}` of an SAE (Bricken et
    al., 2023). Each iteration takes, from the current point :math:`m`:

    * a Newton step :math:`H p = -\\nabla f` with
      :math:`\\nabla f = -\\sum_n u_n`, :math:`u_n = (x_n - m)/\\|x_n - m\\|` and
      :math:`H = \\sum_n (I - u_n u_n^\\top)/\\|x_n - m\\|`, solved matrix-free by
      conjugate gradients (two matrix-vector products per CG step) and
      shortened by backtracking until :math:`f` decreases;
    * or, where :math:`H` is singular (collinear data) or the Newton step does
      not decrease :math:`f`, Weiszfeld's step with Vardi and Zhang's (2000)
      treatment of a point that coincides with data.

    Weiszfeld alone converges linearly, and slowly when the median lies close
    to a data point (the map's contraction rate tends to one), so a short
    Weiszfeld step does not mean the median is close; Newton's quadratic
    convergence makes the length of its last step a bound on the remaining
    error. A point :math:`m` that coincides with :math:`\\eta` data points is
    returned as soon as it satisfies the exact optimality condition
    :math:`\\|\\sum_{x_n \\neq m} u_n\\| \\le \\eta`.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        NumPy or CuPy; not modified.
    max_iter : int, default=100
        Largest number of (Newton or Weiszfeld) iterations.
    tol : float, default=1e-6
        Stop when a step is shorter than ``tol`` times the data's scale (the
        root-mean-square distance to the mean).

    Returns
    -------
    median : array of shape (n_features,), in ``X``'s dtype and namespace.
    """
    xp = get_namespace(X)
    # the median of 2^-e X is 2^-e times the median of X: solved where no square over- or underflows
    exponent = int(max_exponent(X))
    points = xp.ldexp(X.astype(xp.float64), -exponent)
    median = points.mean(axis=0)
    scale = float(xp.sqrt(xp.mean(xp.sum((points - median) ** 2, axis=1))))
    if scale == 0.0:
        return X[0].copy()
    snap = tol * scale
    for _ in range(max_iter):
        distances = xp.sqrt(xp.sum((points - median) ** 2, axis=1))
        nearest = int(xp.argmin(distances))
        if float(distances[nearest]) <= snap:
            # within tolerance of a data point: test it exactly, leave it by Vardi-Zhang if not optimal
            median = points[nearest].copy()
            distances = xp.sqrt(xp.sum((points - median) ** 2, axis=1))
        apart = distances > 0.0
        multiplicity = int(X.shape[0] - int(xp.sum(apart)))
        units = (points[apart] - median) / distances[apart, None]
        pull = units.sum(axis=0)  # minus the (sub)gradient of f
        pull_norm = float(xp.sqrt(xp.sum(pull**2)))
        if multiplicity and pull_norm <= multiplicity:
            break  # optimal at a data point (Vardi-Zhang condition)
        step = None
        if not multiplicity:
            step, full = _newton_step(xp, points, median, units, distances, pull, negligible=tol * scale)
        if step is None:
            step, full = _weiszfeld_step(xp, points[apart], distances[apart], median, pull_norm, multiplicity), True
        median = median + step
        if full and float(xp.sqrt(xp.sum(step**2))) <= tol * scale:
            break
    return xp.ldexp(median, exponent).astype(X.dtype, copy=False)


def _sum_of_distances(xp, points, m):
    return float(xp.sum(xp.sqrt(xp.sum((points - m) ** 2, axis=1))))


def _newton_step(xp, points, median, units, distances, pull, *, negligible, cg_iter=50, backtracks=30):
    """Damped Newton step and whether it was taken in full; (None, False) where it fails.

    Fails where the Hessian is singular along the gradient or no shortening of
    the step decreases ``f`` enough (Armijo's condition). A full step shorter
    than ``negligible`` is taken without the test: near the minimum the change
    in ``f`` is below its rounding error.
    """
    inverse = 1.0 / distances
    trace_weight = float(xp.sum(inverse))

    def hessian_times(v):
        return trace_weight * v - ((units @ v) * inverse) @ units

    step = _conjugate_gradient(xp, hessian_times, pull, trace_weight, cg_iter)
    if step is None:
        return None, False
    if float(xp.sqrt(xp.sum(step**2))) <= negligible:
        return step, True
    current = float(xp.sum(distances))
    slope = float(pull @ step)  # -(gradient . step) > 0 for a descent direction
    if slope <= 0.0:
        return None, False
    length = 1.0
    for _ in range(backtracks):
        if _sum_of_distances(xp, points, median + length * step) <= current - 1e-4 * length * slope:
            return length * step, length == 1.0
        length *= 0.5
    return None, False


def _conjugate_gradient(xp, operator, rhs, curvature_scale, max_iter, rtol=1e-12):
    """Solve ``operator(p) = rhs`` for a symmetric PSD operator; None on a singular direction."""
    solution = xp.zeros_like(rhs)
    residual = rhs.copy()
    direction = residual.copy()
    residual_sq = float(residual @ residual)
    target = rtol * residual_sq
    for _ in range(min(max_iter, rhs.shape[0])):
        image = operator(direction)
        curvature = float(direction @ image)
        if curvature <= 1e-12 * curvature_scale * float(direction @ direction):
            return None if not solution.any() else solution
        alpha = residual_sq / curvature
        solution = solution + alpha * direction
        residual = residual - alpha * image
        new_sq = float(residual @ residual)
        if new_sq <= target:
            break
        direction = residual + (new_sq / residual_sq) * direction
        residual_sq = new_sq
    return solution


def _weiszfeld_step(xp, points, distances, median, pull_norm, multiplicity):
    """Weiszfeld's step, Vardi-Zhang form: shrunk towards ``median`` if it is a data point."""
    weights = 1.0 / distances
    target = weights @ points / xp.sum(weights)
    if multiplicity:
        target = (1.0 - multiplicity / pull_norm) * target + (multiplicity / pull_norm) * median
    return target - median
