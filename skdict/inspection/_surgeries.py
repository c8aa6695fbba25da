"""Surgeries on a fitted SAE: its decoder with optimal codes, its support with refitted values, its codes as a warm start."""

from __future__ import annotations

from sklearn.utils import Bunch

from skdict._array import get_namespace, to_device, device_of
from skdict.ops.atoms import normalize_rows
from skdict.ops.fista import fista, lasso_objective

#: Largest number of gathered atom entries (rows x support x n_features) held at once by support_refit.
_REFIT_BLOCK = 1 << 24


def _decoder_and_centred(estimator, X):
    """``(components_, X - decoder_bias_)`` of a fitted skdict SAE, on the model's device and dtype."""
    D = estimator.components_
    X = to_device(X, device_of(D)).astype(D.dtype, copy=False)
    return D, X - estimator.decoder_bias_


def frozen_decoder_codes(estimator, X, alpha, *, atom_norms=None, positive=True, max_iter=500, tol=1e-6):
    """Optimal L1 codes on an SAE's frozen decoder, by FISTA.

    Solves :math:`\\min_z \\tfrac12\\|x - b - z D\\|^2 + \\alpha\\|z\\|_1` for every
    sample with the SAE's atoms :math:`D` (``components_``) and bias :math:`b`
    (``decoder_bias_``) held fixed: what the decoder could do with an optimal
    encoder, against what the SAE's amortised encoder does.

    Parameters
    ----------
    estimator : fitted skdict SAE
    X : array of shape (n_samples, n_features)
    alpha : float
    atom_norms : None, "unit" or array of shape (n_components,)
        ``None``: the atoms as they are; ``"unit"``: renormalised to unit
        norm; an array: atoms rescaled to these norms (e.g. oracle norms taken
        from ground-truth features).
    positive : bool, default=True
        Non-negative codes, as the SAE's.
    max_iter, tol : passed to :func:`skdict.ops.fista.fista`.

    Returns
    -------
    codes : array of shape (n_samples, n_components)
        Codes of the atoms as used (after any rescaling).
    dictionary : array of shape (n_components, n_features)
        The atoms used.
    """
    D, centred = _decoder_and_centred(estimator, X)
    xp = get_namespace(D)
    if isinstance(atom_norms, str):
        if atom_norms != "unit":
            raise ValueError(f'atom_norms must be None, "unit" or an array of norms, got {atom_norms!r}.')
        D = normalize_rows(D, eps=0.0)
    elif atom_norms is not None:
        norms = xp.asarray(atom_norms, dtype=D.dtype)
        if norms.shape != (D.shape[0],) or not bool(xp.all(xp.isfinite(norms) & (norms > 0))):
            raise ValueError(f"atom_norms must hold {D.shape[0]} positive finite norms, one per atom.")
        D = normalize_rows(D, eps=0.0) * norms[:, None]
    codes, _ = fista(centred, D, alpha, positive=positive, max_iter=max_iter, tol=tol)
    return codes, D


def support_refit(estimator, X):
    """Codes on the SAE's own support with least-squares values.

    For each sample with support :math:`S` (the nonzeros of
    ``estimator.transform``), :math:`z_S = \\arg\\min \\|x - b - z_S D_S\\|^2`,
    solved for all samples at once from the padded normal equations
    :math:`D_S D_S^\\top z_S = D_S (x - b)`. Separates what the encoder chose
    (the support) from how much it put on each choice (the values).

    Returns
    -------
    codes : array of shape (n_samples, n_components)
    """
    D, centred = _decoder_and_centred(estimator, X)
    xp = get_namespace(D)
    sae_codes = to_device(estimator.transform(X), device_of(D))
    refit = xp.zeros_like(sae_codes)
    support_sizes = xp.sum(sae_codes != 0, axis=1)
    width = int(xp.max(support_sizes)) if sae_codes.shape[0] else 0
    if width == 0:
        return refit
    rows_per_block = max(1, _REFIT_BLOCK // (width * D.shape[1]))
    for start in range(0, sae_codes.shape[0], rows_per_block):
        stop = min(start + rows_per_block, sae_codes.shape[0])
        _refit_block(xp, D, centred[start:stop], sae_codes[start:stop], width, refit[start:stop])
    return refit


def _refit_block(xp, D, centred, codes, width, out):
    """Least squares on each row's support, rows padded to ``width`` atoms (in place into ``out``)."""
    n = codes.shape[0]
    # the support first in every row, padding (zero codes) after it
    order = xp.argsort(codes == 0, axis=1, kind="stable")[:, :width]
    valid = xp.take_along_axis(codes, order, axis=1) != 0
    atoms = D[order] * valid[:, :, None]  # (n, width, n_features), zero rows for padding
    gram = atoms @ atoms.transpose(0, 2, 1)
    gram += xp.eye(width, dtype=D.dtype) * (~valid)[:, :, None]  # identity on padding keeps it solvable
    # a tiny ridge (relative to the atoms' scale) keeps duplicated or collinear atoms solvable:
    # their values then share the least-squares fit instead of raising LinAlgError (NaN on CuPy)
    scale = xp.max(xp.sum(D * D, axis=1))
    gram += (xp.finfo(D.dtype).eps * width * scale) * xp.eye(width, dtype=D.dtype)
    rhs = xp.sum(atoms * centred[:, None, :], axis=2)
    values = xp.linalg.solve(gram, rhs[:, :, None])[:, :, 0] * valid
    rows = xp.repeat(xp.arange(n)[:, None], width, axis=1)
    out[rows[valid], order[valid]] = values[valid]


def encoder_warm_start_savings(estimator, X, alpha, *, positive=True, max_iter=1000, tol=1e-6):
    """FISTA on the SAE's decoder from zero codes and from the SAE's codes: iterations saved.

    Returns
    -------
    Bunch with ``cold_iterations``, ``warm_iterations`` (of the slowest sample,
    as :func:`~skdict.ops.fista.fista` counts), ``saved_fraction`` =
    1 − warm/cold, and the mean objectives ``cold_objective``,
    ``warm_objective``, ``sae_objective`` (the SAE's codes themselves).
    """
    D, centred = _decoder_and_centred(estimator, X)
    xp = get_namespace(D)
    init = to_device(estimator.transform(X), device_of(D))
    cold, cold_iterations = fista(centred, D, alpha, positive=positive, max_iter=max_iter, tol=tol)
    warm, warm_iterations = fista(centred, D, alpha, positive=positive, max_iter=max_iter, tol=tol, init=init)

    def mean_objective(codes):
        return float(xp.mean(lasso_objective(centred, D, codes, alpha)))

    return Bunch(
        cold_iterations=cold_iterations,
        warm_iterations=warm_iterations,
        saved_fraction=1.0 - warm_iterations / max(cold_iterations, 1),
        cold_objective=mean_objective(cold),
        warm_objective=mean_objective(warm),
        sae_objective=mean_objective(init),
    )
