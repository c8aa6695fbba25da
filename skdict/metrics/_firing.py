"""Firing frequency of each latent: the fraction of samples on which it is active, in one streamed pass."""

from __future__ import annotations

import numpy as np

from skdict._array import get_namespace, to_numpy
from skdict.metrics._code_blocks import check_count, code_blocks
from skdict.metrics._sparsity import _sparse_pattern
from skdict.metrics._validation import _is_sparse


def _active_per_latent(codes):
    """Count of rows on which each column of ``codes`` is nonzero, as a NumPy int64 array."""
    if _is_sparse(codes):
        indptr = _sparse_pattern(codes, "csc").indptr
        return np.diff(to_numpy(indptr)).astype(np.int64)
    xp = get_namespace(codes)
    return to_numpy(xp.count_nonzero(codes, axis=0)).astype(np.int64)


def firing_frequency(estimator, X, *, block_rows=None):
    r"""Fraction of samples on which each latent fires, :math:`f_j = \frac{1}{n}\sum_i [z_{ij} \neq 0]`.

    ``X`` is read once, block by block, and each block is encoded with ``estimator.transform``:
    memory stays O(block x n_components) whatever the size of ``X``. A latent with
    :math:`f_j = 0` is dead on these samples; :math:`\log_{10} f_j` is what SAE libraries
    plot as "feature density".

    Parameters
    ----------
    estimator : fitted transformer
        Anything whose ``transform`` returns codes of shape (n_rows, n_components): an skdict SAE
        or dictionary learner, a :class:`~sklearn.pipeline.Pipeline` ending in one,
        scikit-learn's decompositions. Dense (NumPy/CuPy) and sparse codes are counted alike.
    X : array-like of shape (n_samples, n_features), or out-of-core data
        An array (NumPy, CuPy, ``np.memmap``) or anything :func:`skdict.sources.as_source` reads
        (a ``.npy`` path, folder or glob of shards, an ``h5py``/Zarr dataset, a Dask array, an
        iterable of 2-D chunks).
    block_rows : int or None, default=None
        Rows encoded at once; ``None``: about ``skdict.metrics._code_blocks.BLOCK_ENTRIES`` code entries per block.

    Returns
    -------
    frequencies : ndarray of shape (n_components,), float64
        In :math:`[0, 1]`. A NumPy array whatever the backend: it is a per-latent summary for
        tables and plots.

    Raises
    ------
    ValueError
        ``X`` has no rows, a block holds NaN/inf (the message names the row), or ``block_rows``
        is not a positive integer or None.
    """
    check_count(block_rows, "block_rows")
    counts, n_rows = None, 0
    for _, block, codes in code_blocks(estimator, X, batch_size=block_rows, dense=False):
        active = _active_per_latent(codes)
        counts = active if counts is None else counts + active
        n_rows += block.shape[0]
    if n_rows == 0:
        raise ValueError("X has no rows: the firing frequency of a latent is undefined on no samples.")
    return counts / n_rows
