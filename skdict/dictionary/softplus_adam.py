r"""Dictionary learning by Adam on softplus-parametrised codes and unit-norm atoms (a baseline)."""

from __future__ import annotations

import math
from numbers import Integral, Real

from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from skdict._array import DEVICES, get_namespace
from skdict._progress import EpochProgress
from skdict.dictionary._base import BaseDictionaryLearner
from skdict.ops.adam import Adam
from skdict.ops.atoms import normalize_rows, remove_parallel_component

#: Initial pre-softplus code, softplus(-3) ~ 0.049: small positive codes everywhere.
_INITIAL_PRE_CODE = -3.0


def softplus(V):
    """:math:`\\log(1 + e^v)`, computed without overflow."""
    xp = get_namespace(V)
    return xp.logaddexp(0.0, V)


def sigmoid(V):
    """:math:`1 / (1 + e^{-v})` (the derivative of softplus), computed without overflow."""
    xp = get_namespace(V)
    return 0.5 * (xp.tanh(0.5 * V) + 1.0)


def softplus_lasso_loss_and_grads(X, pre_codes, D, alpha):
    r"""Summed loss :math:`\sum_n \tfrac12\lVert x_n - z_n D\rVert^2 + \alpha \sum_j z_{nj}`, :math:`z = \operatorname{softplus}(\tilde z)`, and its gradients.

    With :math:`R = zD - X`: :math:`\partial/\partial z = R D^\top + \alpha`,
    :math:`\partial/\partial \tilde z = (R D^\top + \alpha) \odot \sigma(\tilde z)`,
    :math:`\partial/\partial D = z^\top R`. (The l1 norm is the plain sum as :math:`z > 0`.)

    Returns
    -------
    loss : float
    grad_pre_codes : array like ``pre_codes``
    grad_D : array like ``D``
    """
    xp = get_namespace(X, pre_codes, D)
    Z = softplus(pre_codes)
    residual = Z @ D - X
    loss = 0.5 * float(xp.sum(residual * residual)) + alpha * float(xp.sum(Z))
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
    ``transform_max_iter`` steps, so it is deterministic and per sample.

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
    transform_max_iter : int, default=300
        Adam steps on the codes in ``transform``.
    dict_init : array-like of shape (n_components, n_features) or None
        Initial atoms (rescaled to unit norm); ``None``: random rows of ``X``.
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0
    device : {"auto", "cpu", "cuda"}, default="auto"

    Attributes
    ----------
    components_ : array of shape (n_components, n_features)
    n_iter_ : int
    history_ : dict with key ``"loss"`` (mean per-sample loss per step)
    n_features_in_ : int
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

    def _optimise(self, X, D, n_steps, *, learn_dictionary, progress=None):
        """Adam on the pre-codes (and the atoms when ``learn_dictionary``); returns (pre_codes, D, steps run)."""
        xp = get_namespace(X)
        params = {"pre_codes": xp.full((X.shape[0], D.shape[0]), _INITIAL_PRE_CODE, dtype=X.dtype)}
        if learn_dictionary:
            params["D"] = D
        adam = Adam(params)
        rates = {"pre_codes": self.learning_rate, "D": self.learning_rate / 10}
        previous, n_run = math.inf, 0
        for _ in range(n_steps):
            loss, grad_codes, grad_D = softplus_lasso_loss_and_grads(X, params["pre_codes"], params.get("D", D), self.alpha)
            n_run += 1
            grads = {"pre_codes": grad_codes}
            if learn_dictionary:
                grads["D"] = remove_parallel_component(grad_D / X.shape[0], params["D"])
            adam.step(params, grads, rates)
            if learn_dictionary:
                normalize_rows(params["D"], out=params["D"])
                mean_loss = loss / X.shape[0]
                self.history_["loss"].append(mean_loss)
                progress.update({"loss": mean_loss})
                if abs(previous - mean_loss) <= self.tol * abs(mean_loss):
                    break
                previous = mean_loss
        return params["pre_codes"], params.get("D", D), n_run

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
        rng = check_random_state(self.random_state)
        D = self._initial_dictionary(X, self._resolve_n_components(X.shape[1]), rng)
        self.history_ = {"loss": []}
        with EpochProgress(self.max_iter, enabled=self.verbose > 0, description=type(self).__name__) as progress:
            _, D, self.n_iter_ = self._optimise(X, D, self.max_iter, learn_dictionary=True, progress=progress)
        self.components_ = D
        return self

    def _encode(self, X):
        pre_codes, _, _ = self._optimise(X, self.components_, self.transform_max_iter, learn_dictionary=False)
        return softplus(pre_codes)
