"""Data sources: training and inference on activations that need not fit in memory.

One layer that every estimator reads from (beside :mod:`skdict._array` in the
layers of DESIGN.md). :func:`as_source` turns the user's data into a
:class:`DataSource`; :func:`chunks_in_random_order` and :func:`shuffled_batches`
turn a source into minibatches by block shuffling, and :class:`prefetched` reads
ahead on a background thread.
"""

from skdict.sources._arrays import ArraySource, DaskSource, PairedSource, ShardedSource, npy_source
from skdict.sources._base import DataSource, RowRangeSource, check_chunk
from skdict.sources._batches import (
    chunks_in_random_order,
    epoch_batches,
    prefetched,
    sample_rows,
    shuffled_batches,
)
from skdict.sources._dispatch import as_source, from_dlpack, is_foreign_dlpack, is_out_of_core
from skdict.sources._stream import ChunkStream

__all__ = [
    "ArraySource",
    "ChunkStream",
    "DaskSource",
    "DataSource",
    "PairedSource",
    "RowRangeSource",
    "ShardedSource",
    "as_source",
    "check_chunk",
    "chunks_in_random_order",
    "epoch_batches",
    "from_dlpack",
    "is_foreign_dlpack",
    "is_out_of_core",
    "npy_source",
    "prefetched",
    "sample_rows",
    "shuffled_batches",
]
