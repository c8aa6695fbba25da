"""First-order stationarity of an L1 dictionary (a ReLU-L1 SAE's decoder with its codes)."""

from __future__ import annotations

from sklearn.utils import Bunch

from skdict._array import get_namespace
from skdict.ops.atoms import normalize_rows


def stationarity_gaps(X, dictionary, codes, alpha, *, offset=None):
    """How far ``(dictionary, codes)`` is from a stationary point of the L1 objective.

    For :math:`\\tfrac12\\sum_n \\|x_n - b - z_n D\\|^2 + \\alpha \\sum_n \\|z_n\\|_1`
    with unit atoms :math:`d_i` and residuals :math:`r_n = x_n - b - z_n D`, a
    stationary point satisfies

    * the code conditions :math:`d_i^\\top r_n = \\alpha\\,\\mathrm{sign}(z_{in})`
      where :math:`z_{in} \\ne 0` and :math:`|d_i^\\top r_n| \\le \\alpha` elsewhere
      (the lasso's optimality conditions; for non-negative codes the second is
      :math:`d_i^\\top r_n \\le \\alpha`, which is what is reported when every
      code is :math:`\\ge 0`);
    * the atom condition :math:`\\sum_n z_{in} r_n \\parallel d_i`: the gradient
      with respect to a unit atom has no component along the sphere.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    dictionary : array of shape (n_components, n_features)
        Unit rows (``components_``).
    codes : array of shape (n_samples, n_components)
    alpha : float
    offset : array of shape (n_features,) or None
        :math:`b` (an SAE's ``decoder_bias_``); zero when ``None``.

    Returns
    -------
    Bunch with
        ``code_gap`` : mean :math:`|d_i^\\top r_n - \\alpha\\,\\mathrm{sign}(z_{in})|` over the active pairs, in units of alpha;
        ``off_support_violation`` : mean over the inactive pairs of the excess of
        :math:`d_i^\\top r_n` (its absolute value for signed codes) over :math:`\\alpha`, in units of alpha;
        ``atom_gaps`` : array (n_components,), the sine of the angle between
        :math:`\\sum_n z_{in} r_n` and :math:`d_i` (0 for an atom that is never used);
        ``atom_gap`` : the mean of ``atom_gaps`` over used atoms.
    """
    xp = get_namespace(X, dictionary, codes)
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0 to measure the L1 stationarity gaps (in units of alpha), got {alpha}.")
    centred = X if offset is None else X - offset
    residual = centred - codes @ dictionary
    correlation = residual @ dictionary.T
    active = codes != 0
    n_active = int(xp.sum(active))
    n_inactive = active.size - n_active
    signs = xp.sign(codes)
    code_gap = float(xp.sum(xp.abs(correlation - alpha * signs) * active)) / max(n_active, 1) / alpha
    signed = bool(xp.any(codes < 0))
    off = xp.abs(correlation) if signed else correlation
    excess = xp.maximum(off - alpha, 0) * (~active)
    off_support = float(xp.sum(excess)) / max(n_inactive, 1) / alpha

    pull = codes.T @ residual  # sum_n z_in r_n, shape (n_components, n_features)
    pull_norm = xp.sqrt(xp.sum(pull * pull, axis=1))
    unit = normalize_rows(dictionary, eps=0.0)
    tangent = pull - xp.sum(pull * unit, axis=1, keepdims=True) * unit  # no cancellation, unlike |p|^2 - (p.d)^2
    across = xp.sqrt(xp.sum(tangent * tangent, axis=1))
    used = pull_norm > 0
    atom_gaps = xp.where(used, across / xp.where(used, pull_norm, 1), 0)
    atom_gap = float(xp.sum(atom_gaps)) / max(int(xp.sum(used)), 1)
    return Bunch(code_gap=code_gap, off_support_violation=off_support, atom_gaps=atom_gaps, atom_gap=atom_gap)
