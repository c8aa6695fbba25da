r"""A target L0 for the penalty SAEs: the sparsity coefficient steered during training.

:class:`ReLUSAE` (L1) and :class:`JumpReLUSAE` (L0 through a straight-through estimator) reach a
sparsity set by their coefficient :math:`\alpha`, whose value for a wanted L0 depends on the data,
the width and the training length: users swept it by hand. With ``target_l0`` set, training steers
:math:`\alpha` so that the mean number of active latents per sample, :math:`\bar\ell_0`, reaches the
target :math:`\ell_0^*`, and ``alpha`` is where it starts.

The controller is a proportional-integral (PI) one, run after every optimizer step :math:`t` on
the step's minibatch L0 :math:`\ell_t` (the engine measures it anyway), in velocity form:

.. math::

    e_t = \mathrm{clip}\!\left(\frac{\ell_t}{\ell_0^*} - 1,\ -1,\ 1\right), \qquad
    \Delta_t = \kappa\,\eta_t\, e_t\, \big(1 - \mathbb{1}\big[b < |\bar e_t| < |\bar e_{t-1}|\big]\big)
             + k_p\, f_t\, (\bar e_t - \bar e_{t-1}),

with :math:`\eta_t` the step's learning rate (``learning_rate`` times the schedule's factor
:math:`f_t`), :math:`\kappa` = :data:`CONTROL_GAIN`, :math:`k_p` = :data:`PROPORTIONAL_GAIN` and
:math:`\bar e_t` the error averaged over about 100 steps (:data:`ERROR_SMOOTHING`), :math:`b` =
:data:`WINDUP_BAND`. The
coefficient moves by :math:`\Delta_t` in the units its penalty allows:

- the L1 weight of :class:`ReLUSAE` is a positive scale in the units of ``X``: it moves in log
  space, :math:`\alpha \leftarrow \alpha\, e^{\Delta_t}` (it stays positive; ``alpha`` > 0 to start);
- the L0 weight :math:`\lambda` of :class:`JumpReLUSAE` is the Lagrange multiplier of the
  constraint :math:`\bar\ell_0 = \ell_0^*`, and it is signed: its thresholds also rise on their own
  (latents whose codes overshoot fall below the threshold and get no gradient back; a long default
  fit on digits sparsifies to L0 ~3.5 at :math:`\lambda \to 0^+`), and only :math:`\lambda < 0` (a
  reward per active latent, which pushes :math:`\theta` down through the same straight-through
  window) holds a larger L0. It moves additively, :math:`\lambda \leftarrow \lambda + u\,\Delta_t`, in
  the unit :math:`u = \tfrac12 s_{out}^2 d_{out} / \ell_0^*` (the trivial model's loss,
  :math:`s_{out}` the target's per-coordinate RMS, shared over the target's latents: the weight at
  which :math:`\ell_0^*` latents cost as much as reconstructing nothing).

Why this form:

- *Integral action* has one fixed point, :math:`E[\ell_t] = \ell_0^*`: the arithmetic mean L0 that
  :func:`skdict.metrics.l0` reports, with no offset (a proportional term alone, or a penalty on
  :math:`(\ell_0/\ell_0^* - 1)^2`, settles off target by an amount that depends on the data).
- *Conditional integration* (anti-windup): far from the target (:math:`|\bar e| > b`) the
  integral acts only while the smoothed error is not shrinking (near it, always: a pause there
  would stall the last approach). The model moves its L0 on its own (a fresh SAE fires on half its latents and
  sparsifies in the first thousand steps whatever the coefficient), and Adam's second moments
  remember a large coefficient's gradients for about a thousand steps, during which the
  thresholds barely respond to a smaller one: a coefficient wound up while the L0 was already
  falling overshoots for thousands of steps (JumpReLU on digits, target 8: L0 down to 4.2, then
  up to 12, without this).
- *The proportional term* reacts to the L0's own motion: when the model sparsifies fast by itself,
  the coefficient backs off at once instead of after the integral has wound up.
- *Clipped relative error*: far from the target (L0 113 for a target of 16) the coefficient moves
  by a bounded amount per step, so Adam's second moments (which lag by about :math:`1/(1-\beta_2)`
  steps) see a slowly changing loss and the steps stay of size :math:`\eta`.
- *Gain tied to the learning rate*: the coefficient moves as fast as the parameters can respond to
  it, never faster (Adam moves every parameter by about :math:`\eta` per step whatever the size of
  the gradient, so a larger coefficient does not make the model respond faster; a controller that
  outruns its model winds up and oscillates). The schedule's warm-up is the penalty's warm-up, and
  during the final decay the coefficient freezes with the parameters, so the fitted ``alpha_`` is
  the coefficient the final model was trained at.

Early stopping compares windows of the *reconstruction* loss brought to the target, and only
windows whose L0, and its average over the last ~100 steps, are within :data:`SETTLED_TOLERANCE` of
the target (:meth:`L0Controller.plateau_loss`): the total loss :math:`\tfrac12\|x - \hat x\|^2 +
\alpha P` changes with :math:`\alpha` itself, so its plateau says nothing while the controller
moves, and a window off target restarts the plateau count. A fit whose
last epoch is still off by more than :data:`REACHED_TOLERANCE` warns (ConvergenceWarning).

The state of the controller is ``alpha_`` (a fitted attribute) and the last error :math:`e_{t-1}`
(``_l0_error``), both saved by checkpoints and :func:`skdict.io.save`; with a target,
``history_["alpha"]`` records ``alpha_`` per epoch (without one the shared schema is unchanged).
"""

from __future__ import annotations

import math
from numbers import Real

from sklearn.utils._param_validation import Interval

from skdict._guards import warn_not_converged
from skdict.sae._parameters import Parameter

#: :math:`\\kappa`: the integral change of the coefficient (of :math:`\\log\\alpha`, or of :math:`\\lambda / u`) per
#: step, in units of the step's learning rate, at a relative L0 error of 100% or more: at the default learning
#: rate 1e-3, at most 0.1% a step, a factor e (or one unit u) in 1000 steps, the time Adam takes to move a
#: parameter by a thousand steps of size eta.
CONTROL_GAIN = 1.0
#: :math:`k_p`: the change of the coefficient per unit change of the relative error (at full learning rate).
PROPORTIONAL_GAIN = 1.0
#: :math:`\\beta`: the proportional term acts on the error averaged over about :math:`1/(1-\\beta)` = 100 steps,
#: :math:`\\bar e_t = \\beta \\bar e_{t-1} + (1-\\beta) e_t` (one minibatch's L0 is too noisy to act on at once).
ERROR_SMOOTHING = 0.99
#: The integral pauses while the smoothed relative error is above this and shrinking (conditional integration).
WINDUP_BAND = 0.25
#: A window whose L0 is within this relative distance of the target counts for early stopping's plateau.
SETTLED_TOLERANCE = 0.05
#: A fit whose last epoch's L0 is further than this from the target warns that the target was not reached.
REACHED_TOLERANCE = 0.10


class L0Controller:
    """The controller of one training call: steers ``model.alpha_`` towards ``model.target_l0``.

    Parameters
    ----------
    model : ReLUSAE or JumpReLUSAE
        With ``target_l0`` set and ``alpha_`` initialised; ``alpha_`` is the only state.
    """

    def __init__(self, model):
        self.model = model
        self.target = float(model.target_l0)
        self.unit = model._coefficient_unit() if model._signed_coefficient else None  # None: log space

    def step(self, n_active, n_rows, lr_factor):
        """After an optimizer step whose minibatch of ``n_rows`` had ``n_active`` active codes: update ``alpha_``.

        ``lr_factor`` is the schedule's factor of that step (the step's rate is ``learning_rate * lr_factor``).
        """
        model = self.model
        error = min(1.0, max(-1.0, n_active / (n_rows * self.target) - 1.0))
        smoothed = ERROR_SMOOTHING * model._l0_error + (1.0 - ERROR_SMOOTHING) * error
        approaching = WINDUP_BAND < abs(smoothed) < abs(model._l0_error)  # far off, but the model gets there alone
        integral = 0.0 if approaching else CONTROL_GAIN * model.learning_rate * error
        change = (integral + PROPORTIONAL_GAIN * (smoothed - model._l0_error)) * lr_factor
        if self.unit is None:
            model.alpha_ = model.alpha_ * math.exp(change)
        else:
            model.alpha_ = model.alpha_ + self.unit * change
        model._l0_error = smoothed

    def plateau_loss(self, window):
        """The loss early stopping compares for a window: the reconstruction loss at the target, or ``None``.

        ``None`` (the window must not count) while the L0 is off target, in the window or on average over the
        last ~100 steps (the smoothed error :math:`\\bar e`), by more than :data:`SETTLED_TOLERANCE`. Otherwise
        the window's reconstruction loss :math:`R` brought to the target to first order, :math:`R\\,\\ell/\\ell_0^*`
        (an L0 a few percent under the target costs a few percent of reconstruction; uncorrected, an L0 drifting
        down through the band would look like a loss that stopped improving). ``window`` is the engine's
        :class:`~skdict.sae._training.Window` (sums of loss, squared error, active codes and rows over its steps).
        """
        ratio = window.active / (window.rows * self.target)
        if abs(ratio - 1.0) > SETTLED_TOLERANCE or abs(self.model._l0_error) > SETTLED_TOLERANCE:
            return None
        return 0.5 * window.error / window.rows * ratio

    def warn_if_off_target(self, *, stacklevel):
        """ConvergenceWarning when the last epoch's L0 is off the target by more than :data:`REACHED_TOLERANCE`."""
        history = self.model.history_
        if not history["l0"]:
            return
        l0 = history["l0"][-1]
        if abs(l0 / self.target - 1.0) <= REACHED_TOLERANCE:
            return
        warn_not_converged(
            self.model,
            f"the L0 of the last epoch, {l0:.3g}, is {l0 / self.target - 1:+.0%} off target_l0={self.target:g} "
            f"(alpha_ reached {self.model.alpha_:.3g} from alpha={self.model.alpha:g})",
            "train longer (max_steps, max_samples or max_iter), raise learning_rate, or start alpha nearer the "
            "coefficient that gives this L0 (a target above the L0 the model reaches at alpha near 0, or above "
            "n_components, cannot be met)",
            stacklevel=stacklevel + 1,
        )


class L0TargetMixin:
    """``target_l0`` for an SAE with a sparsity coefficient ``alpha`` (see the module docstring).

    The class's penalty reads its weight from :attr:`_penalty_weight`: ``alpha`` itself without
    ``target_l0`` (``alpha_`` then repeats it at every ``fit``/``partial_fit``), the steered ``alpha_``
    with it (``alpha`` on a fresh fit, the current ``alpha_`` on a warm start or ``partial_fit``).
    """

    #: Whether the coefficient is signed (moved additively, in :meth:`_coefficient_unit`) or a positive scale.
    _signed_coefficient = False

    _parameters = (
        Parameter(
            "target_l0", None, [Interval(Real, 0, None, closed="neither"), None], "float or None",
            "Mean number of active latents per sample :math:`\\ell_0^*` to reach. When set, the sparsity "
            "coefficient is steered during training (a PI controller driven by each minibatch's L0, at a rate "
            "tied to the learning rate; see :mod:`skdict.sae._l0_target`): ``alpha`` is only its starting value "
            "and the coefficient reached is ``alpha_`` (JumpReLU's may turn negative, a reward per active latent, "
            "where its thresholds rise on their own). Early stopping then compares the reconstruction loss of "
            "windows whose L0 is within 5% of the target. ``None``: ``alpha`` is used as given.",
        ),
    )

    def _check_hyperparameters(self, n_components):
        """``target_l0 <= n_components`` and a positive starting ``alpha``; ``alpha_`` from ``alpha`` when not steered."""
        super()._check_hyperparameters(n_components)
        if self.target_l0 is not None:
            if self.target_l0 > n_components:
                raise ValueError(
                    f"target_l0={self.target_l0:g} exceeds n_components={n_components}: no code has more active "
                    "latents than there are latents; lower target_l0 or raise n_components."
                )
            if self.alpha <= 0 and not self._signed_coefficient:
                raise ValueError(
                    f"alpha={self.alpha:g} with target_l0={self.target_l0:g}: the controller multiplies alpha, so it "
                    "must start positive; give alpha > 0 (e.g. the default)."
                )
        if self.target_l0 is None or not hasattr(self, "alpha_"):
            self.alpha_ = float(self.alpha)
        if self.target_l0 is not None and hasattr(self, "history_"):  # a warm start that sets a target
            self._record_alpha()

    def _start_training(self, rng, *, reset):
        super()._start_training(rng, reset=reset)
        if reset:
            self.alpha_ = float(self.alpha)
        if reset or not hasattr(self, "_l0_error"):
            self._l0_error = 0.0
        if self.target_l0 is not None:
            self._record_alpha()

    def _record_alpha(self):
        """Give ``history_`` its ``"alpha"`` key (NaN for the epochs trained before a target was set)."""
        self.history_.setdefault("alpha", [math.nan] * len(self.history_["loss"]))

    @property
    def _penalty_weight(self):
        """The sparsity coefficient the loss uses now: ``alpha``, or the steered ``alpha_`` with ``target_l0``."""
        return self.alpha if self.target_l0 is None else self.alpha_

    def _coefficient_unit(self):
        """:math:`u = \\tfrac12 s_{out}^2 d_{out} / \\ell_0^*`, the unit in which a signed coefficient moves."""
        return 0.5 * self._lr_scales["decoder_bias_"] ** 2 * self.n_targets_ / self.target_l0

    def _training_control(self):
        """The :class:`L0Controller` of a training call when ``target_l0`` is set, else ``None``."""
        return None if self.target_l0 is None else L0Controller(self)

    def _history_record(self):
        """``{"alpha": coefficient in use}`` once a target was set (the key then stays), else nothing."""
        return {"alpha": float(self._penalty_weight)} if "alpha" in self.history_ else {}
