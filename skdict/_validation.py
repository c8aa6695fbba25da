"""Input validation shared by every estimator, for NumPy and CuPy arrays alike.

NumPy (and anything array-like: lists, DataFrames, memmaps) goes through
scikit-learn's :func:`~sklearn.utils.validation.validate_data`, so messages and
``feature_names_in_`` behave exactly as scikit-learn users expect. CuPy arrays
cannot go through it (it would copy them to the host), so they get the same
checks here, written against ``xp``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
from sklearn.utils._param_validation import validate_parameter_constraints
from sklearn.utils.validation import validate_data

from skdict._array import device_of, get_namespace, is_cupy_array, to_device
from skdict.ops.atoms import normalize_rows
from skdict.sources._dispatch import from_dlpack, is_foreign_dlpack

FLOAT_DTYPES = (np.float64, np.float32)


def _check_device_array(X, *, name, estimator, min_samples=1):
    """The checks of :func:`check_array` for a CuPy array: 2-D, float, finite, non-empty."""
    xp = get_namespace(X)
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2D array for {name}, got {X.ndim}D with shape {X.shape}. "
            "Reshape your data with .reshape(-1, 1) for a single feature or .reshape(1, -1) for a single sample."
        )
    if X.dtype not in (xp.float32, xp.float64):
        X = X.astype(xp.float64)
    if X.shape[0] < min_samples:
        raise ValueError(
            f"Found array with {X.shape[0]} sample(s) (shape={X.shape}) while a minimum of "
            f"{min_samples} is required"
            + (f" by {type(estimator).__name__}." if estimator is not None else f" for {name}.")
        )
    if X.shape[1] < 1:
        raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 is required.")
    if not bool(xp.isfinite(X).all()):
        raise ValueError(f"Input {name} contains NaN or infinity; remove or impute those values first.")
    return X


def _check_n_features(estimator, X, reset):
    if reset:
        estimator.n_features_in_ = X.shape[1]
    elif X.shape[1] != estimator.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(estimator).__name__} is expecting "
            f"{estimator.n_features_in_} features as input."
        )


def check_input(estimator, X, *, reset):
    """Validate ``X`` for ``estimator`` (fit when ``reset`` is true, else a fitted method).

    Returns a C-contiguous float32/float64 array of the input's backend; other
    dtypes become float64. Another framework's array (a torch tensor, a JAX array)
    is taken through DLPack, zero-copy: CPU memory as NumPy, CUDA memory as CuPy.
    """
    if is_foreign_dlpack(X):
        X = from_dlpack(X)
    if is_cupy_array(X):
        X = _check_device_array(X, name="X", estimator=estimator)
        _check_n_features(estimator, X, reset)
        return get_namespace(X).ascontiguousarray(X)
    return validate_data(estimator, X, reset=reset, dtype=FLOAT_DTYPES, order="C")


def _as_array(value, name, like):
    """``value`` as a NumPy or CuPy array, on ``like``'s device when ``like`` is given (no dtype change yet)."""
    if scipy.sparse.issparse(value) or type(value).__module__.startswith("cupyx.scipy.sparse"):
        raise TypeError(f"{name} must be a dense array, got a sparse {type(value).__name__}; call .toarray() first.")
    if like is not None and is_cupy_array(value) != is_cupy_array(like):
        return to_device(value, device_of(like))
    return value if is_cupy_array(value) else np.asarray(value)


def _float_dtype(array, name, dtype):
    """The floating dtype ``array`` is validated into; complex and non-numeric input raise naming ``name``."""
    kind = array.dtype.kind
    if kind == "c":
        raise ValueError(
            f"{name} is complex ({array.dtype}); skdict works on real arrays and will not drop the imaginary "
            f"part silently. Pass {name}.real (or abs({name})) if that is what you mean."
        )
    if kind not in "biuf":
        if kind == "O":  # e.g. a DataFrame of mixed numeric columns
            try:
                array.astype(np.float64)
            except (TypeError, ValueError):
                kind = "?"
        if kind != "O":
            raise ValueError(f"{name} must hold real numbers, got dtype {array.dtype}; convert it to floats first.")
    if dtype is not None:
        return dtype
    return array.dtype if array.dtype in FLOAT_DTYPES else np.float64


def _shape_text(shape, shape_names):
    """``(n_samples, n_components=8)``: each axis's name, with its required size when there is one."""
    names = shape_names or tuple(f"axis {i}" for i in range(len(shape)))
    parts = [name if size is None else f"{name}={size}" for name, size in zip(names, shape)]
    return "(" + ", ".join(parts) + ")"


def check_array_argument(value, name, *, ndim=2, shape=None, shape_names=None, like=None, dtype=None, min_rows=1):
    """Validate an array argument that is not ``X`` (codes, a dictionary, a warm start, a target).

    The one rule set for every such argument, for NumPy and CuPy alike:

    - sparse input raises :class:`TypeError`; complex input raises (no silent
      loss of the imaginary part); non-numeric input raises;
    - ``ndim`` must match exactly (a 3-D target is never read as a 2-D one);
    - each axis with a required size in ``shape`` must have it; the message names
      both shapes;
    - NaN and infinity raise;
    - the dtype becomes ``dtype``, else ``like``'s dtype, else float32/float64 are
      kept and any other real dtype becomes float64 (scikit-learn's rule).

    Parameters
    ----------
    value : array-like, NumPy or CuPy array
    name : str
        The parameter's name, used in every message (e.g. ``"dict_init"``).
    ndim : int, default=2
        Required number of dimensions.
    shape : tuple of (int or None) or None
        Required size of each axis (``None``: any size). ``None``: no size check.
    shape_names : tuple of str or None
        What each axis counts, for messages, e.g. ``("n_samples", "n_components")``.
    like : array or None
        When given, the result is moved to ``like``'s device (NumPy or CuPy) and,
        unless ``dtype`` is given, cast to ``like``'s dtype.
    dtype : dtype or None
        The result's dtype (overrides ``like``'s).
    min_rows : int, default=1
        Fewest entries along the first axis.

    Returns
    -------
    array
        C-contiguous, finite, floating, of ``like``'s backend (or ``value``'s own).

    Raises
    ------
    TypeError
        Sparse input.
    ValueError
        Complex or non-numeric values, wrong ``ndim`` or shape, too few rows, NaN or infinity.
    """
    array = _as_array(value, name, like)
    xp = get_namespace(array)
    target_dtype = _float_dtype(array, name, like.dtype if dtype is None and like is not None else dtype)
    expected = _shape_text(shape, shape_names) if shape is not None else None
    if array.ndim != ndim:
        raise ValueError(
            f"{name} must be a {ndim}-D array"
            + (f" of shape {expected}" if expected else "")
            + f", got {array.ndim}-D with shape {tuple(array.shape)}."
        )
    if shape is not None and any(size is not None and size != got for size, got in zip(shape, array.shape)):
        raise ValueError(f"{name} must have shape {expected}, got shape {tuple(array.shape)}.")
    if ndim >= 1 and array.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} row(s), got shape {tuple(array.shape)}.")
    array = xp.ascontiguousarray(array.astype(target_dtype, copy=False))
    if not bool(xp.isfinite(array).all()):
        raise ValueError(f"{name} contains NaN or infinity; remove or impute those values first.")
    return array


def check_codes(codes, n_components, *, like=None, name="X"):
    """Validate codes given to ``inverse_transform``: real, finite, of shape (n_samples, n_components).

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_components), NumPy or CuPy
    n_components : int
        The model's number of latents (atoms).
    like : array or None
        Usually the model's ``components_``: the result has its device and dtype.
        ``None``: the codes keep their backend, float32/float64 are kept, other
        dtypes become float64.
    name : str, default="X"
        The argument's name in messages (scikit-learn calls it ``X``).

    Returns
    -------
    array of shape (n_samples, n_components)

    Raises
    ------
    TypeError
        Sparse codes.
    ValueError
        Complex codes, NaN/inf, not 2-D, no row, or a second axis other than ``n_components``.
    """
    return check_array_argument(
        codes, f"{name} (the codes)", shape=(None, n_components), shape_names=("n_samples", "n_components"), like=like
    )


def check_target(Y, X, *, name="Y"):
    """Validate a transcoder target ``Y``: 2-D of shape (n_samples, n_targets), real, finite, ``X``'s dtype.

    Raises
    ------
    TypeError
        ``Y`` and ``X`` on different backends (NumPy vs CuPy), or ``Y`` sparse.
    ValueError
        Integer ``Y`` (labels, not activations), ``Y`` not 2-D, complex, NaN/inf, or
        another number of rows than ``X``.
    """
    if is_foreign_dlpack(Y):
        Y = from_dlpack(Y)
    if is_cupy_array(Y) != is_cupy_array(X):
        raise TypeError(f"{name} and X must both be NumPy or both be CuPy arrays.")
    dtype = getattr(Y, "dtype", None)
    if dtype is not None and getattr(dtype, "kind", "f") in "biu" and getattr(Y, "ndim", 2) == 2:
        raise ValueError(
            f"{name} is a 2-D {dtype} array: that looks like labels (e.g. one-hot or multi-output), not "
            "activations. A 2-D target makes the fit a transcoder that reconstructs it; pass labels as a "
            f"1-D vector (ignored, as in a Pipeline) or give {name} as floats to train a transcoder."
        )
    return check_array_argument(
        Y, name, shape=(X.shape[0], None), shape_names=("n_samples", "n_targets"), like=X
    )


def is_matrix_target(y, *, name="Y"):
    """Whether ``y`` is a 2-D matrix (a transcoder target) rather than a label vector or ``None``.

    scikit-learn's Pipeline passes the labels ``y`` to every step; a 1-D ``y`` is
    therefore ignored by the SAEs (as by every unsupervised transformer), and only
    a 2-D ``Y`` of shape (n_samples, n_targets) makes the fit a transcoder.

    Raises
    ------
    ValueError
        ``y`` with 3 or more dimensions: neither labels nor a target, and never
        silently ignored.
    """
    if y is None:
        return False
    ndim = getattr(y, "ndim", None)
    ndim = np.asarray(y).ndim if ndim is None else ndim
    if ndim >= 3:
        raise ValueError(
            f"{name} must be a 2-D transcoder target of shape (n_samples, n_targets) or 1-D labels (ignored), "
            f"got {ndim}-D with shape {tuple(np.shape(y)) if not is_cupy_array(y) else tuple(y.shape)}; "
            f"reshape it, e.g. {name}.reshape(len({name}), -1)."
        )
    return ndim == 2


def check_atoms(atoms, n_atoms, n_features, *, like, name, row_name="n_components"):
    """Validate user-given directions (atoms as rows) and return them with unit rows.

    Used for a dictionary to start from (e.g. an SAE's ``components_``) and for
    anchors: 2-D of shape ``(n_atoms, n_features)``, finite, no zero row.

    Parameters
    ----------
    atoms : array-like of shape (n_atoms, n_features), NumPy or CuPy
    n_atoms : int or None
        Expected number of rows; ``None`` accepts any.
    n_features : int
    like : array
        The result has its backend and dtype.
    name : str
        Parameter name used in error messages.
    row_name : str
        What the rows count, in the shape shown by error messages.

    Raises
    ------
    ValueError
        Wrong shape, complex values, NaN/inf (the rules of :func:`check_array_argument`), or a zero row.
    """
    xp = get_namespace(like)
    atoms = _as_array(atoms, name, like)
    if n_atoms is None:
        expected = f"({row_name}, {n_features})"
    else:
        expected = f"({row_name}, n_features) = ({n_atoms}, {n_features})"
    if atoms.ndim != 2 or atoms.shape[1] != n_features or (n_atoms is not None and atoms.shape[0] != n_atoms):
        raise ValueError(
            f"{name} must have shape {expected} with atoms as rows, got shape {tuple(atoms.shape)}"
            + (". An SAE's components_ has this shape when its n_components matches" if row_name == "n_components" else "")
            + f"; transpose a (n_features, {row_name}) matrix."
        )
    atoms = check_array_argument(atoms, name, like=like, min_rows=0)
    if bool(xp.any(xp.max(xp.abs(atoms), axis=1) == 0)):
        raise ValueError(f"{name} has all-zero atoms (a zero row); every atom needs a direction.")
    return normalize_rows(atoms, eps=0.0)


def check_params_read(estimator, names):
    """Re-check the parameters ``names`` of a fitted ``estimator`` where a method reads them again.

    ``fit`` validates every parameter against ``_parameter_constraints``; a parameter read
    again after ``fit`` (``transform`` reading a ``k``, ``positive`` or ``learning_rate``
    changed by ``set_params``) is checked here against the same constraints, so a bad
    value raises naming it instead of giving wrong codes.

    Parameters
    ----------
    estimator : estimator with ``_parameter_constraints``
    names : iterable of str
        The parameters the calling method reads.

    Raises
    ------
    sklearn.utils._param_validation.InvalidParameterError
        A ``ValueError`` (and ``TypeError``) naming the parameter, its constraint and its value.
    """
    constraints = estimator._parameter_constraints
    validate_parameter_constraints(
        {name: constraints[name] for name in names},
        {name: getattr(estimator, name) for name in names},
        caller_name=type(estimator).__name__,
    )
