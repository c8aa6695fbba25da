r"""Hierarchical features: children that fire only with their parent (the setting of feature absorption).

A parent feature (say "animal") is active on a fraction of samples; each of
its children ("dog", "cat", ...) can only be active when the parent is. A
sparse dictionary learner rewarded for few active latents is tempted to let a
child latent *absorb* the parent's direction and to switch the parent latent
off whenever a child fires (Chanin et al., 2024, "A is for Absorption");
:func:`skdict.metrics.absorption_score` measures how often that happens.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, validate_params

from skdict.datasets._compositional_ood import _check_magnitudes
from skdict.datasets._linear_representation import _make_features


def _hierarchy(n_parents, children_per_parent):
    """``parents``, ``children`` (n_parents, children_per_parent) and ``parent_of`` (-1 for parents)."""
    parents = np.arange(n_parents)
    children = n_parents + np.arange(n_parents * children_per_parent).reshape(n_parents, children_per_parent)
    parent_of = np.concatenate([np.full(n_parents, -1), np.repeat(parents, children_per_parent)])
    return parents, children, parent_of


def _hierarchical_mask(n_samples, children, parent_rate, child_rate, exclusive_children, rng):
    """Boolean activity (n_samples, n_features): parents Bernoulli(parent_rate), children only under their parent."""
    n_parents, children_per_parent = children.shape
    parent_on = rng.random_sample((n_samples, n_parents)) < parent_rate
    if exclusive_children:
        # One child, uniform among the parent's children, with probability child_rate.
        some_child = rng.random_sample((n_samples, n_parents)) < child_rate
        which = rng.randint(children_per_parent, size=(n_samples, n_parents))
        child_on = (np.arange(children_per_parent) == which[:, :, None]) & some_child[:, :, None]
    else:
        child_on = rng.random_sample((n_samples, n_parents, children_per_parent)) < child_rate
    child_on &= parent_on[:, :, None]
    return np.concatenate([parent_on, child_on.reshape(n_samples, -1)], axis=1)


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "n_parents": [Interval(Integral, 1, None, closed="left")],
        "children_per_parent": [Interval(Integral, 1, None, closed="left")],
        "n_dims": [Interval(Integral, 1, None, closed="left")],
        "parent_rate": [Interval(Real, 0, 1, closed="both")],
        "child_rate": [Interval(Real, 0, 1, closed="both")],
        "exclusive_children": ["boolean"],
        "max_coherence": [Interval(Real, 0, 1, closed="right")],
        "c_min": [Interval(Real, 0, None, closed="left")],
        "beta": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_hierarchical_features(
    n_samples=10_000,
    n_parents=8,
    children_per_parent=4,
    n_dims=64,
    *,
    parent_rate=0.1,
    child_rate=0.5,
    exclusive_children=True,
    max_coherence=0.1,
    c_min=1.0,
    beta=0.0,
    max_iter=500,
    random_state=None,
):
    r"""Sparse data over a two-level hierarchy of known features (parents and their children).

    There are :math:`P` parents and :math:`C` children per parent,
    :math:`n = P(1 + C)` features in all, ordered parents first (features
    :math:`0..P-1`), then the children of parent 0, of parent 1, and so on
    (child :math:`c` of parent :math:`p` is feature :math:`P + pC + c`). Each
    sample is :math:`x = \sum_i c_i f_i` with unit features :math:`f_i` of
    mutual coherence at most ``max_coherence`` (orthonormal when
    :math:`n \le d`; built as in :func:`~skdict.datasets.make_linear_representation_bench`), and

    * parent :math:`p` active with probability ``parent_rate``, independently;
    * given its parent active, with ``exclusive_children`` one child chosen
      uniformly is active with probability ``child_rate`` (children of one
      parent exclude each other, like "dog" and "cat"); otherwise each child is
      active independently with probability ``child_rate``;
    * a child is never active without its parent;
    * an active feature has magnitude :math:`c_\min + \mathrm{Exponential}(\beta)`
      (the constant :math:`c_\min` with the default :math:`\beta = 0`).

    Parameters
    ----------
    n_samples : int, default=10_000
    n_parents : int, default=8
        Number :math:`P` of parent features.
    children_per_parent : int, default=4
        Number :math:`C` of children of each parent.
    n_dims : int, default=64
        Dimension :math:`d` of the samples.
    parent_rate : float in [0, 1], default=0.1
        Probability that a parent is active.
    child_rate : float in [0, 1], default=0.5
        Probability, given its parent active, that a child fires (see above).
    exclusive_children : bool, default=True
        At most one child of a parent active at a time.
    max_coherence : float in (0, 1], default=0.1
        Bound on :math:`|\cos(f_i, f_j)|` when :math:`n > d`.
    c_min : float >= 0, default=1.0
        Smallest magnitude of an active feature.
    beta : float >= 0, default=0.0
        Scale (mean) of the exponential part of the magnitudes.
    max_iter : int, default=500
        Most descent steps to reach ``max_coherence``.
    random_state : int, RandomState instance or None, default=None
        Seed of every random draw.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch` with fields

        X : ndarray of shape (n_samples, n_dims)
            Samples :math:`X = C F`.
        features : ndarray of shape (n_features, n_dims)
            Unit feature rows :math:`F`, :math:`n_\text{features} = P(1 + C)`.
        codes : ndarray of shape (n_samples, n_features)
            Nonnegative codes :math:`C`.
        parent_of : int ndarray of shape (n_features,)
            Index of each feature's parent, -1 for the parents themselves (the
            ``parent_of`` argument of :func:`skdict.metrics.absorption_score`).
        parents : int ndarray of shape (n_parents,)
            Indices of the parent features.
        children : int ndarray of shape (n_parents, children_per_parent)
            ``children[p]``: indices of the children of parent ``p``.

    All arrays are NumPy; floating arrays are float64.
    """
    _check_magnitudes(c_min, beta)
    rng = check_random_state(random_state)
    parents, children, parent_of = _hierarchy(n_parents, children_per_parent)
    features = _make_features(parent_of.shape[0], n_dims, max_coherence, max_iter, rng)
    active = _hierarchical_mask(n_samples, children, parent_rate, child_rate, exclusive_children, rng)
    codes = np.zeros(active.shape)
    codes[active] = c_min + rng.exponential(scale=beta, size=int(active.sum()))
    return Bunch(
        X=codes @ features,
        features=features,
        codes=codes,
        parent_of=parent_of,
        parents=parents,
        children=children,
    )
