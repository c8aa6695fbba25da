r"""Feature absorption: a child latent that takes over its parent's direction (Chanin et al., 2024).

In "A is for Absorption" (Chanin et al., 2024) a parent feature (e.g. "starts
with S") is *absorbed* on a token when the SAE latents that track the parent
stay silent although the feature is present, while another active latent, one
tied to a more specific feature ("short"), still writes the parent's direction
into the reconstruction. Sparsity rewards this: one latent firing instead of two.

With ground truth (e.g. :func:`skdict.datasets.make_hierarchical_features`) the
test needs no probe: the parent's true direction :math:`f_p` plays the probe,
and the parent latent is the learned atom closest to it.
"""

from __future__ import annotations

from numbers import Real

import numpy as np

from skdict._array import get_namespace, to_numpy
from skdict.metrics._dictionary import _unit_dictionaries
from skdict.metrics._matching import _check_codes_pair
from skdict.metrics._validation import _check_matrix


def _check_parent_of(parent_of, n_true):
    """``parent_of`` as a NumPy int vector of length n_true with entries -1 or a parent index."""
    parent_of = np.asarray(to_numpy(parent_of))
    if parent_of.shape != (n_true,) or parent_of.dtype.kind not in "iu":
        raise ValueError(
            f"parent_of must be a 1-D integer array with one entry per true feature ({n_true}), -1 for features "
            f"without a parent; got {parent_of.dtype} array of shape {parent_of.shape}."
        )
    if ((parent_of < -1) | (parent_of >= n_true)).any() or (parent_of == np.arange(n_true)).any():
        raise ValueError(f"parent_of entries must be -1 or the index of another feature in [0, {n_true}).")
    return parent_of


def _check_shapes(true_codes, learned_codes, true_features, learned):
    if true_codes.shape[1] != true_features.shape[0] or learned_codes.shape[1] != learned.shape[0]:
        raise ValueError(
            "Each code matrix needs one column per atom of its dictionary; got "
            f"true_codes.shape={true_codes.shape}, true_features.shape={true_features.shape}, "
            f"learned_codes.shape={learned_codes.shape}, learned.shape={learned.shape}."
        )


def absorption_score(
    true_codes, learned_codes, true_features, learned, parent_of, *, projection_threshold=0.5, tol=0.0
):
    r"""Fraction of parent-with-child samples on which the parent is absorbed, averaged over parents.

    For each parent :math:`p` (a feature that some feature names as its parent):

    1. the parent latent is :math:`j_p = \arg\max_j \cos(f_p, \hat d_j)`, the
       learned atom pointing most along the true parent direction (signed: an
       atom pointing along :math:`-f_p` writes the opposite direction);
    2. the test samples are :math:`N_p = \{n : z_{np} > 0` and
       :math:`z_{nc} > 0` for some child :math:`c` of :math:`p\}`;
    3. sample :math:`n \in N_p` is *absorbed* when the parent latent is silent,
       :math:`|\hat z_{nj_p}| \le \mathrm{tol}`, while the other active latents
       still write at least ``projection_threshold`` of the parent along its direction,

       .. math::

           \sum_{j \ne j_p,\ |\hat z_{nj}| > \mathrm{tol}} \hat z_{nj}
           \langle \hat d_j, f_p \rangle \;\ge\; \tau\, z_{np}

       (:math:`\hat d_j` the learned atoms as used in the reconstruction,
       :math:`f_p` of unit norm, :math:`\tau` = ``projection_threshold``).

    The parent's absorption rate is :math:`|\{\text{absorbed}\}| / |N_p|`, and
    the score is its mean over the parents with :math:`N_p` non-empty. A silent
    parent latent whose direction no other latent carries is a plain miss, not
    absorption; this follows the paper's distinction between absorption and
    false negatives (its probe projection test), with the true direction as probe.

    Parameters
    ----------
    true_codes : array of shape (n_samples, n_true)
        Ground-truth codes :math:`z` (nonnegative; active means :math:`> 0`).
    learned_codes : array of shape (n_samples, n_learned)
        Learned codes :math:`\hat z` of the same samples, e.g. ``estimator.transform(X)``.
    true_features : array of shape (n_true, n_dims)
        True directions :math:`f_i` as rows (any norm; used after scaling to unit norm).
    learned : array of shape (n_learned, n_dims)
        Learned atoms :math:`\hat d_j` as rows, e.g. ``components_`` (their norms matter).
    parent_of : int array of shape (n_true,)
        Parent index of each true feature, -1 where it has none (``parent_of`` of
        :func:`skdict.datasets.make_hierarchical_features`).
    projection_threshold : float in (0, 1], default=0.5
        Fraction :math:`\tau` of the parent's magnitude the other latents must carry.
    tol : float >= 0, default=0.0
        Learned entries with :math:`|\hat z| \le` ``tol`` count as silent.

    Returns
    -------
    score : float
        In :math:`[0, 1]`; 0 when every parent latent fires with its children.

    Raises
    ------
    ValueError
        When no sample has a parent active together with one of its children.
    """
    if not isinstance(projection_threshold, Real) or not 0 < projection_threshold <= 1:
        raise ValueError(f"projection_threshold must be a float in (0, 1], got {projection_threshold!r}.")
    if not isinstance(tol, Real) or isinstance(tol, bool) or not tol >= 0:
        raise ValueError(f"tol must be a float >= 0 (a bound on |z|), got {tol!r}.")
    true_codes, learned_codes = _check_codes_pair(true_codes, learned_codes, min_rows=1)
    learned = _check_matrix(learned, "learned")
    F, D_unit = _unit_dictionaries(true_features, learned)
    _check_shapes(true_codes, learned_codes, F, learned)
    parent_of = _check_parent_of(parent_of, F.shape[0])
    xp = get_namespace(true_codes, learned_codes, F, learned)

    parents = np.unique(parent_of[parent_of >= 0])
    parent_directions = F[xp.asarray(parents)]
    parent_latents = xp.argmax(parent_directions @ D_unit.T, axis=1)
    # Projection of each latent's written direction on each parent: <d_j, f_p>, shape (n_learned, n_parents).
    projections = learned.astype(F.dtype) @ parent_directions.T
    rates = []
    for column, (p, j_p) in enumerate(zip(parents.tolist(), to_numpy(parent_latents).tolist())):
        children = np.flatnonzero(parent_of == p)
        with_child = (true_codes[:, p] > 0) & xp.any(true_codes[:, xp.asarray(children)] > 0, axis=1)
        n_tested = int(xp.count_nonzero(with_child))
        if n_tested == 0:
            continue
        z = learned_codes[with_child]
        others = xp.where(xp.abs(z) > tol, z, 0)
        others[:, j_p] = 0
        carried = others @ projections[:, column]
        absorbed = (xp.abs(z[:, j_p]) <= tol) & (carried >= projection_threshold * true_codes[:, p][with_child])
        rates.append(int(xp.count_nonzero(absorbed)) / n_tested)
    if not rates:
        raise ValueError(
            "No sample has a parent feature active together with one of its children, so absorption is "
            "undefined; pass more samples, or check parent_of."
        )
    return float(np.mean(rates))
