r"""The Babel function :math:`\mu_1(r)` of a dictionary, on all atoms or on the atoms active together.

Mutual coherence looks at the single worst pair of atoms; the Babel function
(Tropp, 2004, "Greed is good") looks at how much one atom can be explained by
:math:`r` others at once,

.. math::

    \mu_1(r) = \max_i \max_{|\Lambda| = r,\ i \notin \Lambda}
    \sum_{j \in \Lambda} |\langle d_i, d_j \rangle|,

for unit atoms :math:`d_i`. The inner maximum is the sum of the :math:`r`
largest :math:`|\langle d_i, d_j \rangle|`, :math:`j \ne i`, so it is computed
exactly by a partial sort of each row of the Gram matrix. :math:`\mu_1(1)` is the
mutual coherence, and OMP/basis pursuit recover every :math:`k`-sparse code when
:math:`\mu_1(k - 1) + \mu_1(k) < 1`.
"""

from __future__ import annotations

from numbers import Integral

from skdict._array import get_namespace
from skdict.metrics._dictionary import _BLOCK_ELEMENTS, _abs_cosine_blocks, _unit_rows
from skdict.metrics._sparsity import _sparse_pattern
from skdict.metrics._validation import _check_matrix, _is_sparse

_AGGREGATES = ("max", "mean")


def _top_r_sums(abs_cosines, r):
    """Sum of the ``r`` largest entries of each row (along the last axis)."""
    xp = get_namespace(abs_cosines)
    n = abs_cosines.shape[-1]
    largest = xp.partition(xp.minimum(abs_cosines, 1), n - r, axis=-1)[..., n - r :]
    return xp.sum(largest, axis=-1)


def _support_table(codes):
    """Active atoms of each sample as a padded table: ``index`` (n_samples, s_max) and its ``valid`` mask."""
    if _is_sparse(codes):
        pattern = _sparse_pattern(codes, "csr")
        xp = get_namespace(pattern.indices)
        counts = xp.diff(pattern.indptr)
        # Row of each stored entry (CuPy's repeat takes no array of counts).
        rows = xp.searchsorted(pattern.indptr, xp.arange(pattern.nnz), side="right") - 1
        cols = pattern.indices
    else:
        xp = get_namespace(codes)
        rows, cols = xp.nonzero(codes)
        counts = xp.bincount(rows, minlength=codes.shape[0])
    starts = xp.cumsum(counts) - counts
    position = xp.arange(rows.shape[0]) - starts[rows]
    s_max = int(xp.max(counts)) if counts.shape[0] else 0
    index = xp.zeros((codes.shape[0], s_max), dtype=xp.int64)
    valid = xp.zeros((codes.shape[0], s_max), dtype=bool)
    index[rows, position] = cols
    valid[rows, position] = True
    return index, valid


def _subset_babel(D, codes, r):
    """Per sample, :math:`\\mu_1(\\min(r, |S_n| - 1))` of the unit atoms ``D`` restricted to the support :math:`S_n`."""
    index, valid = _support_table(codes)
    xp = get_namespace(D)
    n_samples, s_max = index.shape
    per_sample = xp.zeros(n_samples, dtype=D.dtype)
    if s_max < 2:
        return per_sample
    r = s_max - 1 if r is None else min(r, s_max - 1)
    step = max(1, _BLOCK_ELEMENTS // (s_max * max(s_max, D.shape[1])))
    off_diagonal = ~xp.eye(s_max, dtype=bool)
    for start in range(0, n_samples, step):
        atoms = D[index[start : start + step]]  # (block, s_max, n_dims)
        mask = valid[start : start + step]
        gram = xp.abs(atoms @ xp.swapaxes(atoms, 1, 2))
        gram = xp.where(mask[:, :, None] & mask[:, None, :] & off_diagonal, gram, 0)
        per_sample[start : start + step] = xp.max(_top_r_sums(gram, r), axis=1)
    return per_sample


def babel(D, r, *, codes=None, aggregate="max"):
    r"""Babel function :math:`\mu_1(r)` of the rows of ``D``, exact; or its value on co-activated atoms.

    Without ``codes``: :math:`\mu_1(r) = \max_i` (sum of the :math:`r` largest
    :math:`|\cos(d_i, d_j)|` over :math:`j \ne i`).

    With ``codes``: for each sample :math:`n` the atoms active together,
    :math:`S_n = \{i : z_{ni} \ne 0\}`, give a sub-dictionary, and its Babel value is

    .. math::

        \mu_1(r; S_n) = \max_{i \in S_n}\ \text{sum of the } \min(r, |S_n| - 1)
        \text{ largest } |\cos(d_i, d_j)|,\ j \in S_n \setminus \{i\}

    (0 when :math:`|S_n| \le 1`); ``aggregate`` reduces these over samples. This
    is the interference an encoder actually faces on the data, rather than the
    worst case over all :math:`r`-subsets.

    Parameters
    ----------
    D : array of shape (n_atoms, n_dims)
        Atoms as rows (any norm; zero rows have cosine 0), :math:`n_\text{atoms} \ge 2`.
    r : int >= 1 or None
        Number :math:`r` of other atoms. Without ``codes`` at most
        ``n_atoms - 1``; with ``codes`` any :math:`r \ge 1` (clipped to each
        support). ``None`` means all the others (:math:`r = n_\text{atoms} - 1`,
        or :math:`|S_n| - 1` per sample).
    codes : array or sparse matrix of shape (n_samples, n_atoms), default=None
        Codes whose nonzero pattern gives the co-activated subsets (dense
        NumPy/CuPy or SciPy/CuPy sparse).
    aggregate : {"max", "mean"}, default="max"
        With ``codes``: the worst sample, or the mean over samples.

    Returns
    -------
    mu1 : float
        In :math:`[0, r]`.
    """
    D = _unit_rows(_check_matrix(D, "D", min_rows=2))
    n_atoms = D.shape[0]
    limit = None if codes is not None else n_atoms - 1
    if r is not None and (not isinstance(r, Integral) or isinstance(r, bool) or r < 1 or (limit and r > limit)):
        bound = f"in [1, n_atoms - 1 = {limit}]" if limit else ">= 1"
        raise ValueError(f"r must be an int {bound} or None (all other atoms), got {r!r}.")
    if aggregate not in _AGGREGATES:
        raise ValueError(f"aggregate must be one of {_AGGREGATES}, got {aggregate!r}.")
    if codes is None:
        r = n_atoms - 1 if r is None else r
        blocks = _abs_cosine_blocks(D, D, exclude_diagonal=True)
        return max(float(get_namespace(D).max(_top_r_sums(cosines, r))) for _, _, cosines in blocks)
    codes = _check_matrix(codes, "codes", allow_sparse=True, floating=False)
    xp = get_namespace(D, codes.data if _is_sparse(codes) else codes)
    if codes.shape[1] != n_atoms:
        raise ValueError(
            f"codes must have one column per atom of D; got codes.shape={codes.shape} and D.shape={D.shape}."
        )
    per_sample = _subset_babel(D, codes, r)
    return float(xp.max(per_sample) if aggregate == "max" else xp.mean(per_sample))
