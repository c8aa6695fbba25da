"""One streamed pass of an estimator's codes over any data skdict reads, one block of rows at a time.

Every statistic that needs the codes of a whole data set -- the firing frequency of each latent
(:func:`skdict.metrics.firing_frequency`), the top-activating samples
(:func:`skdict.inspection.top_activating`) -- reads them through :func:`code_blocks`: ``X`` is
opened by the data-source layer (:func:`skdict.sources.as_source`), read ahead on a thread and
encoded block by block, so a file far larger than memory is handled like an array.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from skdict._array import is_cupy_array
from skdict.sources import as_source, is_foreign_dlpack, is_out_of_core, prefetched

#: Code entries (rows x latents) of one block: the default block is about this many.
BLOCK_ENTRIES = 1 << 22


def n_latents(estimator):
    """The estimator's number of latents when it can be read before any transform (``components_``), else ``None``."""
    components = getattr(estimator, "components_", None)
    return None if components is None else int(components.shape[0])


def check_fitted(estimator):
    """scikit-learn's fitted check for its estimators; any other object with ``transform`` is taken as fitted."""
    if isinstance(estimator, BaseEstimator):
        check_is_fitted(estimator)


def check_count(value, name, what="rows per block", *, allow_none=True):
    """``value`` must be a positive int (or ``None`` when allowed); a ValueError naming ``name`` and ``what`` it counts.

    ``0`` or ``-1`` rows per block would otherwise loop forever or read no rows and report an empty ``X``.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        none = " or None" if allow_none else ""
        raise ValueError(f"{name} must be a positive integer ({what}){none}, got {value!r}.")
    return int(value)


def data_source(X):
    """The :class:`~skdict.sources.DataSource` reading ``X``; nested lists are read as one array (scikit-learn's rule)."""
    if not is_out_of_core(X) and not (isinstance(X, np.ndarray) or is_cupy_array(X) or is_foreign_dlpack(X)):
        X = np.asarray(X)
    return as_source(X, name="X")


def code_blocks(estimator, X, *, batch_size=None, dense=True):
    """Yield ``(first_row, block, codes)`` over ``X`` in order, one block of rows at a time.

    Parameters
    ----------
    estimator : fitted transformer
        Anything with ``transform`` (an SAE or transcoder, :class:`~skdict.SparseCoder`,
        a dictionary learner, a :class:`~sklearn.pipeline.Pipeline` ending in one).
    X : array of shape (n_samples, n_features), or out-of-core data
        Whatever :func:`skdict.sources.as_source` reads: a NumPy/CuPy array or memmap, a ``.npy``
        path, folder or glob of shards, an HDF5/Zarr dataset, a Dask array, an iterable of 2-D chunks.
    batch_size : int, optional
        Rows per block. Default: about :data:`BLOCK_ENTRIES` code entries per block.
        A stream's chunks longer than that are cut to it.
    dense : bool, default=True
        Densify sparse codes (SciPy/CuPy sparse) block by block; ``False`` yields them as ``transform`` returns them.

    Yields
    ------
    first_row : int
        Index in ``X`` of the block's first row.
    block : array of shape (n_rows_in_block, n_features)
        The rows, as the source reads them (checked: finite, float32 or float64).
    codes : array of shape (n_rows_in_block, n_latents)
        Codes of the block (NumPy, or CuPy where the estimator returns CuPy; sparse when ``dense=False``
        and ``transform`` returns sparse).

    Raises
    ------
    sklearn.exceptions.NotFittedError
        A scikit-learn estimator that is not fitted.
    ValueError
        A block holds NaN/inf (the message names the source and row); ``batch_size`` is not a
        positive integer or None.
    """
    check_fitted(estimator)
    check_count(batch_size, "batch_size")
    source = data_source(X)
    if batch_size is None:
        batch_size = max(1, BLOCK_ENTRIES // max(n_latents(estimator) or 1, source.n_features))
    with prefetched(source.chunks(batch_size), depth=2) as chunks:
        for first_row, chunk in chunks:
            for start in range(0, chunk.shape[0], batch_size):
                rows = chunk[start : start + batch_size]
                codes = estimator.transform(rows)
                if dense and hasattr(codes, "toarray"):  # a SciPy or CuPy sparse matrix: dense for this block only
                    codes = codes.toarray()
                yield first_row + start, rows, codes
