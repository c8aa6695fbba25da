"""Are an SAE's parameters usable: one float dtype, no NaN? Checked wherever parameters come from outside a fit.

A model read from a file, imported from another library or given its weights by hand computes
garbage from damaged weights without a word (a NaN in ``encoder_`` makes every code NaN; an integer
``encoder_`` breaks the first Adam step), so every loader and the first training step of such a
model check them here.
"""

from __future__ import annotations

import math

import numpy as np

from skdict._array import get_namespace, to_numpy

#: Parameters that may hold +inf: a JumpReLU latent whose threshold is +inf never fires.
MAY_BE_INFINITE = ("threshold_",)


def non_finite(value, allowed=()):
    """A description of the NaN/inf entries of ``value`` (those equal to one of ``allowed`` excepted), or ``None``."""
    xp = get_namespace(value)
    good = xp.isfinite(value)
    for infinity in allowed:
        good = good | (value == infinity)
    bad = np.argwhere(~to_numpy(good))
    if not len(bad):
        return None
    return f"{len(bad)} NaN or infinite value(s), the first at index {tuple(int(i) for i in bad[0])}"


def check_parameter_values(model, where):
    """Refuse an SAE whose parameters are not one float dtype or are not finite.

    A model read from a file computes garbage from such weights without a word (a NaN in
    ``encoder_`` makes every code NaN; an integer ``encoder_`` breaks the first Adam step), so
    every loader checks what it built. Other estimators are left as they are.

    Parameters
    ----------
    model : estimator
        Checked when it is an skdict SAE: every array of ``model._params()`` (``encoder_``,
        ``encoder_bias_``, ``components_``, ``decoder_bias_``, JumpReLU's ``threshold_`` ...),
        and BatchTopK's scalar inference ``threshold_``.
    where : str
        The file or source named in the message.

    Raises
    ------
    ValueError
        A parameter whose dtype is not float32/float64 or differs from ``components_``'s, or
        that holds NaN or infinity (+inf is allowed in ``threshold_``): the message names it,
        the count and the first bad index.
    """
    if not hasattr(model, "_params"):
        return
    params = model._params()
    dtype = np.dtype(params["components_"].dtype)
    for name, value in params.items():
        if np.dtype(value.dtype) not in (np.float32, np.float64) or np.dtype(value.dtype) != dtype:
            raise ValueError(
                f"{where}: {name} has dtype {value.dtype}, but an SAE's parameters share one dtype, float32 or "
                f"float64 (components_ is {dtype}): convert {name} to {dtype if dtype.kind == 'f' else 'float32'}."
            )
        bad = non_finite(value, (math.inf,) if name in MAY_BE_INFINITE else ())
        if bad is not None:
            raise ValueError(f"{where}: {name} holds {bad}: the model would compute NaN; the weights are damaged.")
    threshold = getattr(model, "threshold_", None)
    if isinstance(threshold, float) and math.isnan(threshold):
        raise ValueError(f"{where}: threshold_ is NaN: the model would compute no codes; the weights are damaged.")


