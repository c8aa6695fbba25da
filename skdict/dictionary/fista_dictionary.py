r"""Dictionary learning by alternating FISTA codes and least-squares atoms (DL-FISTA)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from skdict._array import DEVICES, get_namespace, to_numpy
from skdict._guards import keeps_state_on_failure, warn_not_converged
from skdict._history import CORE_KEYS, append_record, call_callback, empty_history
from skdict._progress import EpochProgress
from skdict.coding._encode import _scale_back, _unit_scale_exponents
from skdict.dictionary._base import BaseDictionaryLearner, encode_in_blocks, total_variance
from skdict.ops.fista import lasso_objective, lipschitz_constant
from skdict.ops.lstsq_dictionary import code_statistics, least_squares_dictionary
from skdict.ops.working_set import working_set_fista
from skdict.ops.gram import gram_matrix

#: In minibatch mode an atom unused for this many consecutive minibatch steps is resampled.
DEAD_AFTER_STEPS = 10
#: ``code_max_iter="auto"``: at least this many FISTA iterations per code step ...
AUTO_CODE_MAX_ITER = 1000
#: ... and this many per atom. Rows stop on their own duality gap, so the cap only binds on
#: ill-conditioned dictionaries, whose number of iterations grows with the coherence of
#: overcomplete atoms: 1024 atoms learned on 256 ReLU units of an MLP needed 3240 iterations
#: to a relative gap of 1e-4, where the former fixed cap of 200 left 98% of the rows uncertified.
AUTO_CODE_ITER_PER_ATOM = 4


def check_no_overflow(step, X, estimator):
    """Raise a ValueError naming ``X``'s scale when the objective of a code step overflowed ``X``'s dtype."""
    if not math.isfinite(step.objective):
        xp = get_namespace(X)
        raise ValueError(
            f"{type(estimator).__name__}: the lasso objective of X overflows {X.dtype} "
            f"(max |X| = {float(xp.max(xp.abs(X))):.3g}); rescale X (e.g. StandardScaler) before fitting."
        )


def unit_scale_exponent(X):
    r"""The power of two :math:`e` such that :math:`2^{-e} X` is at unit scale for a lasso on unit-norm atoms.

    0 (no rescaling: the problem as given) when :math:`\max|X|` is within the bound
    of :func:`skdict.coding._encode._unit_scale_exponents` (:math:`2^{\pm 16}` in
    float32, :math:`2^{\pm 128}` in float64), else the exponent of :math:`\max|X|`.
    Unit-norm atoms are always within that bound, so only ``X`` is rescaled.
    """
    return _unit_scale_exponents(X, X[:0])[0]


def scaled_penalty(alpha, exponent, dtype):
    r"""The penalty :math:`2^{-e}\alpha` of the data :math:`2^{-e}X`, by the lasso's scaling law.

    :math:`z^\star(sX, D, s\alpha) = s\,z^\star(X, D, \alpha)`. A penalty beyond the
    dtype's largest number is capped there: it exceeds every correlation of unit-scale
    data, so the codes are zero either way.
    """
    try:
        alpha = math.ldexp(alpha, -exponent)
    except OverflowError:
        alpha = math.inf
    return min(alpha, float(np.finfo(dtype).max))


def auto_code_max_iter(n_components):
    """The FISTA iteration cap of ``code_max_iter="auto"`` for a dictionary of ``n_components`` atoms."""
    return max(AUTO_CODE_MAX_ITER, AUTO_CODE_ITER_PER_ATOM * n_components)


@dataclass
class CodeStep:
    r"""What one code step (or epoch of steps) measured, summed over its rows.

    The sums behind a ``history_`` record (:mod:`skdict._history`): the objective, the squared
    reconstruction error :math:`\sum_n \lVert x_n - z_n D\rVert^2`, the nonzero codes, and which
    latents fired; plus the rows whose duality-gap certificate failed.
    """

    n_samples: int = 0
    objective: float = 0.0  # sum of the per-sample objectives
    n_nonzero: int = 0
    n_uncertified: int = 0  # rows whose relative duality gap is above code_tol (they ran out of code_max_iter)
    squared_error: float = 0.0  # sum over rows of ||x - zD||^2
    fired: object = None  # (n_components,) bool array: nonzero on some row; None when not tracked

    @classmethod
    def of_codes(cls, X, codes, D, *, objective, n_uncertified=0):
        """The sums of one block: rows ``X``, their ``codes`` on atoms ``D``, and their summed ``objective``."""
        xp = get_namespace(X, codes, D)
        residual = X - codes @ D
        return cls(X.shape[0], objective, int(xp.count_nonzero(codes)), n_uncertified,
                   float(xp.sum(residual * residual)), xp.any(codes != 0, axis=0))

    def add(self, other):
        self.n_samples += other.n_samples
        self.objective += other.objective
        self.n_nonzero += other.n_nonzero
        self.n_uncertified += other.n_uncertified
        self.squared_error += other.squared_error
        if other.fired is not None:
            self.fired = other.fired if self.fired is None else self.fired | other.fired

    def reconstruction_record(self, variance):
        """``explained_variance`` (against the rows' total ``variance``), ``l0`` and, when tracked, ``dead_fraction``."""
        record = {
            "explained_variance": 1.0 - self.squared_error / variance if variance > 0 else math.nan,
            "l0": self.n_nonzero / self.n_samples,
        }
        if self.fired is not None:
            xp = get_namespace(self.fired)
            record["dead_fraction"] = 1.0 - int(xp.count_nonzero(self.fired)) / self.fired.shape[0]
        return record


def _row_norms(D):
    xp = get_namespace(D)
    return xp.sqrt(xp.sum(D * D, axis=1))


class FISTADictionaryLearning(BaseDictionaryLearner):
    r"""Dictionary learning by alternating FISTA codes and the least-squares dictionary.

    Minimises over codes :math:`Z` and unit-norm atoms :math:`D` (rows)

    .. math::

        \frac{1}{n}\sum_{n} \tfrac12 \lVert x_n - z_n D \rVert_2^2 + \alpha \lVert z_n \rVert_1

    by alternating two exact-ish steps (block coordinate descent):

    1. **codes**: :math:`Z \leftarrow` FISTA on the current :math:`D`, warm-started
       from the previous codes of the same samples (batch mode); from 128 atoms on
       per-sample working sets (:func:`skdict.ops.working_set.working_set_fista`),
       certified on all atoms like plain FISTA (:func:`skdict.ops.fista.fista`);
    2. **dictionary**: :math:`D \leftarrow (A + \varepsilon I)^{-1} B` with
       :math:`A = Z^\top Z`, :math:`B = Z^\top X`
       (:func:`skdict.ops.lstsq_dictionary.least_squares_dictionary`), then every
       atom is scaled to unit norm and its codes by the inverse factor, so
       :math:`Z D` is unchanged.

    **Dead atoms** (no nonzero code in the last code step; in minibatch mode, in
    the last 10 minibatch steps) are resampled: the new atom is the residual
    direction :math:`r_n / \lVert r_n\rVert` of a sample drawn with probability
    :math:`\propto \lVert r_n\rVert^2` among those with :math:`\lVert r_n\rVert > \alpha`
    (only those can switch the new atom on); if there are none, the atom is kept.

    **Minibatch mode** (``batch_size`` an int, and :meth:`partial_fit`) keeps running
    sufficient statistics as in Mairal et al. (2010):
    :math:`A_t = \beta_t A_{t-1} + Z_t^\top Z_t`, :math:`B_t = \beta_t B_{t-1} + Z_t^\top X_t`,
    with :math:`\beta_t = (1 - 1/t)^\rho` at step :math:`t` (``forget_factor`` = :math:`\rho`;
    :math:`\rho = 0` never forgets, larger :math:`\rho` forgets the codes of early,
    poorer dictionaries faster). Codes of each minibatch start from zero.

    Parameters
    ----------
    n_components : int or None, default=None
        Number of atoms; ``None``: as many as ``dict_init`` has, else ``n_features``.
    alpha : float, default=1.0
        :math:`\alpha`, the l1 penalty of the codes (per sample, not divided by n).
    max_iter : int, default=100
        Alternations (batch mode) or epochs (minibatch mode).
    tol : float, default=1e-4
        Stop when the mean objective decreased by at most ``tol`` relative over
        the last alternation/epoch (and no atom was resampled).
    batch_size : int or None, default=None
        ``None``: batch mode on all of ``X``; an int: minibatch mode.
    positive_code : bool, default=False
        Non-negative codes.
    dict_init : array-like of shape (n_components, n_features) or None
        Initial atoms as rows (e.g. an SAE's ``components_``); rescaled to unit
        norm. ``None``: distinct random rows of ``X``.
    ridge : float, default=1e-6
        Relative ridge :math:`r`: :math:`\varepsilon = r\,\operatorname{tr}(A)/n_\text{components}`.
    forget_factor : float, default=10.0
        :math:`\rho` of the minibatch statistics (unused in batch mode). With
        :math:`\rho = 10` the statistics remember about the last :math:`t/10`
        steps; on the Linear Representation Bench (96 features in 48 dims)
        10 epochs recovered 88% of the features with :math:`\rho = 1` and 100%
        with :math:`\rho = 10`.
    code_max_iter : int or "auto", default="auto"
        Most FISTA iterations per sample in one code step (and in ``transform``).
        Every sample stops as soon as its relative duality gap is at most
        ``code_tol``, so the cap only binds on ill-conditioned dictionaries;
        ``"auto"`` is ``max(1000, 4 * n_components)``, as coherent overcomplete
        dictionaries need more iterations. Samples still uncertified when the cap
        is reached raise a :class:`~sklearn.exceptions.ConvergenceWarning` (in
        ``transform``, ``score`` and at the end of ``fit``).
    code_tol : float, default=1e-4
        FISTA's relative duality gap per sample (see :func:`skdict.ops.fista.fista`):
        the codes of ``transform`` are certified to solve the lasso on
        ``components_`` to this relative accuracy of the objective.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial dictionary, the minibatch order and the resampling.
        The same seed gives a bitwise identical model for a fixed thread count
        and backend; across thread settings results agree to rounding
        (see :ref:`reproducibility`).
    verbose : int, default=0
        Show the objective per alternation/epoch.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where to train; ``"auto"`` follows ``X``.
    callback : callable or None, default=None
        Called after every alternation (batch mode), epoch (minibatch mode) or ``partial_fit`` call
        as ``callback(estimator, record)``: ``record`` is the dict just appended to ``history_``
        plus ``"epoch"`` (1-based). Returning ``True`` ends ``fit`` there, with no
        ConvergenceWarning for the ``max_iter`` left (see :mod:`skdict._history`).

    Attributes
    ----------
    components_ : array of shape (n_components, n_features)
        Unit-norm atoms :math:`D`.
    n_iter_ : int
        Alternations or epochs run (``partial_fit``: number of calls).
    n_steps_ : int
        Dictionary updates made (alternations or minibatch steps).
    history_ : dict of lists
        Per alternation/epoch (:mod:`skdict._history`), all measured at the code step, on the
        atoms the codes were solved for (the dictionary update that follows changes the codes a
        later ``transform`` gives): ``"loss"`` (mean per-sample objective), ``"explained_variance"``
        of :math:`ZD` against the rows coded, ``"l0"`` (mean nonzero codes per sample),
        ``"dead_fraction"`` (atoms with no nonzero code in the alternation/epoch, before
        resampling); and ``"objective"`` (the same as ``"loss"``, kept for compatibility),
        ``"n_resampled"``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` has string feature names.

    Warns
    -----
    sklearn.exceptions.ConvergenceWarning
        ``fit``: when ``max_iter`` ends before the objective changed by at most
        ``tol``, or when the last code step left samples uncertified;
        ``transform``/``score``: when samples' codes ran out of ``code_max_iter``.

    Notes
    -----
    **Any finite scale.** Data whose :math:`\max|X|` is beyond :math:`2^{\pm 16}`
    (float32) or :math:`2^{\pm 128}` (float64) is fitted as :math:`2^{-e}X` with penalty
    :math:`2^{-e}\alpha` (exact powers of two, as :func:`~skdict.sparse_encode` does) by
    the lasso's scaling law :math:`z^\star(sX, D, s\alpha) = s\,z^\star(X, D, \alpha)`:
    the atoms are those of the rescaled problem and ``transform`` scales the codes back,
    so no square over- or underflows. ``history_["objective"]`` is reported at ``X``'s
    scale (0 or inf where that is beyond the float range).

    Codes are computed a block of rows at a time
    (:data:`skdict.dictionary._base.CODE_BLOCK_ELEMENTS`), so the memory of
    ``transform`` beyond its output, and of a batch fit beyond the codes
    :math:`Z` it keeps for warm starts, is O(block x ``n_components``).

    Examples
    --------
    >>> from skdict import FISTADictionaryLearning
    >>> from skdict.datasets import make_linear_representation_bench
    >>> X, features, _ = make_linear_representation_bench(2000, 32, 16, sparsity=0.95, max_coherence=0.5, random_state=0)
    >>> model = FISTADictionaryLearning(32, alpha=0.05, random_state=0).fit(X)
    >>> model.transform(X).shape
    (2000, 32)
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "positive_code": ["boolean"],
        "dict_init": ["array-like", None],
        "ridge": [Interval(Real, 0, None, closed="left")],
        "forget_factor": [Interval(Real, 0, None, closed="left")],
        "code_max_iter": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "code_tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "device": [StrOptions(set(DEVICES))],
        "callback": [callable, None],
    }

    def __init__(
        self,
        n_components=None,
        *,
        alpha=1.0,
        max_iter=100,
        tol=1e-4,
        batch_size=None,
        positive_code=False,
        dict_init=None,
        ridge=1e-6,
        forget_factor=10.0,
        code_max_iter="auto",
        code_tol=1e-4,
        random_state=None,
        verbose=0,
        device="auto",
        callback=None,
    ):
        self.n_components = n_components
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.batch_size = batch_size
        self.positive_code = positive_code
        self.dict_init = dict_init
        self.ridge = ridge
        self.forget_factor = forget_factor
        self.code_max_iter = code_max_iter
        self.code_tol = code_tol
        self.random_state = random_state
        self.verbose = verbose
        self.device = device
        self.callback = callback

    # ------------------------------------------------------------- the steps
    def _code_max_iter(self, n_components):
        return auto_code_max_iter(n_components) if self.code_max_iter == "auto" else self.code_max_iter

    def _fit_alpha(self, dtype):
        """The penalty of the fit's rescaled data :math:`2^{-e}X` (:func:`scaled_penalty`, ``e = _exponent``)."""
        return scaled_penalty(self.alpha, self._exponent, dtype)

    def _code_step(self, X, D, *, alpha=None, init=None, out=None, estimator=None):
        r"""Lasso codes of ``X`` on ``D`` by working-set FISTA, a block of rows at a time, each row certified.

        ``alpha`` (default ``self.alpha``) is the penalty of this ``X``: the fit passes
        the one of its rescaled data (:meth:`_fit_alpha`).

        Every block is warm-started from ``init`` (which may be ``out`` itself: a
        block is read before it is overwritten). A row is certified when its
        relative duality gap is at most ``code_tol``
        (:class:`skdict.ops.fista.LassoInfo`); the others ran out of ``code_max_iter``.

        Returns
        -------
        codes : array of shape (n_samples, n_components)
        step : CodeStep

        Raises
        ------
        ValueError
            When the objective overflows ``X``'s dtype (``estimator``, default this
            learner, is named in the message).
        """
        xp = get_namespace(X)
        alpha = self.alpha if alpha is None else alpha
        G = gram_matrix(D)
        L = lipschitz_constant(D, gram=G)
        max_iter, step = self._code_max_iter(D.shape[0]), CodeStep()

        def encode_block(rows):
            Xb = X[rows]
            codes, info = working_set_fista(
                Xb, D, alpha, positive=self.positive_code, max_iter=max_iter, tol=self.code_tol,
                init=None if init is None else init[rows], gram=G, lipschitz=L, return_info=True,
            )
            objective = float(xp.sum(lasso_objective(Xb, D, codes, alpha)))
            step.add(CodeStep.of_codes(Xb, codes, D, objective=objective, n_uncertified=info.n_unconverged))
            return codes, info.n_unconverged

        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, as one clear error
            codes, _ = encode_in_blocks(X, D.shape[0], encode_block, out=out)
        check_no_overflow(step, X, estimator or self)
        return codes, step

    def _budget_fix(self):
        cap = self._code_max_iter(self.components_.shape[0])
        return (
            f"relative duality gap above code_tol={self.code_tol:g} after code_max_iter={cap} FISTA iterations",
            f"raise code_max_iter (now {self.code_max_iter!r}) or code_tol",
        )

    def _replacement_atoms(self, X, residual, n_wanted):
        """Up to ``n_wanted`` unit residual directions of samples with ‖r‖ > alpha, drawn ∝ ‖r‖² (``X`` rescaled)."""
        xp = get_namespace(X)
        alpha = self._fit_alpha(X.dtype)
        squared = to_numpy(xp.sum(residual * residual, axis=1)).astype(np.float64)
        candidates = np.flatnonzero(squared > alpha * alpha)  # not alpha**2: a float power raises on overflow
        n_new = min(n_wanted, candidates.size)
        if n_new == 0:
            return None
        weights = squared[candidates] / squared[candidates].sum()
        picked = np.sort(self._rng.choice(candidates, size=n_new, replace=False, p=weights))
        rows = residual[xp.asarray(picked)]
        return rows / xp.sqrt(xp.sum(rows * rows, axis=1, keepdims=True))

    def _new_dictionary(self, A, B, previous):
        """Least-squares atoms, unit-normalised; zero atoms keep the previous ones. Returns (D, norms)."""
        xp = get_namespace(A)
        D = least_squares_dictionary(A, B, self.ridge)
        norms = _row_norms(D)
        live = norms > 0
        D = xp.where(live[:, None], D / xp.where(live, norms, 1)[:, None], previous)
        return D, xp.where(live, norms, 1)

    # ------------------------------------------------------------ batch mode
    def _fit_batch(self, X, progress):
        xp = get_namespace(X)
        D = self.components_
        variance = total_variance(X)
        Z = xp.zeros((X.shape[0], D.shape[0]), dtype=X.dtype)
        previous = math.inf
        converged = False
        for _ in range(self.max_iter):
            Z, step = self._code_step(X, D, alpha=self._fit_alpha(X.dtype), init=Z, out=Z)
            A, B = code_statistics(Z, X)
            D, norms = self._new_dictionary(A, B, D)
            Z *= norms  # Z D unchanged by the normalisation: a warm start for the next codes
            dead = xp.diagonal(A) == 0
            n_resampled = 0
            if bool(xp.any(dead)):
                n_resampled = self._resample(X, Z, D, xp.flatnonzero(dead))
            self.components_ = D
            self.n_steps_ += 1
            objective, stop = self._record(step, n_resampled, variance, progress)
            converged = stop or (abs(previous - objective) <= self.tol * abs(objective) and n_resampled == 0)
            previous = objective
            if converged:
                break
        self._A, self._B = code_statistics(Z, X)
        return converged, step

    def _resample(self, X, Z, D, dead, statistics=None):
        """Replace atoms ``dead`` of ``D`` in place (codes zeroed; statistics reset to reproduce them)."""
        residual = X - Z @ D
        new = self._replacement_atoms(X, residual, dead.shape[0])
        if new is None:
            return 0
        dead = dead[: new.shape[0]]
        D[dead] = new
        Z[:, dead] = 0
        if statistics is not None:
            A, B = statistics
            xp = get_namespace(A)
            weight = float(xp.trace(A)) / A.shape[0] or 1.0
            A[dead, :] = 0
            A[:, dead] = 0
            A[dead, dead] = weight
            B[dead] = weight * new
        return int(new.shape[0])

    # -------------------------------------------------------- minibatch mode
    def _minibatch_step(self, Xb):
        """One code step on ``Xb``, statistics update and dictionary update; returns (CodeStep, n_resampled)."""
        xp = get_namespace(Xb)
        D = self.components_
        Z, step = self._code_step(Xb, D, alpha=self._fit_alpha(Xb.dtype))
        self.n_steps_ += 1
        forget = (1.0 - 1.0 / self.n_steps_) ** self.forget_factor
        A, B = code_statistics(Z, Xb)
        self._A = forget * self._A + A
        self._B = forget * self._B + B
        D, _ = self._new_dictionary(self._A, self._B, D)
        used = xp.any(Z != 0, axis=0)
        self._steps_unused = xp.where(used, 0, self._steps_unused + 1)
        dead = xp.flatnonzero(self._steps_unused >= DEAD_AFTER_STEPS)
        n_resampled = 0
        if dead.shape[0] > 0:
            n_resampled = self._resample(Xb, Z, D, dead, statistics=(self._A, self._B))
            self._steps_unused[dead[:n_resampled]] = 0
        self.components_ = D
        return step, n_resampled

    def _minibatch_steps(self, X, order, step_size):
        """Minibatch steps over the rows ``order`` of ``X`` (``None``: in order); returns (CodeStep, n_resampled)."""
        total, n_resampled = CodeStep(), 0
        for start in range(0, X.shape[0], step_size):
            Xb = X[start : start + step_size] if order is None else X[order[start : start + step_size]]
            step, resampled = self._minibatch_step(Xb)
            total.add(step)
            n_resampled += resampled
        return total, n_resampled

    def _fit_minibatch(self, X, progress):
        xp = get_namespace(X)
        previous, converged = math.inf, False
        variance = total_variance(X)
        for _ in range(self.max_iter):
            order = xp.asarray(self._rng.permutation(X.shape[0]))
            step, n_resampled = self._minibatch_steps(X, order, self.batch_size)
            objective, stop = self._record(step, n_resampled, variance, progress)
            converged = stop or (abs(previous - objective) <= self.tol * abs(objective) and n_resampled == 0)
            previous = objective
            if converged:
                break
        return converged, step

    # --------------------------------------------------------------- public
    def _record(self, step, n_resampled, variance, progress):
        """Append one alternation/epoch to ``history_`` and call ``callback``.

        ``variance`` is the total variance of the rows the step coded (at the fit's scale).
        The objective goes to ``history_`` (as ``loss`` and ``objective``) at ``X``'s own scale,
        :math:`4^{e}` times the rescaled one (``e = _exponent``; 0 or inf beyond the float range).

        Returns
        -------
        objective : float
            The mean objective at the fit's (rescaled) scale.
        stop : bool
            Whether the callback asked the fit to stop.
        """
        objective = step.objective / step.n_samples
        try:
            unscaled = math.ldexp(objective, 2 * self._exponent)
        except OverflowError:
            unscaled = math.inf
        stats = {"loss": unscaled, **step.reconstruction_record(variance), "objective": unscaled,
                 "n_resampled": n_resampled}
        record = append_record(self, stats)
        self.n_iter_ += 1
        progress.update(stats)
        return objective, call_callback(self, record)

    def _warn_fit_budgets(self, converged, last_step, unit):
        """ConvergenceWarnings for a fit whose ``max_iter`` or last code step ran out of budget."""
        if not converged:
            self._warn_max_iter(unit, "objective")
        if last_step.n_uncertified:
            what, fix = self._budget_fix()
            warn_not_converged(
                self, f"the last code step of fit left {last_step.n_uncertified} of {last_step.n_samples} samples "
                f"uncertified ({what})", fix, stacklevel=4,
            )

    def _initialize(self, X):
        """Initial state for ``X``; returns ``X`` rescaled to :math:`2^{-e}X` (``e = _exponent``, kept for later chunks)."""
        xp = get_namespace(X)
        self._rng = check_random_state(self.random_state)
        n_components = self._resolve_n_components(X.shape[1])
        self._exponent = unit_scale_exponent(X)
        X = self._rescaled(X)
        self.components_ = self._initial_dictionary(X, n_components, self._rng)
        self._A = xp.zeros((n_components, n_components), dtype=X.dtype)
        self._B = xp.zeros((n_components, X.shape[1]), dtype=X.dtype)
        self._steps_unused = xp.zeros(n_components, dtype=xp.int64)
        self.history_ = empty_history(*CORE_KEYS, "objective", "n_resampled")
        self.n_iter_ = 0
        self.n_steps_ = 0
        return X

    def _rescaled(self, X):
        """:math:`2^{-e}X` (exact), the data the fit works on; ``X`` itself when ``e = 0``."""
        return X if self._exponent == 0 else get_namespace(X).ldexp(X, -self._exponent)

    @keeps_state_on_failure
    def fit(self, X, y=None):
        """Learn the dictionary from ``X`` (batch mode, or minibatch epochs when ``batch_size`` is set).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            NumPy or CuPy.
        y : ignored

        Returns
        -------
        self
        """
        self._validate_params()
        X = self._initialize(self._fit_input(X))
        progress = EpochProgress(self.max_iter, enabled=self.verbose > 0, description=type(self).__name__)
        with progress:
            if self.batch_size is None:
                converged, last_step = self._fit_batch(X, progress)
            else:
                converged, last_step = self._fit_minibatch(X, progress)
        self._warn_fit_budgets(converged, last_step, "alternations" if self.batch_size is None else "epochs")
        return self

    @keeps_state_on_failure
    def partial_fit(self, X, y=None):
        """Update the dictionary from one chunk of a stream (minibatch steps of ``batch_size``, or one step on ``X``).

        The running statistics :math:`A, B` carry over between calls, so data that
        does not fit in memory can be fed chunk by chunk.
        """
        if not hasattr(self, "components_"):
            self._validate_params()
            X = self._initialize(self._fit_input(X))
        else:
            X = self._rescaled(self._model_input(X))
        step, n_resampled = self._minibatch_steps(X, None, X.shape[0] if self.batch_size is None else self.batch_size)
        self._record(step, n_resampled, total_variance(X), EpochProgress(1, enabled=False, description=""))
        self._warn_fit_budgets(True, step, "")
        return self

    def _encode(self, X):
        r"""Codes solved on :math:`2^{-e}X` with :math:`2^{-e}\alpha` (:func:`unit_scale_exponent`), scaled back exactly."""
        D, xp = self.components_, get_namespace(X)
        exponent = unit_scale_exponent(X)
        if exponent:
            X = xp.ldexp(X, -exponent)
        codes, step = self._code_step(X, D, alpha=scaled_penalty(self.alpha, exponent, X.dtype))
        return _scale_back(codes, exponent, "codes"), step.n_uncertified
