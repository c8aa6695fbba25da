r"""LISTA: ISTA unrolled into a network with learned weights and thresholds (Gregor & LeCun, 2010)."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from skdict._array import DEVICES, get_namespace
from skdict._guards import DivergenceGuard, keeps_state_on_failure, warn_not_converged
from skdict._history import CORE_KEYS, append_record, call_callback, empty_history
from skdict._progress import EpochProgress
from skdict._validation import check_atoms, check_params_read
from skdict.dictionary._base import BaseDictionaryLearner, encode_in_blocks, total_variance
from skdict.dictionary.fista_dictionary import CodeStep, FISTADictionaryLearning, unit_scale_exponent
from skdict.ops.adam import Adam
from skdict.ops.fista import lipschitz_constant, soft_threshold
from skdict.ops.gram import gram_matrix

#: The target codes :math:`z^\star` are FISTA's, to this relative duality gap ...
TARGET_TOL = 1e-6
#: ... within at most this many iterations per sample (a ConvergenceWarning says when rows ran out).
TARGET_MAX_ITER = 5000


def lista_forward(X, params, *, positive=False):
    r"""Codes of ``X`` after the unrolled layers, and the pre-thresholds of every layer.

    :math:`b = x W_e`, :math:`z_1 = \eta_{\theta_1}(b)`,
    :math:`z_{l+1} = \eta_{\theta_{l+1}}(b + z_l S_l)`, with :math:`\eta_\theta` the
    soft threshold (:func:`skdict.ops.fista.soft_threshold`, one threshold per component).

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    params : dict
        ``"W_e"`` (n_features, n_components), ``"S"`` (n_layers - 1, n_components, n_components),
        ``"theta"`` (n_layers, n_components).

    Returns
    -------
    codes : array of shape (n_samples, n_components)
    pre : list of arrays
        :math:`v_l` (the argument of :math:`\eta_{\theta_l}`) per layer; with ``codes`` per layer
        it is what the backward pass needs.
    layer_codes : list of arrays
        :math:`z_1, \dots, z_L`.
    """
    b = X @ params["W_e"]
    pre, layer_codes = [b], [soft_threshold(b, params["theta"][0], positive=positive)]
    for layer in range(1, params["theta"].shape[0]):
        v = b + layer_codes[-1] @ params["S"][layer - 1]
        pre.append(v)
        layer_codes.append(soft_threshold(v, params["theta"][layer], positive=positive))
    return layer_codes[-1], pre, layer_codes


def lista_backward(X, params, pre, layer_codes, grad_codes, *, positive=False):
    r"""Gradients of a loss with :math:`\partial L/\partial z_L` = ``grad_codes`` w.r.t. ``W_e``, ``S`` and ``theta``.

    On the active set of layer :math:`l` (:math:`|v_l| > \theta_l`, or :math:`v_l > \theta_l`
    when positive) :math:`\partial z_l/\partial v_l = 1` and
    :math:`\partial z_l/\partial \theta_l = -\operatorname{sign}(v_l)`; elsewhere both are 0.
    """
    xp = get_namespace(X, grad_codes)
    n_layers = params["theta"].shape[0]
    grad_S = xp.zeros_like(params["S"])
    grad_theta = xp.zeros_like(params["theta"])
    grad_b = xp.zeros_like(pre[0])
    g = grad_codes
    for layer in range(n_layers - 1, -1, -1):
        v, theta = pre[layer], params["theta"][layer]
        if positive:
            active = v > theta
            sign = 1.0
        else:
            active = xp.abs(v) > theta
            sign = xp.sign(v)
        g_v = xp.where(active, g, 0.0)
        grad_theta[layer] = -xp.sum(g_v * sign, axis=0)
        grad_b += g_v
        if layer > 0:
            grad_S[layer - 1] = layer_codes[layer - 1].T @ g_v
            g = g_v @ params["S"][layer - 1].T
    return {"W_e": X.T @ grad_b, "S": grad_S, "theta": grad_theta}


class LISTA(BaseDictionaryLearner):
    r"""Learned ISTA: a fixed number of ISTA steps with learned weights, trained to predict lasso codes.

    ``n_layers`` ISTA iterations from :math:`z = 0` on the dictionary :math:`D`
    (step :math:`1/L`, :math:`L = \lVert DD^\top\rVert_2`) read

    .. math::

        z_1 = \eta_{\theta_1}(x W_e), \qquad z_{l+1} = \eta_{\theta_{l+1}}(x W_e + z_l S_l),

    with :math:`W_e = D^\top/L`, :math:`S_l = I - DD^\top/L` and
    :math:`\theta_l = \alpha/L` (one per component). LISTA starts there and
    learns a shared :math:`W_e`, one :math:`S_l` per layer and one threshold
    vector :math:`\theta_l` per layer, by minibatch Adam with hand-written
    gradients (:func:`lista_forward`, :func:`lista_backward`).

    **Loss** (as Gregor & LeCun, 2010): regression on the converged lasso codes
    :math:`z^\star(x)` of :math:`D` (FISTA, computed once per ``fit``),
    :math:`\frac{1}{2n}\sum_n \lVert z_L(x_n) - z^\star(x_n)\rVert^2`. The
    network thus learns to approximate the sparse code in few layers;
    ``components_`` stays :math:`D`, so ``inverse_transform`` and ``score`` use
    the dictionary the codes were regressed on. ``transform`` is one forward pass.

    Parameters
    ----------
    n_components : int or None, default=None
        Number of atoms; ``None``: rows of ``dictionary``, else ``n_features``.
    n_layers : int, default=16
        Unrolled ISTA steps :math:`L`.
    dictionary : array-like of shape (n_components, n_features) or None
        The dictionary :math:`D` (rescaled to unit rows); ``None``: learned with
        :class:`FISTADictionaryLearning` on ``X`` (same ``alpha``, ``positive``, ``random_state``).
    alpha : float, default=0.1
        l1 penalty of the target lasso codes (and the initial thresholds).
    positive : bool, default=False
        Non-negative codes (one-sided thresholds).
    learning_rate : float, default=1e-3
    batch_size : int, default=256
    max_iter : int, default=50
        Epochs of Adam.
    tol : float, default=1e-4
        Stop when the epoch loss changed by at most ``tol`` relative.
    random_state : int, RandomState instance or None, default=None
        Seeds the minibatch order (and the dictionary learned when ``dictionary``
        is ``None``). Bitwise reproducible for a fixed thread count and backend
        (see :ref:`reproducibility`).
    verbose : int, default=0
    device : {"auto", "cpu", "cuda"}, default="auto"
    callback : callable or None, default=None
        Called after every epoch as ``callback(estimator, record)``: ``record`` is the dict just
        appended to ``history_`` plus ``"epoch"`` (1-based). Returning ``True`` ends ``fit`` there,
        with no ConvergenceWarning for the ``max_iter`` left (see :mod:`skdict._history`).

    Attributes
    ----------
    components_ : array of shape (n_components, n_features)
        The dictionary :math:`D` (unit rows).
    input_weights_ : array of shape (n_features, n_components)
        :math:`W_e`.
    mutual_weights_ : array of shape (n_layers - 1, n_components, n_components)
        :math:`S_l`.
    thresholds_ : array of shape (n_layers, n_components)
        :math:`\theta_l`.
    n_iter_ : int
    history_ : dict of lists
        Per epoch (:mod:`skdict._history`), each minibatch measured at the weights before its
        step: ``"loss"`` (the regression loss above, per sample), ``"explained_variance"`` of
        :math:`z_L D` against ``X``, ``"l0"`` (nonzero codes per sample), ``"dead_fraction"``
        (latents zero on every sample of the epoch).
    n_features_in_ : int

    Raises
    ------
    skdict.exceptions.TrainingDivergedError
        From ``fit``, when a minibatch loss turns non-finite or exceeds 100 times
        the loss of all-zero codes (:class:`skdict._guards.DivergenceGuard`); the
        weights of the last epoch start whose loss was sane are kept, so
        ``transform`` stays finite. Lower ``learning_rate``.
    ValueError
        From ``fit``, when ``X`` is too far from unit scale (:math:`\max|X|` beyond
        :math:`2^{\pm 16}` in float32, :math:`2^{\pm 128}` in float64), where the squares
        of its codes over- or underflow: rescale ``X``.

    Warns
    -----
    sklearn.exceptions.ConvergenceWarning
        When ``max_iter`` epochs end before the loss changed by at most ``tol``,
        or when target codes ran out of FISTA iterations.
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "n_layers": [Interval(Integral, 1, None, closed="left")],
        "dictionary": ["array-like", None],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "positive": ["boolean"],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "device": [StrOptions(set(DEVICES))],
        "callback": [callable, None],
    }

    def __init__(
        self,
        n_components=None,
        n_layers=16,
        *,
        dictionary=None,
        alpha=0.1,
        positive=False,
        learning_rate=1e-3,
        batch_size=256,
        max_iter=50,
        tol=1e-4,
        random_state=None,
        verbose=0,
        device="auto",
        callback=None,
    ):
        self.n_components = n_components
        self.n_layers = n_layers
        self.dictionary = dictionary
        self.alpha = alpha
        self.positive = positive
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.verbose = verbose
        self.device = device
        self.callback = callback

    def _resolve_n_components(self, n_features):
        if self.n_components is not None:
            return self.n_components
        return n_features if self.dictionary is None else len(self.dictionary)

    def _target_codes(self, X, D):
        r"""The lasso codes :math:`z^\star` of ``X`` on ``D`` to a relative duality gap of 1e-6, and a check that they are finite."""
        learner = FISTADictionaryLearning(
            alpha=self.alpha, positive_code=self.positive, code_max_iter=TARGET_MAX_ITER, code_tol=TARGET_TOL
        )
        targets, step = learner._code_step(X, D, estimator=self)
        if step.n_uncertified:
            warn_not_converged(
                self, f"the target codes of {step.n_uncertified} of {X.shape[0]} samples did not reach a relative "
                f"duality gap of {TARGET_TOL:g} in {TARGET_MAX_ITER} FISTA iterations",
                "rescale X or pass a better-conditioned dictionary", stacklevel=4,
            )
        return targets

    def _check_scale(self, X):
        """Refuse ``X`` too far from unit scale: LISTA's thresholds and regression loss are not rescaled.

        The bound is :func:`~skdict.dictionary.fista_dictionary.unit_scale_exponent`'s, within which no
        square of the codes or of ``X`` over- or underflows ``X``'s dtype.
        """
        exponent = unit_scale_exponent(X)
        if exponent:
            xp = get_namespace(X)
            raise ValueError(
                f"{type(self).__name__}: max |X| = {float(xp.max(xp.abs(X))):.3g} is too far from unit scale: the "
                f"squares of its lasso codes {'overflow' if exponent > 0 else 'underflow'} {X.dtype}; rescale X "
                "(e.g. StandardScaler) before fitting."
            )

    def _learn_dictionary(self, X):
        n_components = self._resolve_n_components(X.shape[1])
        if self.dictionary is not None:
            return check_atoms(self.dictionary, n_components, X.shape[1], like=X, name="dictionary")
        learner = FISTADictionaryLearning(
            n_components, alpha=self.alpha, positive_code=self.positive, random_state=self.random_state
        )
        try:
            return learner.fit(X).components_
        except ValueError as error:  # X overflowed: say it for LISTA
            raise ValueError(str(error).replace(type(learner).__name__, type(self).__name__, 1)) from None

    def _params(self):
        return {"W_e": self.input_weights_, "S": self.mutual_weights_, "theta": self.thresholds_}

    def _initialize(self, X, D):
        xp = get_namespace(X)
        G = gram_matrix(D)
        with np.errstate(over="ignore", invalid="ignore"):
            L = lipschitz_constant(D, gram=G) or 1.0
        n_components = D.shape[0]
        self.components_ = D
        self.input_weights_ = D.T / L
        S = xp.eye(n_components, dtype=X.dtype) - G / L
        self.mutual_weights_ = xp.broadcast_to(S, (self.n_layers - 1, n_components, n_components)).copy()
        self.thresholds_ = xp.full((self.n_layers, n_components), self.alpha / L, dtype=X.dtype)
        return G, L

    @keeps_state_on_failure
    def fit(self, X, y=None):
        """Initialise from ISTA on the dictionary and train on the lasso codes of ``X``.

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
        rng = check_random_state(self.random_state)
        self._check_scale(X)
        D = self._learn_dictionary(X)
        self._initialize(X, D)
        targets = self._target_codes(X, D)
        self.history_ = empty_history(*CORE_KEYS)
        self.n_iter_ = 0
        with EpochProgress(self.max_iter, enabled=self.verbose > 0, description=type(self).__name__) as progress:
            converged = self._train(X, targets, rng, progress)
        if not converged:
            self._warn_max_iter("epochs", "epoch loss")
        return self

    def _train(self, X, targets, rng, progress):
        r"""Minibatch Adam epochs on the regression loss, guarded against divergence; returns whether ``tol`` was met.

        Every minibatch loss (evaluated at the weights before its step) is checked
        by a :class:`~skdict._guards.DivergenceGuard` against the loss of all-zero
        codes, :math:`\frac{1}{2n}\sum_n\lVert z^\star_n\rVert^2`; the weights are
        checkpointed at every epoch start, and the weights after the last step are
        checked by one more loss on all of ``X``.
        """
        xp = get_namespace(X)
        params = self._params()
        adam, rates = Adam(params), dict.fromkeys(params, self.learning_rate)
        guard = DivergenceGuard(
            params, reference_loss=0.5 * float(xp.sum(targets * targets)) / X.shape[0], estimator=self,
            fix=f"Lower learning_rate (now {self.learning_rate:g}).",
        )
        previous, converged = math.inf, False
        variance = total_variance(X)
        with np.errstate(over="ignore", invalid="ignore"):  # the guard reports a non-finite loss itself
            for epoch in range(1, self.max_iter + 1):
                guard.checkpoint()
                order = xp.asarray(rng.permutation(X.shape[0]))
                sums = CodeStep()  # of the epoch, each minibatch at the weights before its step
                for start in range(0, X.shape[0], self.batch_size):
                    rows = order[start : start + self.batch_size]
                    Xb = X[rows]
                    codes, pre, layer_codes = lista_forward(Xb, params, positive=self.positive)
                    error = codes - targets[rows]
                    batch_loss = 0.5 * float(xp.sum(error * error))
                    guard.check(batch_loss / rows.shape[0], f"epoch {epoch}, sample {start}")
                    sums.add(CodeStep.of_codes(Xb, codes, self.components_, objective=batch_loss))
                    grads = lista_backward(Xb, params, pre, layer_codes, error / rows.shape[0], positive=self.positive)
                    adam.step(params, grads, rates)
                loss = sums.objective / X.shape[0]
                stats = {"loss": loss, **sums.reconstruction_record(variance)}
                record = append_record(self, stats)
                self.n_iter_ += 1
                progress.update(stats)
                converged = call_callback(self, record) or abs(previous - loss) <= self.tol * abs(loss)
                if converged:
                    break
                previous = loss
            guard.checkpoint()
            error = self._encode(X)[0] - targets
            guard.check(0.5 * float(xp.sum(error * error)) / X.shape[0], "the end of fit")
        return converged

    def _encode(self, X):
        check_params_read(self, ("positive",))  # the forward pass reads it (set_params after fit)

        def encode_block(rows):
            return lista_forward(X[rows], self._params(), positive=self.positive)[0], 0

        return encode_in_blocks(X, self.components_.shape[0], encode_block)

    def _budget_fix(self):  # pragma: no cover - a forward pass has no iteration budget
        return "", ""
