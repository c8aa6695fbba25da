"""TripletFeatureLearner: learn a feature matrix Φ (PSD, up to scale) from triplet feedback."""

from __future__ import annotations

from numbers import Integral, Real

from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from skdict._array import DEVICES, device_of, get_namespace, is_cupy_array, like_input, resolve_device, to_device, to_numpy
from skdict.exceptions import TrainingDivergedError
from skdict.triplets._comparisons import contrasts_from_matrix, triplet_differences
from skdict.triplets._cvxpy_solver import SDPSolver, cvxpy_available
from skdict.triplets._factor import canonical_factor
from skdict.triplets._lowrank_solver import LowRankSolver, lowrank_settings
from skdict.triplets._validation import check_triplet_labels, check_triplets

#: solver="auto" uses the SDP up to this many features (when cvxpy is installed and T is on the CPU).
AUTO_CVXPY_MAX_FEATURES = 32


def _eigen_from_factor(U):
    """Eigenvalues and eigenvectors of :math:`\\Phi = U U^\\top` from the SVD of ``U``."""
    left, singular_values, _ = get_namespace(U).linalg.svd(U, full_matrices=False)
    return singular_values**2, left


class TripletFeatureLearner(BaseEstimator):
    r"""Learn a feature matrix :math:`\Phi \succeq 0` from triplet comparisons.

    A triplet :math:`(x, y, z)` says how :math:`x` compares with :math:`y` and :math:`z`
    in the metric :math:`d_\Phi(u, v) = (u - v)^\top \Phi (u - v)`: label :math:`+1`
    when :math:`d_\Phi(x, y) < d_\Phi(x, z)`, :math:`-1` for the reverse, :math:`0` when
    they are equal. Feedback fixes :math:`\Phi` only up to a positive factor; for a
    dictionary :math:`D` (atoms as rows) acting on sparse activations :math:`x`,
    :math:`\Phi = D^\top D`. Each triplet enters through its contrast
    :math:`s(\Phi) = (b^\top \Phi b - a^\top \Phi a) / (\lVert a \rVert^2 + \lVert b \rVert^2)`,
    :math:`a = x - y`, :math:`b = x - z`, and both solvers pin the scale at
    :math:`\operatorname{tr} \Phi = p` while fitting.

    * ``solver="cvxpy"``: the semidefinite program
      :math:`\min \frac{1}{n}\sum_{i \in I} \max(0, m - y_i s_i) + \frac{\alpha}{p}\lVert\Phi\rVert_F^2`
      over PSD :math:`\Phi` with :math:`\operatorname{tr}\Phi = p` and the equalities
      :math:`s_i = 0` as exact linear constraints, solved by CLARABEL (needs
      ``pip install skdict[exact]``). Exact recovery from a teaching set.
    * ``solver="lowrank"``: :math:`\Phi = U U^\top` with :math:`U` of shape (p, rank),
      minibatch Adam on the squared equality residuals :math:`s_i^2` plus the same hinge
      and ridge terms, with gradient clipping and the scale pin; NumPy or CuPy.
    * ``solver="auto"``: ``"cvxpy"`` when cvxpy is installed, ``T`` is on the CPU and
      :math:`p \le 32`; ``"lowrank"`` otherwise.

    Parameters
    ----------
    solver : {"auto", "cvxpy", "lowrank"}, default="auto"
        How Φ is fitted (see above).
    rank : int or None, default=None
        Rank of :math:`U` for the low-rank solver (``None``: :math:`p`). For the SDP,
        the solution is truncated to its ``rank`` largest eigenvalues.
    alpha : float >= 0, default=1e-4
        Weight of the ridge term :math:`\alpha \lVert \Phi \rVert_F^2 / p` (an L2 penalty on
        the entries of Φ, under the trace pin a pull towards an isotropic Φ). It makes
        the SDP's solution unique.
    margin : float > 0, default=0.01
        Margin :math:`m` of the hinge on labelled triplets, in contrast units under
        :math:`\operatorname{tr}\Phi = p` (for :math:`\Phi = I` contrasts lie in [-1, 1]).
    learning_rate : float > 0, default=1e-2
        Adam's step size (low-rank solver).
    batch_size : int, default=256
        Triplets per Adam step (low-rank solver).
    max_iter : int, default=200
        Most epochs of the low-rank solver. The SDP runs to CLARABEL's tolerances.
    tol : float >= 0, default=1e-4
        The low-rank solver stops when an epoch's mean loss has not fallen below
        ``(1 - tol)`` times the best for ``n_iter_no_change`` epochs.
    n_iter_no_change : int, default=10
    max_grad_norm : float > 0 or None, default=1.0
        Clip the low-rank solver's gradient to this Frobenius norm.
    tie_tolerance : float >= 0, default=1e-6
        :meth:`predict` returns 0 (equally close) where the contrast under the fitted
        ``feature_matrix_`` is at most this in absolute value.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where the low-rank solver runs; ``"auto"`` follows ``T``. The SDP always
        runs on the CPU; its results are moved back to ``T``'s device.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial :math:`U` and the minibatch order.
    verbose : int, default=0
        Progress per epoch of the low-rank solver.

    Attributes
    ----------
    feature_matrix_ : array of shape (n_features, n_features)
        The fitted :math:`\Phi`, PSD with unit Frobenius norm.
    components_ : array of shape (r, n_features)
        :math:`r` = ``rank_``. Factor with ``components_.T @ components_ == feature_matrix_``: rows
        :math:`\sqrt{\lambda_k} v_k^\top`, the principal axes in decreasing order.
    rank_ : int
        Numerical rank of ``feature_matrix_`` (eigenvalues above 1e-6 of the largest).
    solver_ : str
        The solver used (``"cvxpy"`` or ``"lowrank"``).
    n_iter_ : int
        Epochs of the low-rank solver, or CLARABEL's interior-point iterations.
    loss_curve_ : list of float
        Mean minibatch objective per epoch (low-rank solver; empty for the SDP).
    history_ : dict of lists
        ``{"loss": loss_curve_}``, the schema of every iterative skdict learner
        (:mod:`skdict._history`); no reconstruction keys, as Φ is not a dictionary of codes.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from skdict import TripletFeatureLearner
    >>> from skdict.datasets import make_triplet_feedback
    >>> D = np.random.default_rng(0).standard_normal((2, 6))  # a dictionary of 2 atoms
    >>> T, y = make_triplet_feedback(D.T @ D, 500, kind="comparison", random_state=0)
    >>> est = TripletFeatureLearner(solver="lowrank", rank=2, random_state=1).fit(T, y)
    >>> est.feature_matrix_.shape, est.rank_
    ((6, 6), 2)
    >>> bool(est.score(T, y) > 0.95)
    True
    """

    _parameter_constraints: dict = {
        "solver": [StrOptions({"auto", "cvxpy", "lowrank"})],
        "rank": [Interval(Integral, 1, None, closed="left"), None],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "margin": [Interval(Real, 0, None, closed="neither")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "max_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
        "tie_tolerance": [Interval(Real, 0, None, closed="left")],
        "device": [StrOptions(set(DEVICES))],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        solver="auto",
        *,
        rank=None,
        alpha=1e-4,
        margin=0.01,
        learning_rate=1e-2,
        batch_size=256,
        max_iter=200,
        tol=1e-4,
        n_iter_no_change=10,
        max_grad_norm=1.0,
        tie_tolerance=1e-6,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.solver = solver
        self.rank = rank
        self.alpha = alpha
        self.margin = margin
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.max_grad_norm = max_grad_norm
        self.tie_tolerance = tie_tolerance
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _resolve_solver(self, T):
        if self.solver != "auto":
            return self.solver
        small = T.shape[2] <= AUTO_CVXPY_MAX_FEATURES
        return "cvxpy" if small and not is_cupy_array(T) and cvxpy_available() else "lowrank"

    def fit(self, T, y=None):
        """Fit Φ to the triplets ``T`` with labels ``y``.

        Parameters
        ----------
        T : array-like of shape (n_triplets, 3, n_features)
            Rows :math:`(x, y, z)` of each triplet; NumPy or CuPy.
        y : array-like of shape (n_triplets,) or None
            +1 (x closer to y), -1 (x closer to z) or 0 (equally close);
            ``None``: every triplet is an equality.

        Returns
        -------
        self
        """
        self._validate_params()
        T = check_triplets(self, T, reset=True)
        labels = check_triplet_labels(y, T.shape[0], xp=get_namespace(T), dtype=T.dtype)
        n_features = T.shape[2]
        if self.rank is not None and self.rank > n_features:
            raise ValueError(f"rank={self.rank} exceeds n_features={n_features}; choose rank <= {n_features}.")
        device = resolve_device(self.device, T)
        T, labels = to_device(T, device), to_device(labels, device)
        xp = get_namespace(T)
        A, B, inverse_scale = triplet_differences(T)
        if not bool(xp.any(inverse_scale > 0)):
            raise ValueError("Every triplet has x = y = z, so the triplets carry no information about Φ.")
        self.solver_ = self._resolve_solver(T)
        if self.solver_ == "cvxpy":
            solver = SDPSolver(alpha=self.alpha, margin=self.margin)
            Phi, self.n_iter_ = solver.solve(to_numpy(A), to_numpy(B), to_numpy(inverse_scale), to_numpy(labels))
            eigenvalues, eigenvectors = xp.linalg.eigh(xp.asarray(Phi, dtype=T.dtype))
            self.loss_curve_ = []
        else:
            rank = n_features if self.rank is None else self.rank
            solver = LowRankSolver(**{**lowrank_settings(self.get_params()), "rank": rank})
            rng = check_random_state(self.random_state)
            U = solver.initial_factor(n_features, T.dtype, xp, rng)
            try:
                U, self.n_iter_, self.loss_curve_ = solver.solve(A, B, inverse_scale, labels, U, rng, estimator=self)
            except TrainingDivergedError:
                self._set_factor(*_eigen_from_factor(U))  # U was restored to its last sane checkpoint
                raise
            eigenvalues, eigenvectors = _eigen_from_factor(U)
        self._set_factor(eigenvalues, eigenvectors)
        self.history_ = {"loss": list(self.loss_curve_)}  # the one history_ schema (skdict._history)
        return self

    def _set_factor(self, eigenvalues, eigenvectors):
        """``components_``, ``feature_matrix_`` and ``rank_`` from an eigendecomposition of Φ (:func:`canonical_factor`)."""
        self.components_, self.feature_matrix_, self.rank_ = canonical_factor(eigenvalues, eigenvectors, self.rank)

    def _contrasts(self, T):
        check_is_fitted(self, "feature_matrix_")
        T = check_triplets(self, T, reset=False)
        T = to_device(T, device_of(self.feature_matrix_))
        A, B, inverse_scale = triplet_differences(T)
        return contrasts_from_matrix(A, B, inverse_scale, self.feature_matrix_.astype(T.dtype, copy=False))

    def decision_function(self, T):
        r"""Contrasts :math:`s = (d(x, z) - d(x, y)) / (\lVert x - y \rVert^2 + \lVert x - z \rVert^2)` under ``feature_matrix_``.

        Positive when :math:`x` is closer to :math:`y`; in :math:`[-1, 1]` because
        ``feature_matrix_`` has unit Frobenius norm.

        Parameters
        ----------
        T : array-like of shape (n_triplets, 3, n_features)

        Returns
        -------
        s : array of shape (n_triplets,)
        """
        return like_input(self._contrasts(T), T)

    def predict(self, T):
        """Predicted labels: +1 (x closer to y), -1 (x closer to z), 0 (within ``tie_tolerance``).

        Parameters
        ----------
        T : array-like of shape (n_triplets, 3, n_features)

        Returns
        -------
        labels : int64 array of shape (n_triplets,)
        """
        return like_input(self._predict_on_device(T), T)

    def _predict_on_device(self, T):
        s = self._contrasts(T)
        xp = get_namespace(s)
        return (xp.sign(s) * (xp.abs(s) > self.tie_tolerance)).astype(xp.int64)

    def score(self, T, y=None):
        """Fraction of triplets whose label :meth:`predict` gets right.

        Parameters
        ----------
        T : array-like of shape (n_triplets, 3, n_features)
        y : array-like of shape (n_triplets,) or None
            Labels in {-1, 0, +1}; ``None``: all equalities.

        Returns
        -------
        accuracy : float
        """
        predicted = self._predict_on_device(T)
        xp = get_namespace(predicted)
        labels = check_triplet_labels(y, predicted.shape[0], xp=xp, dtype=xp.int64)
        return float(xp.mean(predicted == labels))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.target_tags.required = False
        return tags
