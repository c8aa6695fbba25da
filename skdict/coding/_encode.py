r"""``sparse_encode``: sparse codes of samples on a fixed dictionary, batched over samples.

For samples :math:`x_n` (rows of ``X``) and atoms :math:`d_j` (rows of the
dictionary :math:`D`), every algorithm returns a code matrix :math:`Z` with
:math:`x_n \approx z_n D`. All of them start from the correlations
:math:`C = X D^\top` (one matrix product) and work on all samples at once.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import check_array

from skdict._array import device_of, get_namespace, is_cupy_array, to_device
from skdict._guards import warn_not_converged
from skdict._validation import FLOAT_DTYPES, _check_device_array, check_array_argument
from skdict.ops.fista import LassoInfo, lipschitz_constant, soft_threshold
from skdict.ops.matching_pursuit import matching_pursuit
from skdict.ops.omp import orthogonal_matching_pursuit
from skdict.ops.scaling import max_exponent
from skdict.ops.thresholding import topk_codes
from skdict.ops.working_set import working_set_fista
from skdict.ops.gram import gram_matrix

#: The algorithms of :func:`sparse_encode`.
ALGORITHMS = ("fista", "ista", "mp", "omp", "topk", "threshold")
#: Those that run until convergence (use ``max_iter``, ``tol`` and ``init``).
ITERATIVE = ("fista", "ista")
#: Those with a fixed number of atoms per sample (use ``n_nonzero_coefs``).
PURSUITS = ("mp", "omp", "topk")
#: Largest (rows x n_components) block of codes FISTA/ISTA iterate on at once (it keeps ~5 such arrays).
_BLOCK_ELEMENTS = 1 << 22


def check_matrix(A, name):
    """Validate the data ``X`` (2-D, finite, non-empty) with scikit-learn's rules; float32/float64 kept, others float64."""
    if is_cupy_array(A):
        A = _check_device_array(A, name=name, estimator=None, min_samples=0)
    else:
        with np.errstate(over="ignore", invalid="ignore"):  # its finiteness test sums X: inf near the dtype's max
            A = check_array(A, dtype=FLOAT_DTYPES, input_name=name, ensure_min_samples=0)
    if A.shape[0] < 1:
        raise ValueError(f"{name} has shape {tuple(A.shape)}: at least one row is required.")
    return A


def default_n_nonzero_coefs(n_features, n_components):
    """``n_nonzero_coefs=None`` means 10% of ``n_features`` (at least 1, at most ``n_components``)."""
    return min(n_components, max(1, n_features // 10))


def check_dictionary(dictionary, device=None):
    """The dictionary (atoms as rows) by the shared rule set, on ``device`` when given; its dtype kept if float32/64."""
    D = check_array_argument(dictionary, "dictionary", shape=(None, None), shape_names=("n_components", "n_features"))
    return D if device is None else to_device(D, device)


def _check_dictionary(X, dictionary):
    """The dictionary on ``X``'s device, checked against ``X``'s number of features."""
    D = check_dictionary(dictionary, device_of(X))
    if D.shape[1] != X.shape[1]:
        hint = " (did you pass the transposed dictionary?)" if D.shape[0] == X.shape[1] else ""
        raise ValueError(
            f"X has {X.shape[1]} features (shape {tuple(X.shape)}) but the dictionary has {D.shape[1]} "
            f"(shape {tuple(D.shape)}){hint}; the atoms are the rows of dictionary, "
            "of shape (n_components, n_features)."
        )
    return D


def _check_init(init, algorithm, shape, X):
    if init is None:
        return None
    if algorithm not in ITERATIVE:
        raise ValueError(
            f"init warm-starts the iterative algorithms {ITERATIVE} only; got algorithm={algorithm!r}. Pass init=None."
        )
    return check_array_argument(init, "init", shape=shape, shape_names=("n_samples", "n_components"), like=X)


def _check_n_nonzero_coefs(n_nonzero_coefs, algorithm, D):
    n_components, n_features = D.shape
    if n_nonzero_coefs is None:
        return default_n_nonzero_coefs(n_features, n_components)
    if algorithm in PURSUITS and n_nonzero_coefs > n_components:
        raise ValueError(
            f"n_nonzero_coefs must be in [1, n_components={n_components}] for algorithm={algorithm!r}, "
            f"got {n_nonzero_coefs}; lower it or use a larger dictionary."
        )
    return n_nonzero_coefs


def _lasso(X, D, alpha, *, positive, max_iter, tol, init, momentum):
    """FISTA (or ISTA) codes, in row blocks sharing one Gram matrix and one step size.

    Each block goes through :func:`skdict.ops.working_set.working_set_fista`: per-sample
    working sets when the dictionary has at least 128 atoms (FISTA on a few atoms per
    sample, certified on all of them), plain batched FISTA below. Each sample stops on
    its own duality gap over all atoms, so its codes do not depend on the blocks.

    Returns
    -------
    codes : array of shape (n_samples, n_components)
    info : LassoInfo
        How every row ended (iterations, certificate, relative gap).
    """
    xp = get_namespace(X)
    gram = gram_matrix(D)
    lipschitz = lipschitz_constant(D, gram=gram)
    n_samples, n_components = X.shape[0], D.shape[0]
    codes = xp.empty((n_samples, n_components), dtype=X.dtype)
    infos = []
    rows_per_block = max(1, _BLOCK_ELEMENTS // n_components)
    for start in range(0, n_samples, rows_per_block):
        block = slice(start, min(start + rows_per_block, n_samples))
        codes[block], info = working_set_fista(
            X[block],
            D,
            alpha,
            positive=positive,
            max_iter=max_iter,
            tol=tol,
            init=None if init is None else init[block],
            momentum=momentum,
            gram=gram,
            lipschitz=lipschitz,
            return_info=True,
        )
        infos.append(info)
    return codes, LassoInfo.concatenate(infos)


def _topk(X, D, k, positive):
    xp = get_namespace(X)
    indices, values = topk_codes(X @ D.T, k, positive=positive)
    codes = xp.zeros((X.shape[0], D.shape[0]), dtype=X.dtype)
    codes[xp.arange(X.shape[0])[:, None], indices] = values  # indices are distinct within a row
    return codes


def _unit_scale_exponents(X, D):
    r"""Powers of two :math:`2^{e_X}, 2^{e_D}` that bring :math:`\max|X|` and :math:`\max|D|` into [0.5, 1).

    ``(0, 0)`` (no rescaling) when both maxima are within :math:`2^{\pm m}`,
    :math:`m` = an eighth of the dtype's exponent range (:math:`2^{\pm 16}` in
    float32, :math:`2^{\pm 128}` in float64): there no Gram product, Lipschitz
    constant, squared residual or momentum product of the solvers can overflow or
    underflow, and the codes are bitwise those of an unscaled solve.
    """
    xp = get_namespace(X)
    bound = xp.finfo(X.dtype).maxexp // 8
    e_X, e_D = int(max_exponent(X)), int(max_exponent(D))
    if max(abs(e_X), abs(e_D)) <= bound:
        return 0, 0
    return e_X, e_D


def _scale_back(codes, shift, what):
    """``codes * 2**shift`` exactly, or a ValueError when the true codes are beyond the dtype's range."""
    xp = get_namespace(codes)
    if shift == 0:
        return codes
    if int(max_exponent(codes)) + shift > xp.finfo(codes.dtype).maxexp:
        raise ValueError(
            f"The {what} of this X and dictionary exceed the largest {codes.dtype} "
            f"({float(xp.finfo(codes.dtype).max):.3g}): they cannot be represented. Pass X and the dictionary "
            "as float64, or rescale them (the lasso codes scale as max|X| / max|dictionary|)."
        )
    return xp.ldexp(codes, shift)


def _encode(X, D, *, algorithm, alpha, k, positive, max_iter, tol, init, who, max_iter_name, tol_name):
    r"""Codes of validated ``X``, ``D`` (one dtype, one device), solved at a safe scale.

    The problems are rescaled by exact powers of two, :math:`X' = 2^{-e_X} X`,
    :math:`D' = 2^{-e_D} D`, when :math:`X` or :math:`D` is far from unit scale
    (:func:`_unit_scale_exponents`), and the codes are mapped back by the scaling laws

    - lasso (fista/ista), mp, omp: :math:`z^\star(sX, tD, st\alpha) = \tfrac{s}{t}\, z^\star(X, D, \alpha)`
      (with :math:`z' = \tfrac{s}{t} z`,
      :math:`\tfrac12\lVert sx - z' tD\rVert^2 + st\alpha\lVert z'\rVert_1
      = s^2 \big(\tfrac12\lVert x - zD\rVert^2 + \alpha\lVert z\rVert_1\big)`);
      the relative duality gap, hence ``tol``, is unchanged; pursuits pick the same atoms;
    - topk, threshold (correlations): :math:`c(sX, tD) = st\, c(X, D)`, threshold :math:`st\alpha`.

    A penalty :math:`2^{-e_X - e_D}\alpha` beyond the dtype's range means zero lasso
    and threshold codes (it exceeds every correlation).
    """
    xp = get_namespace(X)
    e_X, e_D = _unit_scale_exponents(X, D)
    shift = e_X - e_D if algorithm in ITERATIVE + ("mp", "omp") else e_X + e_D
    if (e_X, e_D) != (0, 0):
        X, D = xp.ldexp(X, -e_X), xp.ldexp(D, -e_D)
        init = None if init is None else xp.ldexp(init, -shift)
        try:
            alpha = math.ldexp(alpha, -(e_X + e_D))
        except OverflowError:
            alpha = math.inf
    zero_codes = algorithm in ITERATIVE + ("threshold",) and alpha > float(xp.finfo(X.dtype).max)
    if zero_codes:
        codes, n_iter = xp.zeros((X.shape[0], D.shape[0]), dtype=X.dtype), 0
    elif algorithm in ITERATIVE:
        momentum = algorithm == "fista"
        codes, info = _lasso(X, D, alpha, positive=positive, max_iter=max_iter, tol=tol, init=init, momentum=momentum)
        n_iter = info.n_iter
        if tol > 0 and info.n_unconverged:
            warn_not_converged(
                who,
                info.unconverged_message(max_iter, tol, max_iter_name=max_iter_name, tol_name=tol_name),
                f"raise {max_iter_name} (or {tol_name})",
                stacklevel=4,
            )
    elif algorithm == "mp":
        codes, n_iter = matching_pursuit(X, D, k, positive=positive).codes().to_dense(), k
    elif algorithm == "omp":
        codes, n_iter = orthogonal_matching_pursuit(X, D, k).codes().to_dense(), k
    elif algorithm == "topk":
        codes, n_iter = _topk(X, D, k, positive), 1
    else:  # "threshold"
        codes, n_iter = soft_threshold(X @ D.T, alpha, positive=positive), 1
    return _scale_back(codes, shift, f"{algorithm} codes"), n_iter


@validate_params(
    {
        "X": ["array-like"],
        "dictionary": ["array-like"],
        "algorithm": [StrOptions(set(ALGORITHMS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "n_nonzero_coefs": [Interval(Integral, 1, None, closed="left"), None],
        "positive": ["boolean"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "init": ["array-like", None],
        "return_n_iter": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def sparse_encode(
    X,
    dictionary,
    *,
    algorithm="fista",
    alpha=1.0,
    n_nonzero_coefs=None,
    positive=False,
    max_iter=1000,
    tol=1e-4,
    init=None,
    return_n_iter=False,
):
    r"""Sparse codes of the rows of ``X`` on a fixed dictionary.

    Each sample :math:`x` (a row of ``X``) gets a code :math:`z` with
    :math:`x \approx z D`, where the atoms :math:`d_j` are the rows of ``dictionary``
    (scikit-learn's convention). All samples are coded at once with matrix products.

    =============== =====================================================================
    ``algorithm``   codes
    =============== =====================================================================
    ``"fista"``     :math:`\arg\min_z \tfrac12\lVert x - zD\rVert_2^2 + \alpha\lVert z\rVert_1`
                    by FISTA: Nesterov momentum with adaptive restart, step
                    :math:`1/\lVert DD^\top\rVert_2` (:func:`skdict.ops.fista.fista`);
                    from 128 atoms on, on growing per-sample working sets of atoms,
                    certified on all atoms
                    (:func:`skdict.ops.working_set.working_set_fista`).
                    The objective is *not* divided by the number of samples.
    ``"ista"``      the same problem by ISTA (no momentum); slower, monotone.
    ``"mp"``        ``n_nonzero_coefs`` steps of matching pursuit: pick
                    :math:`\arg\max_j |\hat d_j^\top r|` over the normalised atoms
                    :math:`\hat d_j`, add the projection, update the residual :math:`r`
                    (:func:`skdict.ops.matching_pursuit.matching_pursuit`). An atom may be
                    picked again; its codes add up.
    ``"omp"``       orthogonal matching pursuit with ``n_nonzero_coefs`` atoms: pick
                    :math:`\arg\max_j |d_j^\top r|`, then least squares on all picked
                    atoms (:func:`skdict.ops.omp.orthogonal_matching_pursuit`); equal to
                    :func:`sklearn.linear_model.orthogonal_mp`.
    ``"topk"``      keep the ``n_nonzero_coefs`` largest :math:`|c_j|` of the correlations
                    :math:`c = D x` (with ``positive``: the largest :math:`c_j`, clipped at 0).
    ``"threshold"`` soft threshold of the correlations,
                    :math:`\operatorname{sign}(c)\max(|c| - \alpha, 0)` (with ``positive``:
                    :math:`\max(c - \alpha, 0)`), scikit-learn's ``"threshold"``.
    =============== =====================================================================

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        NumPy or CuPy; the codes follow it (CuPy in, CuPy out).
    dictionary : array of shape (n_components, n_features)
        Atoms as rows; moved to ``X``'s device if needed.
    algorithm : {"fista", "ista", "mp", "omp", "topk", "threshold"}, default="fista"
    alpha : float, default=1.0
        :math:`\alpha \ge 0`: the l1 penalty of fista/ista, the threshold of
        ``"threshold"``; ignored by mp, omp and topk.
    n_nonzero_coefs : int or None, default=None
        Atoms per sample for mp (steps), omp and topk, in ``[1, n_components]``.
        ``None`` means ``max(1, n_features // 10)`` (scikit-learn's default for
        OMP), capped at ``n_components``. Ignored by fista, ista and threshold.
    positive : bool, default=False
        Non-negative codes (fista, ista, mp, topk, threshold). OMP has no
        non-negative variant here: ``positive=True`` with ``"omp"`` is an error.
    max_iter : int, default=1000
        Largest number of fista/ista iterations.
    tol : float, default=1e-4
        fista/ista stop a sample once its duality gap is at most ``tol`` times
        its objective: a certified relative accuracy of the objective
        (:func:`skdict.ops.fista.duality_gap`); 0 runs all ``max_iter``.
    init : array of shape (n_samples, n_components) or None
        Warm start of fista/ista (e.g. the codes for a nearby ``alpha``); an
        error for the other algorithms, which have nothing to warm-start.
    return_n_iter : bool, default=False
        Also return the number of iterations: fista/ista iterations (of the
        slowest sample), pursuit steps for mp/omp, 1 for the one-pass
        topk and threshold.

    Returns
    -------
    codes : array of shape (n_samples, n_components)
        Dense codes, float32 when ``X`` and ``dictionary`` are both float32,
        float64 otherwise.
    n_iter : int
        Only when ``return_n_iter``.

    Raises
    ------
    ValueError
        Bad ``X``, ``dictionary`` or ``init`` (complex, NaN/inf, wrong shape),
        or codes too large for the dtype (e.g. float32 data near 1e38 on atoms
        of norm 1e-5): pass float64 or rescale.

    Warns
    -----
    ConvergenceWarning
        fista/ista (with ``tol > 0``) when some rows stop at ``max_iter`` before
        their duality gap reaches ``tol``: says how many and the worst relative gap.

    Notes
    -----
    Far from unit scale (:math:`\max|X|` or :math:`\max|D|` beyond
    :math:`2^{\pm 16}` in float32, :math:`2^{\pm 128}` in float64) the problem is
    solved on :math:`X' = 2^{-e_X} X`, :math:`D' = 2^{-e_D} D` (exact powers of
    two bringing both maxima into [0.5, 1)) and mapped back by the scaling
    laws: :math:`z^\star(sX, tD, st\alpha) = \tfrac{s}{t} z^\star(X, D, \alpha)`
    for fista, ista, mp and omp, :math:`c(sX, tD) = st\,c(X, D)` for topk and
    threshold. So any finite input gives finite, right codes or a clear error.

    See Also
    --------
    SparseCoder : the same codes as a scikit-learn transformer.
    """
    X = check_matrix(X, "X")
    D = _check_dictionary(X, dictionary)
    codes, n_iter = encode_checked(
        X, D, algorithm=algorithm, alpha=alpha, n_nonzero_coefs=n_nonzero_coefs, positive=positive,
        max_iter=max_iter, tol=tol, init=init,
    )
    return (codes, n_iter) if return_n_iter else codes


def encode_checked(X, D, *, algorithm, alpha, n_nonzero_coefs, positive, max_iter, tol, init, who="sparse_encode",
                   max_iter_name="max_iter", tol_name="tol"):
    """:func:`sparse_encode` of a validated ``X`` and ``D`` (same device): returns ``(codes, n_iter)``.

    ``who``, ``max_iter_name`` and ``tol_name`` name the caller and its parameters
    in the :class:`~sklearn.exceptions.ConvergenceWarning` (e.g. ``SparseCoder``,
    ``transform_max_iter``).
    """
    xp = get_namespace(X)
    dtype = xp.result_type(X.dtype, D.dtype)
    X, D = X.astype(dtype, copy=False), D.astype(dtype, copy=False)
    if positive and algorithm == "omp":
        raise ValueError(
            "positive=True is not available with algorithm='omp'; use 'mp', 'topk' or 'fista' for non-negative codes."
        )
    init = _check_init(init, algorithm, (X.shape[0], D.shape[0]), X)
    k = _check_n_nonzero_coefs(n_nonzero_coefs, algorithm, D)
    return _encode(
        X, D, algorithm=algorithm, alpha=alpha, k=k, positive=positive, max_iter=max_iter, tol=tol, init=init,
        who=who, max_iter_name=max_iter_name, tol_name=tol_name,
    )
