r"""Compressed-sensing data with a compositional out-of-distribution split.

Samples are :math:`y = A z` with a random unit-column sensing matrix :math:`A`
and :math:`k`-sparse nonnegative codes :math:`z`. During training latent 0 is
seen only next to latents of the *low* half (or never); the OOD split combines
it with latents of the *high* half. Every latent, and every pair among latents
1..n-1, is seen in training, so an encoder that learned to *infer* codes (sparse
coding with the true :math:`A`) generalises to the new combinations, while an
amortised encoder may not.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from skdict.ops.atoms import normalize_rows


def measurement_dims(n_latents, k):
    r"""Number of measurements :math:`m = \max(k + 1, \lceil 2k \ln(n/k) \rceil)`.

    The compressed-sensing rate at which :math:`k`-sparse codes of :math:`n`
    latents are recoverable from :math:`m` random measurements.
    """
    return max(k + 1, math.ceil(2 * k * math.log(n_latents / k)))


def _sample_subsets(rng, n_rows, pool, size):
    """Per row, ``size`` distinct entries of ``pool`` drawn uniformly without replacement."""
    pool = np.asarray(pool)
    keys = rng.random_sample((n_rows, pool.shape[0]))
    return pool[np.argpartition(keys, size - 1, axis=1)[:, :size]]


def _codes_from_supports(supports, n_latents, c_min, beta, rng):
    """Dense codes with value :math:`c_\\min + \\mathrm{Exp}(\\beta)` on each row's support."""
    n_rows, k = supports.shape
    codes = np.zeros((n_rows, n_latents))
    codes[np.repeat(np.arange(n_rows), k), supports.ravel()] = c_min + rng.exponential(scale=beta, size=n_rows * k)
    return codes


def _check_magnitudes(c_min, beta):
    """Raise a ValueError when every active magnitude would be 0 (c_min = beta = 0)."""
    if c_min == 0 and beta == 0:
        raise ValueError(
            "c_min=0 and beta=0 make every active latent 0 (magnitudes are c_min + Exponential(beta)); "
            "raise c_min or beta."
        )


def _train_supports(rng, n_samples, n_latents, k, low, latent0_in_train):
    """Supports of the training split: latent 0 with k - 1 low-half latents, or k latents from 1..n-1."""
    others = np.arange(1, n_latents)
    with_latent0 = np.zeros(n_samples, dtype=bool)
    if latent0_in_train == "low_half":
        # Latent 0 is as frequent as under uniform k-subsets of all n latents.
        with_latent0 = rng.random_sample(n_samples) < k / n_latents
    supports = np.empty((n_samples, k), dtype=np.intp)
    n_with = int(with_latent0.sum())
    supports[with_latent0, 0] = 0
    supports[with_latent0, 1:] = _sample_subsets(rng, n_with, low, k - 1)
    supports[~with_latent0] = _sample_subsets(rng, n_samples - n_with, others, k)
    return supports


@validate_params(
    {
        "n_latents": [Interval(Integral, 3, None, closed="left")],
        "k": [Interval(Integral, 2, None, closed="left")],
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "n_ood_samples": [Interval(Integral, 1, None, closed="left"), None],
        "n_dims": [Interval(Integral, 1, None, closed="left"), None],
        "latent0_in_train": [StrOptions({"low_half", "omit"})],
        "c_min": [Interval(Real, 0, None, closed="left")],
        "beta": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_compositional_ood(
    n_latents=16,
    k=3,
    n_samples=10_000,
    *,
    n_ood_samples=None,
    n_dims=None,
    latent0_in_train="low_half",
    c_min=0.1,
    beta=1.0,
    random_state=None,
):
    r"""Sparse codes seen through a random sensing matrix, with a compositional OOD split.

    Each sample is :math:`y = A z` with :math:`A \in \mathbb{R}^{m \times n}`
    Gaussian with unit columns, :math:`m = \max(k + 1, \lceil 2k \ln(n/k) \rceil)`
    (unless ``n_dims`` is given), and a code :math:`z \in \mathbb{R}^n_{\ge 0}`
    with exactly :math:`k` nonzeros, each :math:`c_\min + \mathrm{Exponential}(\beta)`.
    The latents :math:`1, \dots, n-1` are split into the low half
    :math:`L = \{1, \dots, \lfloor (n-1)/2 \rfloor\}` and the high half
    :math:`H = \{\lfloor (n-1)/2 \rfloor + 1, \dots, n-1\}`.

    * Training split: with probability :math:`k/n` (latent 0's frequency under
      uniform supports) the support is :math:`\{0\}` plus :math:`k-1` latents
      drawn uniformly from :math:`L`; otherwise it is :math:`k` latents drawn
      uniformly from :math:`\{1, \dots, n-1\}`. With
      ``latent0_in_train="omit"`` latent 0 never appears in training.
    * OOD split: the support is :math:`\{0\}` plus :math:`k-1` latents drawn
      uniformly from :math:`H`, combinations never seen in training.

    Parameters
    ----------
    n_latents : int >= 3, default=16
        Number :math:`n` of latents; at least :math:`2k - 1` so that each half
        holds :math:`k - 1` latents.
    k : int >= 2, default=3
        Number of active latents per sample.
    n_samples : int, default=10_000
        Number of training samples.
    n_ood_samples : int or None, default=None
        Number of OOD samples; ``None`` means ``n_samples``.
    n_dims : int or None, default=None
        Number :math:`m` of measurements; ``None`` uses the formula above.
    latent0_in_train : {"low_half", "omit"}, default="low_half"
        Whether latent 0 appears in training (only next to low-half latents) or not at all.
    c_min : float >= 0, default=0.1
        Smallest magnitude of an active latent.
    beta : float >= 0, default=1.0
        Scale (mean) of the exponential part of an active latent; 0 gives the constant ``c_min``.
    random_state : int, RandomState instance or None, default=None
        Seed of every random draw; the same seed gives identical arrays.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch` with fields

        X_train : ndarray of shape (n_samples, n_dims)
            Training samples :math:`Y = Z A^\top` (rows :math:`y = A z`).
        codes_train : ndarray of shape (n_samples, n_latents)
            Their true codes :math:`Z`.
        X_ood : ndarray of shape (n_ood_samples, n_dims)
            OOD samples.
        codes_ood : ndarray of shape (n_ood_samples, n_latents)
            Their true codes; latents of :math:`L` never vary there, so
            :func:`skdict.metrics.mcc` leaves them out.
        A : ndarray of shape (n_dims, n_latents)
            The sensing matrix, unit columns.
        features : ndarray of shape (n_latents, n_dims)
            :math:`A^\top`: the true atoms as rows, the layout of ``components_``
            and of :func:`skdict.metrics.gt_recovery`.
        low_latents, high_latents : int ndarrays
            The indices of :math:`L` and :math:`H`.

    All arrays are NumPy (move them with :func:`skdict._array.to_device`);
    floating arrays are float64.
    """
    if n_latents < 2 * k - 1:
        raise ValueError(
            f"n_latents={n_latents} is too small for k={k}: each half of latents 1..n_latents-1 must hold "
            f"k - 1 = {k - 1} latents, so n_latents must be at least 2k - 1 = {2 * k - 1}. Raise n_latents or lower k."
        )
    _check_magnitudes(c_min, beta)
    rng = check_random_state(random_state)
    n_ood_samples = n_samples if n_ood_samples is None else n_ood_samples
    n_dims = measurement_dims(n_latents, k) if n_dims is None else n_dims
    n_low = (n_latents - 1) // 2
    low, high = np.arange(1, n_low + 1), np.arange(n_low + 1, n_latents)

    features = normalize_rows(rng.standard_normal((n_latents, n_dims)))
    train_supports = _train_supports(rng, n_samples, n_latents, k, low, latent0_in_train)
    ood_supports = np.column_stack(
        [np.zeros(n_ood_samples, dtype=np.intp), _sample_subsets(rng, n_ood_samples, high, k - 1)]
    )
    codes_train = _codes_from_supports(train_supports, n_latents, c_min, beta, rng)
    codes_ood = _codes_from_supports(ood_supports, n_latents, c_min, beta, rng)
    return Bunch(
        X_train=codes_train @ features,
        codes_train=codes_train,
        X_ood=codes_ood @ features,
        codes_ood=codes_ood,
        A=features.T.copy(),
        features=features,
        low_latents=low,
        high_latents=high,
    )
