r"""Dictionary learning by alternating FISTA codes and least-squares atoms (DL-FISTA)."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from skdict._array import DEVICES, get_namespace, to_numpy
from skdict._progress import EpochProgress
from skdict.dictionary._base import BaseDictionaryLearner
from skdict.ops.fista import lasso_objective, lipschitz_constant
from skdict.ops.lstsq_dictionary import code_statistics, least_squares_dictionary
from skdict.ops.working_set import working_set_fista

#: In minibatch mode an atom unused for this many consecutive minibatch steps is resampled.
DEAD_AFTER_STEPS = 10


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
    code_max_iter : int, default=200
        FISTA iterations per code step (and in ``transform``).
    code_tol : float, default=1e-4
        FISTA's relative duality gap per sample (see :func:`skdict.ops.fista.fista`).
    random_state : int, RandomState instance or None, default=None
        Seeds the initial dictionary, the minibatch order and the resampling.
    verbose : int, default=0
        Show the objective per alternation/epoch.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where to train; ``"auto"`` follows ``X``.

    Attributes
    ----------
    components_ : array of shape (n_components, n_features)
        Unit-norm atoms :math:`D`.
    n_iter_ : int
        Alternations or epochs run (``partial_fit``: number of calls).
    n_steps_ : int
        Dictionary updates made (alternations or minibatch steps).
    history_ : dict of lists
        Per alternation/epoch: ``"objective"`` (mean per-sample objective at the
        code step), ``"l0"`` (mean nonzero codes per sample), ``"n_resampled"``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` has string feature names.

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
        "code_max_iter": [Interval(Integral, 1, None, closed="left")],
        "code_tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "device": [StrOptions(set(DEVICES))],
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
        code_max_iter=200,
        code_tol=1e-4,
        random_state=None,
        verbose=0,
        device="auto",
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

    # ------------------------------------------------------------- the steps
    def _codes(self, X, D, init=None):
        G = D @ D.T
        codes, _ = working_set_fista(
            X, D, self.alpha, positive=self.positive_code, max_iter=self.code_max_iter, tol=self.code_tol,
            init=init, gram=G, lipschitz=lipschitz_constant(D, gram=G),
        )
        return codes

    def _objective(self, X, D, codes):
        """Mean per-sample objective and mean number of nonzero codes per sample."""
        xp = get_namespace(X)
        objective = float(xp.mean(lasso_objective(X, D, codes, self.alpha)))
        return objective, float(xp.sum(codes != 0)) / X.shape[0]

    def _replacement_atoms(self, X, residual, n_wanted):
        """Up to ``n_wanted`` unit residual directions of samples with ‖r‖ > alpha, drawn ∝ ‖r‖²."""
        xp = get_namespace(X)
        squared = to_numpy(xp.sum(residual * residual, axis=1)).astype(np.float64)
        candidates = np.flatnonzero(squared > self.alpha**2)
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
        Z = xp.zeros((X.shape[0], D.shape[0]), dtype=X.dtype)
        previous = math.inf
        for _ in range(self.max_iter):
            Z = self._codes(X, D, init=Z)
            objective, l0 = self._objective(X, D, Z)
            A, B = code_statistics(Z, X)
            D, norms = self._new_dictionary(A, B, D)
            Z *= norms  # Z D unchanged by the normalisation: a warm start for the next codes
            dead = xp.diagonal(A) == 0
            n_resampled = 0
            if bool(xp.any(dead)):
                n_resampled = self._resample(X, Z, D, xp.flatnonzero(dead))
            self.components_ = D
            self.n_steps_ += 1
            self._record(objective, l0, n_resampled, progress)
            converged = abs(previous - objective) <= self.tol * abs(objective)
            previous = objective
            if converged and n_resampled == 0:
                break
        self._A, self._B = code_statistics(Z, X)

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
        """One code step on ``Xb``, statistics update and dictionary update; returns (objective, l0, n_resampled)."""
        xp = get_namespace(Xb)
        D = self.components_
        Z = self._codes(Xb, D)
        objective, l0 = self._objective(Xb, D, Z)
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
        return objective, l0, n_resampled

    def _fit_minibatch(self, X, progress):
        xp = get_namespace(X)
        n_samples = X.shape[0]
        previous = math.inf
        for _ in range(self.max_iter):
            order = xp.asarray(self._rng.permutation(n_samples))
            objective_sum, l0_sum, n_resampled = 0.0, 0.0, 0
            for start in range(0, n_samples, self.batch_size):
                Xb = X[order[start : start + self.batch_size]]
                objective, l0, resampled = self._minibatch_step(Xb)
                objective_sum += objective * Xb.shape[0]
                l0_sum += l0 * Xb.shape[0]
                n_resampled += resampled
            objective = objective_sum / n_samples
            self._record(objective, l0_sum / n_samples, n_resampled, progress)
            converged = abs(previous - objective) <= self.tol * abs(objective)
            previous = objective
            if converged and n_resampled == 0:
                break

    # --------------------------------------------------------------- public
    def _record(self, objective, l0, n_resampled, progress):
        stats = {"objective": objective, "l0": l0, "n_resampled": n_resampled}
        for key, value in stats.items():
            self.history_[key].append(value)
        self.n_iter_ += 1
        progress.update(stats)

    def _initialize(self, X):
        xp = get_namespace(X)
        self._rng = check_random_state(self.random_state)
        n_components = self._resolve_n_components(X.shape[1])
        self.components_ = self._initial_dictionary(X, n_components, self._rng)
        self._A = xp.zeros((n_components, n_components), dtype=X.dtype)
        self._B = xp.zeros((n_components, X.shape[1]), dtype=X.dtype)
        self._steps_unused = xp.zeros(n_components, dtype=xp.int64)
        self.history_ = {"objective": [], "l0": [], "n_resampled": []}
        self.n_iter_ = 0
        self.n_steps_ = 0

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
        X = self._fit_input(X)
        self._initialize(X)
        progress = EpochProgress(self.max_iter, enabled=self.verbose > 0, description=type(self).__name__)
        with progress:
            if self.batch_size is None:
                self._fit_batch(X, progress)
            else:
                self._fit_minibatch(X, progress)
        return self

    def partial_fit(self, X, y=None):
        """Update the dictionary from one chunk of a stream (minibatch steps of ``batch_size``, or one step on ``X``).

        The running statistics :math:`A, B` carry over between calls, so data that
        does not fit in memory can be fed chunk by chunk.
        """
        if not hasattr(self, "components_"):
            self._validate_params()
            X = self._fit_input(X)
            self._initialize(X)
        else:
            X = self._model_input(X)
        step = X.shape[0] if self.batch_size is None else self.batch_size
        objective_sum, l0_sum, n_resampled = 0.0, 0.0, 0
        for start in range(0, X.shape[0], step):
            Xb = X[start : start + step]
            objective, l0, resampled = self._minibatch_step(Xb)
            objective_sum += objective * Xb.shape[0]
            l0_sum += l0 * Xb.shape[0]
            n_resampled += resampled
        self._record(objective_sum / X.shape[0], l0_sum / X.shape[0], n_resampled, EpochProgress(1, enabled=False, description=""))
        return self

    def _encode(self, X):
        return self._codes(X, self.components_)
