r"""Dictionary learning by Adam on softplus-parametrised codes and unit-norm atoms (a baseline)."""

from __future__ import annotations

import math
from numbers import Integral, Real

from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

import numpy as np

from skdict._array import DEVICES, get_namespace
from skdict._guards import DivergenceGuard, keeps_state_on_failure
from skdict._history import append_record, call_callback, empty_history
from skdict._progress import EpochProgress
from skdict._validation import check_params_read
from skdict.coding._encode import _scale_back
from skdict.dictionary._base import BaseDictionaryLearner, encode_in_blocks, total_variance
from skdict.dictionary.fista_dictionary import CodeStep, scaled_penalty
from skdict.exceptions import TrainingDivergedError
from skdict.ops.adam import Adam
from skdict.ops.atoms import normalize_rows, remove_parallel_component
from skdict.ops.scaling import max_exponent

#: Initial pre-softplus code, softplus(-3) ~ 0.049: small positive codes everywhere.
_INITIAL_PRE_CODE = -3.0
#: The fit's parameters (codes and atoms) are checkpointed for the divergence guard every this many steps.
CHECKPOINT_EVERY = 10
#: Data whose RMS is within :math:`2^{\pm 8}` is trained as given; beyond, on :math:`2^{-e}X` at unit RMS.
#: Adam moves a pre-code by about ``learning_rate`` per step, so codes of scale :math:`s` take ~:math:`s/\eta`
#: steps and the loss changes by ~:math:`\eta/s` relative per step: at 1e10 the fit "converged" after 2 steps
#: with all-zero codes. Within the bound the defaults work (and results are those of the data as given).
RMS_EXPONENT_BOUND = 8


def rms_exponent(X, bound=RMS_EXPONENT_BOUND):
    r"""The power of two :math:`e` nearest the root mean square of ``X``, or 0 when :math:`|e| \le` ``bound``.

    :math:`2^{-e}X` has an RMS in :math:`[2^{-1/2}, 2^{1/2})`; a zero ``X`` gets 0. The mean
    square is taken of :math:`2^{-m}X` (:math:`m` the exponent of :math:`\max|X|`), so no
    square overflows or underflows at any finite scale.
    """
    xp = get_namespace(X)
    m = int(max_exponent(X))
    unit = xp.ldexp(X, -m)
    mean_square = float(xp.mean(unit * unit))
    e = 0 if mean_square == 0 else m + round(0.5 * math.log2(mean_square))
    return e if abs(e) > bound else 0


def softplus(V):
    """:math:`\\log(1 + e^v)`, computed without overflow."""
    xp = get_namespace(V)
    return xp.logaddexp(0.0, V)


def sigmoid(V):
    """:math:`1 / (1 + e^{-v})` (the derivative of softplus), computed without overflow."""
    xp = get_namespace(V)
    return 0.5 * (xp.tanh(0.5 * V) + 1.0)


def softplus_lasso_losses(X, Z, D, alpha):
    r"""Per-sample loss :math:`\tfrac12\lVert x_n - z_n D\rVert^2 + \alpha \sum_j z_{nj}` of positive codes ``Z``, shape (n_samples,)."""
    xp = get_namespace(X, Z, D)
    residual = Z @ D - X
    return 0.5 * xp.sum(residual * residual, axis=1) + alpha * xp.sum(Z, axis=1)


def softplus_lasso_loss_and_grads(X, pre_codes, D, alpha, *, per_sample=False, sums=None):
    r"""Summed loss :math:`\sum_n \tfrac12\lVert x_n - z_n D\rVert^2 + \alpha \sum_j z_{nj}`, :math:`z = \operatorname{softplus}(\tilde z)`, and its gradients.

    With :math:`R = zD - X`: :math:`\partial/\partial z = R D^\top + \alpha`,
    :math:`\partial/\partial \tilde z = (R D^\top + \alpha) \odot \sigma(\tilde z)`,
    :math:`\partial/\partial D = z^\top R`. (The l1 norm is the plain sum as :math:`z > 0`.)

    Parameters
    ----------
    sums : CodeStep or None
        When given (with ``per_sample=False``), the loss, squared error and nonzero codes of
        this evaluation are added to it (a ``history_`` record, :mod:`skdict._history`).

    Returns
    -------
    loss : float, or array of shape (n_samples,) when ``per_sample``
        The summed loss, or each sample's (:func:`softplus_lasso_losses`).
    grad_pre_codes : array like ``pre_codes``
    grad_D : array like ``D``
    """
    xp = get_namespace(X, pre_codes, D)
    Z = softplus(pre_codes)
    residual = Z @ D - X
    if per_sample:
        loss = 0.5 * xp.sum(residual * residual, axis=1) + alpha * xp.sum(Z, axis=1)
    else:
        squared_error = float(xp.sum(residual * residual))
        loss = 0.5 * squared_error + alpha * float(xp.sum(Z))
        if sums is not None:
            sums.add(CodeStep(X.shape[0], loss, int(xp.count_nonzero(Z)), squared_error=squared_error))
    grad_codes = residual @ D.T
    grad_codes += alpha
    grad_codes *= sigmoid(pre_codes)
    return loss, grad_codes, Z.T @ residual


class SoftplusAdamDictionaryLearning(BaseDictionaryLearner):
    r"""Joint Adam on softplus codes and unit-norm atoms: a gradient baseline for dictionary learning.

    Minimises :math:`\sum_n \tfrac12\lVert x_n - z_n D\rVert_2^2 + \alpha\lVert z_n\rVert_1`
    with non-negative codes :math:`z_n = \operatorname{softplus}(\tilde z_n)` and
    unit-norm atoms (rows of :math:`D`). Every step is one full-batch Adam step
    (:class:`skdict.ops.adam.Adam`) on :math:`\tilde Z` and :math:`D`, with
    hand-written gradients (:func:`softplus_lasso_loss_and_grads`); the atom
    gradient is projected on the sphere's tangent space and the atoms are
    renormalised after the step. The codes' gradient is that of each sample's
    own loss; the dictionary's is averaged over samples (Adam is invariant to
    the scale, up to its :math:`\epsilon`).

    Softplus codes are never exactly zero; they become small (about
    :math:`\alpha`-shrunk) where a plain lasso would give zero. ``transform``
    runs the same Adam iterations on :math:`\tilde z` for the new samples with
    :math:`D` fixed, from the same start (:math:`\tilde z = -3`), for
    ``transform_max_iter`` steps, so it is deterministic and per sample; each
    sample keeps its iterate of lowest loss, so its codes are never worse than the
    start's, even with a ``learning_rate`` that makes Adam diverge (a
    :class:`~sklearn.exceptions.ConvergenceWarning` then says so).
    ``transform`` re-checks the parameters it reads (``alpha``, ``learning_rate``,
    ``tol``, ``transform_max_iter``), which ``set_params`` may change after ``fit``.

    **Scale.** Adam moves a pre-code by about ``learning_rate`` per step, so the
    defaults suit data of RMS near 1. Data whose RMS is beyond :math:`2^{\pm 8}` is
    fitted as :math:`2^{-e}X` (RMS near 1) with penalty :math:`2^{-e}\alpha`, the
    lasso's scaling law :math:`z^\star(sX, D, s\alpha) = s\,z^\star(X, D, \alpha)`, and
    codes are scaled back exactly: ``fit(2**k * X, alpha=2**k * a)`` learns the same
    atoms for every such :math:`k`. ``history_`` is at ``X``'s scale.

    ``transform`` works on a block of rows at a time
    (:data:`skdict.dictionary._base.CODE_BLOCK_ELEMENTS`): its memory beyond the
    output is O(block x ``n_components``), and a sample's codes do not depend on
    the other samples of the call.

    Parameters
    ----------
    n_components : int or None, default=None
        Number of atoms; ``None``: as many as ``dict_init`` has, else ``n_features``.
    alpha : float, default=0.1
        l1 penalty :math:`\alpha` per sample.
    learning_rate : float, default=0.05
        Adam step size for :math:`\tilde Z`; the atoms' step is ``learning_rate / 10``.
    max_iter : int, default=1000
        Adam steps in ``fit`` (full batch; slow to converge, it is a baseline).
    tol : float, default=1e-6
        Stop when the loss changed by at most ``tol`` relative over one step.
        In ``transform``, a sample whose own loss still changed by more than
        ``tol`` relative at its last step is counted as not converged.
    transform_max_iter : int, default=300
        Adam steps on the codes in ``transform`` (all of them are run).
    dict_init : array-like of shape (n_components, n_features) or None
        Initial atoms (rescaled to unit norm); ``None``: random rows of ``X``.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial dictionary. Bitwise reproducible for a fixed thread
        count and backend (see :ref:`reproducibility`).
    verbose : int, default=0
    device : {"auto", "cpu", "cuda"}, default="auto"
    callback : callable or None, default=None
        Called after every Adam step as ``callback(estimator, record)``: ``record`` is the dict
        just appended to ``history_`` plus ``"epoch"`` (the step, 1-based). Returning ``True``
        ends ``fit`` there, with no ConvergenceWarning (see :mod:`skdict._history`).

    Attributes
    ----------
    components_ : array of shape (n_components, n_features)
    n_iter_ : int
    history_ : dict of lists
        Per Adam step (one full-batch step is an epoch, :mod:`skdict._history`), at the
        parameters before the step: ``"loss"`` (mean per-sample loss), ``"explained_variance"``
        of :math:`ZD` against ``X``, ``"l0"`` (nonzero codes per sample: softplus codes are
        never exactly zero, so it is ``n_components`` unless codes underflow). No
        ``"dead_fraction"``: a softplus code cannot die.
    n_features_in_ : int

    Raises
    ------
    skdict.exceptions.TrainingDivergedError
        From ``fit``, when the loss turns non-finite or exceeds 100 times the loss
        of all-zero codes, :math:`\frac{1}{2n}\sum_n\lVert x_n\rVert^2`
        (:class:`skdict._guards.DivergenceGuard`, checked every step); the atoms of
        the last checkpoint (every 10 steps) with a sane loss are kept as
        ``components_``. Lower ``learning_rate``.

    Warns
    -----
    sklearn.exceptions.ConvergenceWarning
        ``fit``: ``max_iter`` steps ended before the loss changed by at most
        ``tol``. ``transform``/``score``: samples whose loss still changed by more
        than ``tol`` at the last of ``transform_max_iter`` steps (Adam with a
        constant step settles slowly: this baseline usually needs more steps
        than the default for ``tol=1e-6``).
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "transform_max_iter": [Interval(Integral, 1, None, closed="left")],
        "dict_init": ["array-like", None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "device": [StrOptions(set(DEVICES))],
        "callback": [callable, None],
    }

    def __init__(
        self,
        n_components=None,
        *,
        alpha=0.1,
        learning_rate=0.05,
        max_iter=1000,
        tol=1e-6,
        transform_max_iter=300,
        dict_init=None,
        random_state=None,
        verbose=0,
        device="auto",
        callback=None,
    ):
        self.n_components = n_components
        self.alpha = alpha
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.tol = tol
        self.transform_max_iter = transform_max_iter
        self.dict_init = dict_init
        self.random_state = random_state
        self.verbose = verbose
        self.device = device
        self.callback = callback

    def _fit_steps(self, X, params, progress):
        """Full-batch Adam on the pre-codes and atoms of the rescaled ``X``, guarded; returns (steps run, whether ``tol`` was met).

        Each step's loss (at the parameters before the step) is checked by a
        :class:`~skdict._guards.DivergenceGuard` against the loss of all-zero codes;
        the parameters are checkpointed every :data:`CHECKPOINT_EVERY` steps.
        ``history_`` gets the losses at the data's own scale.
        """
        xp = get_namespace(X)
        alpha = scaled_penalty(self.alpha, self._exponent, X.dtype)
        adam = Adam(params)
        rates = {"pre_codes": self.learning_rate, "D": self.learning_rate / 10}
        guard = DivergenceGuard(
            params, reference_loss=0.5 * float(xp.sum(X * X)) / X.shape[0], estimator=self,
            fix=f"Lower learning_rate (now {self.learning_rate:g}).",
        )
        previous, variance = math.inf, total_variance(X)
        for step in range(self.max_iter):
            if step % CHECKPOINT_EVERY == 0:
                guard.checkpoint()
            sums = CodeStep()
            loss, grad_codes, grad_D = softplus_lasso_loss_and_grads(X, params["pre_codes"], params["D"], alpha, sums=sums)
            mean_loss = loss / X.shape[0]
            guard.check(mean_loss, f"step {step + 1}")
            grads = {"pre_codes": grad_codes, "D": remove_parallel_component(grad_D / X.shape[0], params["D"])}
            adam.step(params, grads, rates)
            normalize_rows(params["D"], out=params["D"])
            stats = {"loss": self._unscaled_loss(mean_loss), **sums.reconstruction_record(variance)}
            record = append_record(self, stats)
            progress.update(stats)
            if call_callback(self, record) or abs(previous - mean_loss) <= self.tol * abs(mean_loss):
                return step + 1, True
            previous = mean_loss
        guard.checkpoint()
        guard.check(float(xp.mean(softplus_lasso_losses(X, softplus(params["pre_codes"]), params["D"], alpha))),
                    "the end of fit")
        return self.max_iter, False

    def _unscaled_loss(self, loss):
        """A loss of the rescaled data :math:`2^{-e}X` at ``X``'s own scale, :math:`4^e` times it (inf beyond the float range)."""
        try:
            return math.ldexp(loss, 2 * self._exponent)
        except OverflowError:
            return math.inf

    def _encode_block(self, X, alpha):
        """Adam on the pre-codes of ``X`` (rescaled) with the atoms fixed; returns (codes, rows not converged).

        Each row keeps the iterate of lowest loss, so its codes are never worse than the
        start's, whatever ``learning_rate``. A row is not converged when its loss still
        changed by more than ``tol`` relative at the last step, or was not finite.
        """
        xp = get_namespace(X)
        D = self.components_
        params = {"pre_codes": xp.full((X.shape[0], D.shape[0]), _INITIAL_PRE_CODE, dtype=X.dtype)}
        best, best_loss = params["pre_codes"].copy(), xp.full(X.shape[0], math.inf, dtype=X.dtype)
        adam = Adam(params)
        rates = {"pre_codes": self.learning_rate}

        def keep_better(losses):
            better = losses < best_loss  # False for NaN
            xp.copyto(best, params["pre_codes"], where=better[:, None])
            xp.copyto(best_loss, losses, where=better)

        with np.errstate(over="ignore", invalid="ignore"):  # a diverging row is caught by its loss, below
            for _ in range(self.transform_max_iter):
                before, grad_codes, _ = softplus_lasso_loss_and_grads(X, params["pre_codes"], D, alpha, per_sample=True)
                keep_better(before)
                adam.step(params, {"pre_codes": grad_codes}, rates)
            after = softplus_lasso_losses(X, softplus(params["pre_codes"]), D, alpha)
            keep_better(after)
            settled = xp.abs(before - after) <= self.tol * xp.abs(after)  # False for inf/NaN
        return softplus(best), int(xp.sum(~settled))

    def _encode(self, X):
        """Codes of the rescaled :math:`2^{-e}X` with :math:`2^{-e}\\alpha` (``e`` from ``fit``), scaled back exactly."""
        check_params_read(self, ("alpha", "learning_rate", "tol", "transform_max_iter"))  # set_params after fit
        xp = get_namespace(X)
        X = xp.ldexp(X, -self._exponent) if self._exponent else X
        alpha = scaled_penalty(self.alpha, self._exponent, X.dtype)
        codes, n_unconverged = encode_in_blocks(X, self.components_.shape[0], lambda rows: self._encode_block(X[rows], alpha))
        return _scale_back(codes, self._exponent, "codes"), n_unconverged

    def _budget_fix(self):
        return (
            f"their loss still changed by more than tol={self.tol:g} relative, or was not finite, at the last of "
            f"transform_max_iter={self.transform_max_iter} Adam steps",
            f"raise transform_max_iter or tol; if the loss rose, lower learning_rate (now {self.learning_rate:g})",
        )

    @keeps_state_on_failure
    def fit(self, X, y=None):
        """Learn codes and atoms of ``X`` jointly by Adam.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        self._validate_params()
        X = self._fit_input(X)
        xp = get_namespace(X)
        rng = check_random_state(self.random_state)
        self._exponent = rms_exponent(X)
        X = xp.ldexp(X, -self._exponent) if self._exponent else X
        D = self._initial_dictionary(X, self._resolve_n_components(X.shape[1]), rng)
        params = {"pre_codes": xp.full((X.shape[0], D.shape[0]), _INITIAL_PRE_CODE, dtype=X.dtype), "D": D}
        self.history_ = empty_history("loss", "explained_variance", "l0")  # softplus codes never die: no dead_fraction
        try:
            with EpochProgress(self.max_iter, enabled=self.verbose > 0, description=type(self).__name__) as progress:
                with np.errstate(over="ignore", invalid="ignore"):  # the guard reports a non-finite loss itself
                    self.n_iter_, converged = self._fit_steps(X, params, progress)
        except TrainingDivergedError:
            self.components_, self.n_iter_ = params["D"], len(self.history_["loss"])  # the restored, sane atoms
            raise
        self.components_ = params["D"]
        if not converged:
            self._warn_max_iter("steps")
        return self
