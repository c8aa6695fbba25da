"""Adam (Kingma & Ba, 2015) on a dictionary of named arrays, updated in place."""

from __future__ import annotations

import math

from skdict._array import get_namespace


class Adam:
    """First and second moment estimates for each named parameter.

    The update for a parameter :math:`\\theta` with gradient :math:`g` at step :math:`t` is
    :math:`m \\leftarrow \\beta_1 m + (1-\\beta_1) g`,
    :math:`v \\leftarrow \\beta_2 v + (1-\\beta_2) g^2`,
    :math:`\\theta \\leftarrow \\theta - \\eta_t\\, \\hat m / (\\sqrt{\\hat v} + \\epsilon)`
    with the usual bias corrections folded into :math:`\\eta_t`.

    Parameters
    ----------
    params : dict of str to array
        The parameters (only their shapes, dtypes and devices are read here).
    beta1, beta2, eps : float
    """

    def __init__(self, params, *, beta1=0.9, beta2=0.999, eps=1e-8):
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.t = 0
        self.m = {}
        self.v = {}
        for name, value in params.items():
            xp = get_namespace(value)
            self.m[name] = xp.zeros_like(value)
            self.v[name] = xp.zeros_like(value)

    def step(self, params, grads, learning_rates):
        """Update ``params[name]`` in place from ``grads[name]``.

        Parameters
        ----------
        params, grads : dict of str to array
        learning_rates : dict of str to float
            Step size :math:`\\eta` per parameter.
        """
        self.t += 1
        correction = math.sqrt(1.0 - self.beta2**self.t) / (1.0 - self.beta1**self.t)
        for name, grad in grads.items():
            xp = get_namespace(grad)
            m, v = self.m[name], self.v[name]
            m *= self.beta1
            m += (1.0 - self.beta1) * grad
            v *= self.beta2
            v += (1.0 - self.beta2) * (grad * grad)
            denom = xp.sqrt(v)
            denom += self.eps
            params[name] -= (learning_rates[name] * correction) * (m / denom)
