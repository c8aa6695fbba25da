"""Exact rescaling by powers of two: how skdict keeps sums of squares finite at any data scale.

Multiplying by :math:`2^{-e}` (``ldexp``) is exact, so a computation run on
``ldexp(x, -e)`` and scaled back gives the answer at ``x``'s own scale without the
rounding a division would add. With :math:`e` the exponent of :math:`\\max|x|`,
the rescaled data lie in [0.5, 1): their squares neither overflow (float32 data
near 1e38) nor underflow (subnormal float64 data near 1e-310).
"""

from __future__ import annotations

from skdict._array import get_namespace


def max_exponent(x, axis=None):
    """The exponent :math:`e` of ``max |x|`` (per ``axis`` slice, or one): ``max |x|`` is in :math:`[2^{e-1}, 2^e)`.

    A zero array (or slice) gets 0; an empty array gets 0.

    Parameters
    ----------
    x : array (NumPy or CuPy)
    axis : int or None
        ``None``: one exponent for the whole array (a 0-d int array). An axis: one per
        slice, with that axis kept (length 1) so the result broadcasts against ``x``.

    Returns
    -------
    e : int array
    """
    xp = get_namespace(x)
    if x.size == 0:
        return xp.zeros((), dtype=xp.int32) if axis is None else xp.zeros([1 if i == axis else n for i, n in enumerate(x.shape)], dtype=xp.int32)
    return xp.frexp(xp.max(xp.abs(x), axis=axis, keepdims=axis is not None))[1]
