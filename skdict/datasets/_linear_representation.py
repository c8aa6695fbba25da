"""The Linear Representation Bench: sparse codes over known, nearly orthogonal features.

Each sample is a sparse nonnegative combination of ground-truth features,
:math:`x = \\sum_i c_i f_i`, so a dictionary learner can be scored on whether
it recovers the :math:`f_i` (see :func:`skdict.metrics.gt_recovery`).
"""

from __future__ import annotations

import math
from numbers import Integral, Real

from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params

from skdict._array import get_namespace
from skdict.metrics._dictionary import _unit_rows
from skdict.ops.gram import gram_matrix

# The hinge pushes |G_ij| below (1 - _HINGE_MARGIN) * mu, so the descent crosses mu
# in a few steps instead of creeping up to it while renormalisation pushes back.
_HINGE_MARGIN = 0.05
# Bound on the infinity norm of the step eta * R (R the hinge residual), which keeps
# the descent stable when an atom violates the target with many others at once.
_MAX_STEP = 1.0


def _welch_bound(n_atoms, n_dims):
    r"""Welch lower bound :math:`\sqrt{(n-d)/(d(n-1))}` on the coherence of n unit vectors in R^d (0 if n ≤ d)."""
    if n_atoms <= n_dims:
        return 0.0
    return math.sqrt((n_atoms - n_dims) / (n_dims * (n_atoms - 1)))


def _unreachable(n_atoms, n_dims, max_coherence, detail):
    """The ValueError for a coherence target that the descent did not or cannot reach."""
    welch = (
        f" The Welch bound sqrt((n - d) / (d (n - 1))) = {_welch_bound(n_atoms, n_dims):.4g} is a hard floor, "
        "and the descent usually stops somewhat above it."
        if n_atoms > n_dims
        else ""
    )
    return ValueError(
        f"max_coherence={max_coherence} is not reachable for {n_atoms} unit features in {n_dims} dimensions: "
        f"{detail}{welch} Raise max_coherence, raise the number of dimensions, lower n_features, or raise max_iter."
    )


def _initial_rows(n_atoms, n_dims, rng):
    """Gaussian unit rows, or random orthonormal rows (coherence 0) when n_atoms ≤ n_dims."""
    gaussian = rng.standard_normal((n_dims, n_atoms) if n_atoms <= n_dims else (n_atoms, n_dims))
    if n_atoms > n_dims:
        return _unit_rows(gaussian)
    xp = get_namespace(gaussian)
    Q, R = xp.linalg.qr(gaussian)
    signs = xp.where(xp.diagonal(R) < 0, -1.0, 1.0)
    return (Q * signs).T.copy()


def _incoherent_rows(F, max_coherence, max_iter):
    r"""Projected gradient descent from unit rows ``F`` to rows with coherence :math:`\le \mu`.

    With :math:`G = F F^\top` (diagonal zeroed) the loss is the hinge
    :math:`L = \sum_{i \ne j} \max(0, |G_{ij}| - \mu')^2`, :math:`\mu' = (1 - 0.05)\mu`,
    whose gradient is :math:`4 R F` with :math:`R_{ij} = \operatorname{sign}(G_{ij})
    \max(0, |G_{ij}| - \mu')`. Each step is :math:`F \leftarrow F - \eta R F` with
    :math:`\eta = \min(1, 1 / \lVert R \rVert_\infty)`, followed by the projection
    back onto the sphere (rows renormalised). Stops as soon as
    :math:`\max_{i \ne j} |G_{ij}| \le \mu`.

    Returns
    -------
    F : array of shape (n_atoms, n_dims)
        Unit rows with mutual coherence at most ``max_coherence``.

    Raises
    ------
    ValueError
        When ``max_iter`` steps do not reach ``max_coherence``.
    """
    xp = get_namespace(F)
    n_atoms, n_dims = F.shape
    hinge = (1 - _HINGE_MARGIN) * max_coherence
    diagonal = xp.arange(n_atoms)
    best = math.inf
    for _ in range(max_iter + 1):
        G = gram_matrix(F)
        G[diagonal, diagonal] = 0
        coherence = max(float(xp.max(G)), -float(xp.min(G)))
        best = min(best, coherence)
        if coherence <= max_coherence:
            return F
        R = G - xp.clip(G, -hinge, hinge)
        row_mass = float(xp.max(xp.sum(xp.abs(R), axis=1)))
        F = _unit_rows(F - min(1.0, _MAX_STEP / row_mass) * (R @ F))
    raise _unreachable(
        n_atoms, n_dims, max_coherence, f"after max_iter={max_iter} steps the coherence is still {best:.4g}."
    )


def _make_features(n_atoms, n_dims, max_coherence, max_iter, rng):
    """Random unit rows (n_atoms, n_dims) with pairwise |cos| ≤ max_coherence."""
    if max_coherence < _welch_bound(n_atoms, n_dims):
        raise _unreachable(n_atoms, n_dims, max_coherence, "it lies below the Welch bound.")
    return _incoherent_rows(_initial_rows(n_atoms, n_dims, rng), max_coherence, max_iter)


def _make_codes(n_samples, n_features, sparsity, c_min, beta, rng):
    r"""Codes :math:`c_{ij} = m_{ij}(c_\min + e_{ij})`, :math:`m \sim \mathrm{Bernoulli}(1-s)`, :math:`e \sim \mathrm{Exp}(\beta)`."""
    active = rng.random_sample((n_samples, n_features)) < 1 - sparsity
    codes = active.astype(float)
    codes[active] = c_min + rng.exponential(scale=beta, size=int(active.sum()))
    return codes


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "n_features": [Interval(Integral, 1, None, closed="left")],
        "n_dims": [Interval(Integral, 1, None, closed="left")],
        "sparsity": [Interval(Real, 0, 1, closed="left")],
        "max_coherence": [Interval(Real, 0, 1, closed="right")],
        "c_min": [Interval(Real, 0, None, closed="left")],
        "beta": [Interval(Real, 0, None, closed="neither")],
        "target_dims": [Interval(Integral, 1, None, closed="left"), None],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_linear_representation_bench(
    n_samples=10_000,
    n_features=1000,
    n_dims=768,
    *,
    sparsity=0.99,
    max_coherence=0.1,
    c_min=0.1,
    beta=1.0,
    target_dims=None,
    max_iter=500,
    random_state=None,
):
    r"""Generate sparse nonnegative combinations of known, nearly orthogonal features.

    The ground-truth features :math:`f_1, \dots, f_n \in \mathbb{R}^d` are unit
    rows with mutual coherence :math:`\max_{i \ne j} |\langle f_i, f_j \rangle| \le \mu`,
    found by projected gradient descent on the hinge
    :math:`\sum_{i \ne j} \max(0, |G_{ij}| - 0.95\mu)^2` of the off-diagonal Gram matrix
    :math:`G = F F^\top` (the 5% margin makes the descent cross :math:`\mu` quickly),
    renormalising the rows after each step, starting from Gaussian rows (from random
    orthonormal rows when :math:`n \le d`) and stopping as soon as
    :math:`\max_{i \ne j} |G_{ij}| \le \mu`. Each sample
    is :math:`x = \sum_i c_i f_i` with independent codes

    .. math::

        c_i = m_i \, (c_\min + e_i), \qquad
        m_i \sim \mathrm{Bernoulli}(1 - s), \qquad
        e_i \sim \mathrm{Exponential}(\text{scale} = \beta),

    so on average :math:`(1 - s)\, n` features are active per sample, each with
    magnitude at least :math:`c_\min`. With ``target_dims`` = :math:`m`, a second,
    independent set of target features :math:`g_i \in \mathbb{R}^m` is built the
    same way and :math:`y = \sum_i c_i g_i` gives a transcoder target that shares
    the codes of :math:`x`.

    Parameters
    ----------
    n_samples : int, default=10_000
        Number of samples.
    n_features : int, default=1000
        Number :math:`n` of ground-truth features (latents).
    n_dims : int, default=768
        Dimension :math:`d` of the samples.
    sparsity : float in [0, 1), default=0.99
        Probability :math:`s` that a code entry is zero.
    max_coherence : float in (0, 1], default=0.1
        Bound :math:`\mu` on the absolute cosine between two features (exact
        orthogonality, 0, is out of reach in floating point). It must be
        at least the Welch bound :math:`\sqrt{(n - d) / (d (n - 1))}` when
        :math:`n > d`, and in practice somewhat above it.
    c_min : float >= 0, default=0.1
        Smallest magnitude :math:`c_\min` of an active code.
    beta : float > 0, default=1.0
        Scale :math:`\beta` (the mean) of the exponential part of an active code.
    target_dims : int or None, default=None
        Dimension :math:`m` of the transcoder target; ``None`` returns no target.
    max_iter : int, default=500
        Most descent steps per feature set before giving up.
    random_state : int, RandomState instance or None, default=None
        Seed of every random draw; the same seed gives identical arrays.

    Returns
    -------
    X : ndarray of shape (n_samples, n_dims)
        Samples :math:`X = C F`.
    Y : ndarray of shape (n_samples, target_dims)
        Targets :math:`Y = C G`; only returned when ``target_dims`` is set.
    features : ndarray of shape (n_features, n_dims)
        Ground-truth features :math:`F`, unit rows.
    target_features : ndarray of shape (n_features, target_dims)
        Target features :math:`G`, unit rows; only returned when ``target_dims`` is set.
    codes : ndarray of shape (n_samples, n_features)
        Dense nonnegative codes :math:`C`.

    All arrays are float64. Without ``target_dims`` the function returns
    ``(X, features, codes)``, with it ``(X, Y, features, target_features, codes)``.

    Raises
    ------
    ValueError
        When a parameter is out of range, or when ``max_coherence`` is not reached
        for these sizes (below the Welch bound, or not reached in ``max_iter`` steps).
    """
    rng = check_random_state(random_state)
    features = _make_features(n_features, n_dims, max_coherence, max_iter, rng)
    if target_dims is not None:
        target_features = _make_features(n_features, target_dims, max_coherence, max_iter, rng)
    codes = _make_codes(n_samples, n_features, sparsity, c_min, beta, rng)
    X = codes @ features
    if target_dims is None:
        return X, features, codes
    return X, codes @ target_features, features, target_features, codes
