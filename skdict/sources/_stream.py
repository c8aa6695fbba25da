"""A stream of chunks: activations harvested from a model batch by batch.

The source does not know how many rows will come; it learns the width and dtype
from the first chunk and holds every later chunk to them.
"""

from __future__ import annotations

import itertools

import numpy as np

from skdict._array import device_of, get_namespace
from skdict.sources._base import DataSource, check_chunk, working_dtype


class ChunkStream(DataSource):
    """Chunks from an iterable (a list of arrays, a generator, a data loader).

    Parameters
    ----------
    iterable : iterable of 2-D arrays
        A *re-iterable* object (a list, or any object whose ``iter()`` gives a fresh
        iterator each time) can be read for several epochs; a one-pass iterator or
        generator can be read once.
    name : str, default="stream"

    Raises
    ------
    ValueError
        The stream is empty, or one of its chunks is not 2-D, has another width or holds
        a NaN/inf row (the message names the chunk and the row).
    """

    n_rows = None

    def __init__(self, iterable, *, name="stream"):
        self.name = name
        self._iterable = iterable
        self._one_pass = iter(iterable) is iterable
        self._used = False
        iterator = iter(iterable)
        try:
            first = next(iterator)
        except StopIteration:
            raise ValueError(f"{name} yielded no chunk: there is nothing to train on.") from None
        shape = getattr(first, "shape", None)
        if shape is None or len(shape) != 2:
            raise ValueError(f"{name}, chunk 0: expected a 2-D chunk (rows of activations), got shape {shape}.")
        self.n_features = int(shape[1])
        self.dtype = working_dtype(first.dtype)
        self.device = device_of(first)
        # a one-pass iterator has given its first chunk away: it is put back in front
        self._pending = itertools.chain([first], iterator) if self._one_pass else None

    @property
    def reiterable(self):
        return not self._one_pass

    def peek(self, n_rows):
        """The stream's first ``n_rows`` rows (fewer if it is shorter), checked, without consuming them.

        A one-pass iterator's chunks read here are put back in front, so the next
        :meth:`chunks` still yields them. Used for the initialisation sample of a stream.
        """
        if not self._one_pass:
            taken, n_taken = [], 0
            for _, chunk in self.chunks():
                taken.append(chunk[: n_rows - n_taken])
                n_taken += taken[-1].shape[0]
                if n_taken >= n_rows:
                    break
            return taken[0] if len(taken) == 1 else np.concatenate(taken, axis=0)
        if self._used:
            raise RuntimeError(f"{self.name} is a one-pass iterator and was already read.")
        head, n_taken = [], 0
        for chunk in self._pending:
            head.append(chunk)
            n_taken += chunk.shape[0]
            if n_taken >= n_rows:
                break
        self._pending = itertools.chain(head, self._pending)
        rows, first_row = [], 0
        for index, chunk in enumerate(head):  # checked now, so bad rows are reported before training starts
            rows.append(check_chunk(chunk, source=self.name, chunk_index=index, first_row=first_row,
                                    n_features=self.n_features, dtype=self.dtype))
            first_row += chunk.shape[0]
        xp = get_namespace(rows[0])
        return (rows[0] if len(rows) == 1 else xp.concatenate(rows, axis=0))[:n_rows]

    def chunks(self, chunk_rows=None):
        """Yield ``(first_row, chunk)`` in the stream's order; ``chunk_rows`` is ignored (chunks come as given).

        Raises
        ------
        RuntimeError
            A one-pass stream asked for a second pass.
        """
        if self._one_pass:
            if self._used:
                raise RuntimeError(
                    f"{self.name} is a one-pass iterator (e.g. a generator) and was already read: "
                    "pass a re-iterable object (a list, or a class whose __iter__ restarts) to train for several "
                    "epochs, or train on it with partial_fit one chunk at a time."
                )
            self._used = True
            iterator = self._pending
        else:
            iterator = iter(self._iterable)
        first_row = 0
        for index, chunk in enumerate(iterator):
            chunk = check_chunk(
                chunk, source=self.name, chunk_index=index, first_row=first_row,
                n_features=self.n_features, dtype=self.dtype,
            )
            yield first_row, chunk
            first_row += chunk.shape[0]
