"""Batched matching pursuit through Gram-matrix updates, and its backward pass.

Matching pursuit (Mallat & Zhang, 1993) on unit atoms :math:`\\hat d_j`, for each
row :math:`r^0` of ``R`` and :math:`t = 1, \\dots, k`:

.. math::

    j_t = \\arg\\max_j |\\hat d_j^\\top r^{t-1}|, \\quad
    \\hat z_t = \\hat d_{j_t}^\\top r^{t-1}, \\quad
    r^t = r^{t-1} - \\hat z_t \\hat d_{j_t}.

That is the ``"absolute"`` selection (classical MP). The ``"signed"`` selection
:math:`j_t = \\arg\\max_j \\hat d_j^\\top r^{t-1}` is Algorithm 1 of the MP-SAE
paper (Costa et al., 2025); ``positive=True`` adds the stop that keeps codes
non-negative. Every rule removes :math:`\\hat z_t^2` from :math:`\\|r\\|^2` at each
step, so the residual norm never grows.

The correlations :math:`c = \\hat D r` are formed once, one (n x n_features x
n_components) product, and then kept current without touching :math:`r`:
:math:`c \\leftarrow c - \\hat z_t \\hat G_{j_t}` with :math:`\\hat G = \\hat D
\\hat D^\\top`. A dictionary whose rows are not unit is normalised first, so
the codes returned are those of the atoms as given,
:math:`z = \\hat z / \\|d_j\\|`; zero atoms are never chosen.
"""

from __future__ import annotations

import contextlib

from dataclasses import dataclass

import numpy as np

from skdict._array import get_namespace
from skdict.ops.atoms import normalize_rows
from skdict.ops._threads import run_blocks, single_threaded_blas, split
from skdict.ops.codes import CodeMatrix
from skdict.ops.gram import gram_matrix

#: Largest (rows x n_components) block of correlations held at once.
_BLOCK_ELEMENTS = 1 << 24
#: Rows pursued together on one CPU thread: their correlations (and the Gram rows
#: gathered for them) stay in cache across the k steps.
_CPU_ROWS = 128


@dataclass
class MatchingPursuitTrace:
    """The record of a batched pursuit, enough to decode and to differentiate it.

    Attributes
    ----------
    indices : int array of shape (n, k)
        :math:`j_t` per row and step.
    values : array of shape (n, k)
        Codes of the atoms as given, :math:`\\hat z_t / \\|d_{j_t}\\|`; zero for
        the steps of a positive pursuit that stopped (no positive correlation left).
    unit_values : array of shape (n, k)
        :math:`\\hat z_t`, the codes of the unit atoms.
    residual : array of shape (n, n_features)
        :math:`r^k = r^0 - z D`.
    unit_atoms : array of shape (n_components, n_features)
        :math:`\\hat D`, the atoms the pursuit ran on (kept for the backward pass).
    inverse_norms : array of shape (n_components,)
        :math:`1/\\|d_j\\|` (0 for a zero atom).
    positive : bool
        Whether the pursuit stopped rows with no positive correlation (their steps have zero codes).
    """

    indices: object
    values: object
    unit_values: object
    residual: object
    unit_atoms: object
    inverse_norms: object
    positive: bool = False

    @property
    def n_components(self):
        return self.unit_atoms.shape[0]

    def codes(self):
        """The code matrix :math:`z` (repeated atoms add up) as a :class:`CodeMatrix`."""
        return CodeMatrix.from_row_pairs(self.indices, self.values, self.n_components)

    def active_pairs(self):
        """Row-sorted ``(rows, cols)`` of the distinct latents whose summed code is nonzero.

        The L0 of the codes: an atom chosen at several steps of a row counts once,
        a stopped step (zero code) not at all. O(n k), no dense (n x n_components) array.
        """
        xp = get_namespace(self.values)
        n, k = self.indices.shape
        m = self.n_components
        keys = (xp.arange(n, dtype=xp.int64)[:, None] * m + self.indices).reshape(-1)
        unique, inverse = xp.unique(keys, return_inverse=True)
        sums = xp.bincount(inverse.reshape(-1), weights=self.values.reshape(-1), minlength=unique.shape[0])
        unique = unique[sums != 0]
        return unique // m, unique % m


def _unit_atoms(D):
    """Unit-norm copy of ``D`` and the reciprocal atom norms (0 for a zero atom)."""
    xp = get_namespace(D)
    norms = xp.sqrt(xp.sum(D * D, axis=1))
    inverse = xp.where(norms > 0, 1.0 / xp.where(norms > 0, norms, 1), 0).astype(D.dtype)
    return normalize_rows(D, eps=0.0), inverse


def unit_gram(D):
    """:math:`\\hat G = \\hat D \\hat D^\\top`, the Gram matrix of ``D``'s rows scaled to unit norm."""
    unit_atoms, _ = _unit_atoms(D)
    return gram_matrix(unit_atoms)


#: Atom-selection rules of :func:`matching_pursuit`.
SELECTIONS = ("absolute", "signed")


def resolve_selection(selection, positive):
    """The selection rule: ``None`` means ``"signed"`` when ``positive`` else ``"absolute"``.

    Raises
    ------
    ValueError
        For an unknown rule, or ``positive=True`` with ``"absolute"`` (non-negative
        codes need the signed choice).
    """
    if selection is None:
        return "signed" if positive else "absolute"
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}.")
    if positive and selection == "absolute":
        raise ValueError(
            "positive=True needs selection='signed' (non-negative codes come from the largest signed "
            "correlation); set selection='signed' or positive=False."
        )
    return selection


def matching_pursuit(R, D, k, *, positive=False, selection=None, gram=None):
    """Run ``k`` steps of matching pursuit on every row of ``R`` at once.

    Parameters
    ----------
    R : array of shape (n, n_features)
        The signals :math:`r^0` (already centred: no bias is subtracted here).
    D : array of shape (n_components, n_features)
        Atoms as rows; normalised internally if they are not unit.
    k : int
        Number of steps (an atom may be chosen more than once; its codes add up).
    positive : bool, default=False
        Non-negative codes: with the signed selection, a row whose correlations
        are all :math:`\\le 0` stops (its remaining steps have zero codes).
    selection : {"absolute", "signed"} or None, default=None
        ``"absolute"``: :math:`j = \\arg\\max_j |\\hat d_j^\\top r|`, classical MP,
        the largest decrease :math:`\\hat z_t^2` of :math:`\\|r\\|^2` at every step;
        codes of either sign. ``"signed"``: :math:`j = \\arg\\max_j \\hat d_j^\\top r`,
        MP-SAE's Algorithm 1; codes are positive while some correlation is, and when
        none is (without ``positive``) the least negative one is taken, a negative
        code. ``None``: ``"signed"`` if ``positive`` else ``"absolute"``.
    gram : array of shape (n_components, n_components) or None
        :math:`\\hat G = \\hat D \\hat D^\\top` of the *normalised* atoms, to reuse
        across calls (see :func:`unit_gram`). When ``None`` it is formed here if
        that is cheaper than the alternative, :math:`m^2 d \\le k n m d`, i.e.
        ``n_components <= k * n``; otherwise each step updates the correlations
        by a product with the chosen atoms, :math:`c \\leftarrow c - \\hat z_t
        \\hat d_{j_t} \\hat D^\\top`, which needs no Gram matrix.

    Returns
    -------
    MatchingPursuitTrace
    """
    absolute = resolve_selection(selection, positive) == "absolute"
    xp = get_namespace(R, D)
    unit_atoms, inverse_norms = _unit_atoms(D)
    n, m = R.shape[0], D.shape[0]
    if gram is None and m <= k * n:
        gram = gram_matrix(unit_atoms)
    indices = xp.empty((n, k), dtype=xp.int64)
    unit_values = xp.empty((n, k), dtype=R.dtype)
    # A zero atom's correlation is always 0: the signed rule would pick it (a step that changes nothing)
    # whenever every other correlation is negative, so it is excluded (unless no atom is nonzero).
    zero = inverse_norms == 0
    excluded = zero if not absolute and not positive and bool(zero.any()) and not bool(zero.all()) else None
    if xp is np:  # small blocks that stay in cache, on the ops thread pool
        blocks = split(n, m * k, max_blocks=max(1, -(-n // _CPU_ROWS)))
    else:  # the GPU wants few, large blocks
        rows_per_block = max(1, _BLOCK_ELEMENTS // max(m, 1))
        blocks = [(start, min(start + rows_per_block, n)) for start in range(0, n, rows_per_block)]

    def pursue(start, stop):
        _pursue_block(R[start:stop], unit_atoms, gram, k, (absolute, positive, excluded),
                      indices[start:stop], unit_values[start:stop])

    # several blocks: each one's first product runs on its own thread; one block: BLAS as it is
    with single_threaded_blas() if len(blocks) > 1 else contextlib.nullcontext():
        run_blocks(pursue, blocks, xp)
    values = unit_values * inverse_norms[indices]
    trace = MatchingPursuitTrace(indices, values, unit_values, None, unit_atoms, inverse_norms, positive)
    trace.residual = R - trace.codes().dot(D) if k else R.copy()
    return trace


def _pursue_block(R, unit_atoms, gram, k, rule, indices, unit_values):
    """Fill ``indices`` and ``unit_values`` for one block of rows (in place).

    ``rule`` is ``(absolute, positive, excluded)``: the selection, the non-negative
    stop, and a mask of atoms never to choose (or ``None``).
    """
    absolute, positive, excluded = rule
    xp = get_namespace(R)
    correlations = R @ unit_atoms.T
    if excluded is not None:
        correlations[:, excluded] = -xp.inf  # stays -inf: the updates add finite values
    rows = xp.arange(R.shape[0])
    update = None
    for t in range(k):
        chosen = xp.argmax(correlations, axis=1)
        if absolute:
            # argmax |c| without forming |c|: the largest entry or the most negative one
            lowest = xp.argmin(correlations, axis=1)
            chosen = xp.where(correlations[rows, chosen] >= -correlations[rows, lowest], chosen, lowest)
        z = correlations[rows, chosen]
        if positive:
            z = xp.maximum(z, 0)
        indices[:, t] = chosen
        unit_values[:, t] = z
        if t + 1 < k:
            if gram is None:
                correlations -= (z[:, None] * unit_atoms[chosen]) @ unit_atoms.T
            else:
                update = xp.take(gram, chosen, axis=0, out=update)
                update *= z[:, None]
                correlations -= update


def matching_pursuit_backward(trace, grad_residual):
    """Gradients through a pursuit of ``L(r^k)`` with the choices :math:`j_t` held fixed.

    With :math:`g_t = \\partial L / \\partial r^t` and :math:`d = \\hat d_{j_t}`,
    one step back is

    .. math::

        r^{t-1} = r^t + \\hat z_t d, \\quad
        \\delta_t = d^\\top g_t, \\quad
        \\frac{\\partial L}{\\partial d} \\mathrel{+}= -\\hat z_t g_t - \\delta_t r^{t-1}, \\quad
        g_{t-1} = g_t - \\delta_t d,

    (:math:`\\delta_t = 0` on the stopped steps of a positive pursuit), whatever the
    selection rule (it only decides the :math:`j_t`), so no
    intermediate residual is stored: each is recovered from the next. The
    gradient with respect to the unit atoms is finally taken through
    :math:`\\hat d = d/\\|d\\|`: :math:`(I - \\hat d \\hat d^\\top) \\cdot / \\|d\\|`.

    Parameters
    ----------
    trace : MatchingPursuitTrace
        From :func:`matching_pursuit`; its unit atoms are reused, not recomputed.
    grad_residual : array of shape (n, n_features)
        :math:`g_k = \\partial L / \\partial r^k`.

    Returns
    -------
    grad_D : array of shape (n_components, n_features)
    grad_R : array of shape (n, n_features)
        :math:`\\partial L / \\partial r^0`.
    """
    unit_atoms, inverse_norms = trace.unit_atoms, trace.inverse_norms
    xp = get_namespace(unit_atoms, grad_residual)
    n, k = trace.indices.shape
    rows = xp.arange(n, dtype=trace.indices.dtype)
    ones = xp.ones(n, dtype=unit_atoms.dtype)
    grad_unit = xp.zeros_like(unit_atoms)
    g = grad_residual.copy()
    r = trace.residual.copy()
    for t in range(k - 1, -1, -1):
        chosen = trace.indices[:, t]
        z = trace.unit_values[:, t]
        atoms = unit_atoms[chosen]
        r += z[:, None] * atoms
        delta = xp.sum(atoms * g, axis=1)
        if trace.positive:  # a stopped positive step (z clipped to 0) passes nothing back through z
            delta = xp.where(z != 0, delta, 0)
        contribution = -(z[:, None] * g) - delta[:, None] * r
        grad_unit += CodeMatrix(rows, chosen, ones, (n, unit_atoms.shape[0])).tdot(contribution)
        g -= delta[:, None] * atoms
    radial = xp.sum(grad_unit * unit_atoms, axis=1, keepdims=True)
    grad_D = (grad_unit - radial * unit_atoms) * inverse_norms[:, None]
    return grad_D, g
