"""Training data that is not on the device: arrays and memmaps of any size, ``.npy`` files, iterables.

A *source* hands the chunked training loop (:mod:`jaxbp.training.chunked`) its batches, ``K`` at a time,
stacked as ``(K, batch, ...)`` NumPy arrays (a *chunk*), without ever copying the whole data set.

- :class:`ArraySource`: NumPy arrays, ``np.memmap``s and ``.npy`` paths (opened with
  ``mmap_mode="r"``). Index-addressable: batch ``s`` of epoch ``e`` is a known set of rows, so a run
  resumes exactly at any ``(epoch, step)``. Without a key the batches are rows ``s*B .. (s+1)*B``;
  with one, epoch ``e`` takes its rows in the order :func:`jaxbp.data.order.epoch_permutation`
  gives, the very function ``fit`` calls inside its program for device arrays, so both give the
  same parameters. A chunk's rows are gathered in one copy (a contiguous slice when unshuffled).
  This is a true uniform shuffle; its price is random access to the file, cheap in the page
  cache or on an SSD, slow on a spinning disk or a network file system, where pre-shuffling the
  file once (or an iterable source with a windowed shuffle, such as grain's) reads sequentially
  instead.
- :class:`Rows`: a lazy view of some rows of such an array, in a given order, with a function
  applied to every block of rows as it is read (standardising, one-hot encoding): what
  ``jaxbp train`` streams a split of a ``.npy`` file through, never copying the features whole.
- :class:`IterableSource`: any iterable of ``(x, y)`` batches (a torch ``DataLoader``, grain,
  ``tf.data``'s ``as_numpy_iterator()``, a generator). Each epoch calls ``iter()`` again; the
  loader owns shuffling and its position, so resuming mid-epoch is the loader's job.

Multi-process data parallelism (``fit(..., mesh=...)`` after ``jax.distributed.initialize()``):
every process reads only its own rows of every batch, the slice ``[p * B / P, (p + 1) * B / P)``
of process ``p`` of ``P`` (``jax.process_index()``, ``jax.process_count()``); the global batch is
the processes' slices in process order, as in :mod:`jaxbp.training.sharding`.

A batch that cannot be read, or whose shape or dtype differs from the first one's, raises
:class:`BatchError`, which names the batch (its index counted from the start of training, its
epoch and step) and, once the training loop has seen it, carries the last good parameters.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from jaxbp.data._rows import FileShrankError, aligned_empty, row_reader
from jaxbp.data.order import draw_epoch_permutation


class Position(NamedTuple):
    """Where a run stands: ``step`` batches of epoch ``epoch`` are done (both count from 0)."""

    epoch: int
    step: int


class BatchError(ValueError):
    """A batch of a streamed source could not be read or does not fit.

    Attributes:
        batch_index: the failing batch, counted from the first batch of training (epoch 0).
        position: its ``Position`` (epoch, step within the epoch); ``None`` when unknown.
        params, opt_state: the parameters and optimizer state after the last batch trained
            before the failure (set by the training loop; ``None`` before it).
        steps_done: how many batches (from the first of training) those parameters have seen.
        history: the training history up to ``steps_done``.
        problem: the source's own message, without what the training loop appends to it.
    """

    def __init__(self, message: str, batch_index: int, position: Position | None = None):
        super().__init__(message)
        self.batch_index = batch_index
        self.position = position
        self.params: Any = None
        self.opt_state: Any = None
        self.steps_done: int | None = None
        self.history: dict[str, Any] | None = None
        self.problem = message  # what went wrong, without what the training loop adds


@dataclasses.dataclass(frozen=True)
class Chunk:
    """``x``/``y`` stacked as ``(steps, batch, ...)``; ``first`` is the global index of batch 0.

    A chunk without data (``x`` is ``None``: full batch, the data already on the device) gives
    its number of steps in ``length``.
    """

    first: int
    x: Any
    y: Any
    length: int = 0
    order: Any = None  # data on the device: the epoch's row order, gathered from in the program

    @property
    def steps(self) -> int:
        return self.length if self.x is None else int(self.x.shape[0])


def next_chunk_size(index: int, chunk_steps: int, every: int | None, total: int | None) -> int:
    """The length of the chunk that starts at global step ``index``.

    ``chunk_steps``, cut at every multiple of ``every`` and at ``total``; a shorter rest is taken
    as the largest power of two that fits. The compiled chunk program is specialised to its
    length, so this bounds the number of programs by ``1 + log2(chunk_steps)`` whatever the run's
    length or resume point.
    """
    room = chunk_steps
    if every is not None:
        room = min(room, (index // every + 1) * every - index)
    if total is not None:
        room = min(room, total - index)
    if room <= 0:
        return 0
    return chunk_steps if room == chunk_steps else 1 << (room.bit_length() - 1)


def chunk_plan(
    first: int, total: int, chunk_steps: int, every: int | None
) -> Iterator[tuple[int, int]]:
    """``(first_step, steps)`` of every chunk from global step ``first`` to ``total``."""
    index = first
    while index < total:
        size = next_chunk_size(index, chunk_steps, every, total)
        yield index, size
        index += size


def _open(where: str, name: str, value: Any) -> np.ndarray:
    if isinstance(value, str | os.PathLike):
        path = Path(value)
        if path.suffix != ".npy":
            raise ValueError(
                f"{where}: {name} is the path {str(path)!r}, but only .npy files are streamed; "
                f"save it with np.save({name}_path, array) or pass an array."
            )
        try:
            return np.load(path, mmap_mode="r")
        except (OSError, ValueError) as error:
            raise ValueError(f"{where}: cannot open {name} = {str(path)!r} ({error}).") from None
    return value


class Rows:
    """Rows ``index`` of an array, memmap or ``.npy`` file, read lazily, ``transform`` applied.

    Reading rows ``r`` of the view reads rows ``index[r]`` of ``array`` (through the same row
    reader as :class:`ArraySource`, so a file's rows never map the file into the process) and
    returns ``transform(block)``. ``fit`` streams a view as it streams a memmap: the transform
    runs in the prefetch thread, chunk by chunk, and training on ``Rows(array, index, transform)``
    gives the very parameters training on ``transform(array[index])`` gives.

    Args:
        array: a NumPy array or memmap with a batch axis first, or a ``.npy`` path (opened with
            ``mmap_mode="r"``).
        index: int row numbers of ``array`` (a subset, in any order, repeats allowed), shape
            ``(rows,)``; ``None``: all rows in order.
        transform: a function from a block of rows ``(m, ...)`` to a new block ``(m, ...)`` (the
            same row count ``m``), e.g. ``lambda b: ((b - mean) / scale).astype(np.float32)``;
            ``None``: the rows as stored.

    ``shape``, ``dtype`` and ``ndim`` are those of the transformed rows (found by transforming
    the first row); ``len`` is the number of rows.

    Raises:
        TypeError: ``array`` is not an array with a batch axis, or ``index`` is not integer.
        ValueError: ``index`` is not 1-D or points outside ``array``; ``transform`` changes the
            row count.
    """

    def __init__(self, array: Any, index: Any = None, transform: Any = None):
        self.array = _open("Rows", "array", array)
        if not isinstance(self.array, np.ndarray) or self.array.ndim < 1:
            raise TypeError(
                f"Rows: array must be a NumPy array (or memmap, or .npy path) with a batch axis "
                f"first, got {type(array).__name__} of shape {np.shape(array)}."
            )
        size = int(self.array.shape[0])
        if index is not None:
            index = np.asarray(index)
            if index.dtype.kind not in "iu":
                raise TypeError(f"Rows: index must hold integer row numbers, got dtype {index.dtype}.")  # fmt: skip
            if index.ndim != 1:
                raise ValueError(f"Rows: index must be 1-D (row numbers), got shape {index.shape}.")  # fmt: skip
            index = index.astype(np.int64)
            if index.size and (int(index.min()) < 0 or int(index.max()) >= size):
                raise ValueError(
                    f"Rows: index holds rows {int(index.min())}..{int(index.max())}, but the "
                    f"array has rows 0..{size - 1}; pass row numbers inside it (no negatives)."
                )
        self.index: np.ndarray | None = index
        self.transform = transform
        self._read = row_reader(self.array)
        first = self.read(np.arange(min(len(self), 1), dtype=np.int64))
        self.shape: tuple[int, ...] = (len(self), *first.shape[1:])
        self.dtype: np.dtype[Any] = first.dtype
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return int(self.array.shape[0] if self.index is None else self.index.shape[0])

    def __repr__(self) -> str:
        return f"Rows(shape={self.shape}, dtype={self.dtype}, of array {self.array.shape})"

    def read(self, rows: np.ndarray) -> np.ndarray:
        """``transform(array[index[rows]])`` for a flat vector of view rows, as a new array."""
        rows = np.asarray(rows, np.int64)
        block = self._read(rows if self.index is None else self.index[rows])
        if self.transform is None:
            return block
        out = np.asarray(self.transform(block))
        if out.ndim < 1 or out.shape[0] != rows.shape[0]:
            raise ValueError(
                f"Rows: transform turned a block of {rows.shape[0]} rows into shape {out.shape}; "
                f"it must keep the row count (one output row per row read)."
            )
        return out

    def placeholder(self) -> np.ndarray:
        """A read-only array of the view's shape and dtype that holds no memory (a broadcast
        zero): what shape checks look at without reading a row."""
        return np.broadcast_to(np.zeros((), self.dtype), self.shape)


class ArraySource:
    """Rows of NumPy arrays, memmaps or ``.npy`` files (see the module); nothing is copied whole.

    Args:
        where: the calling function's name, for messages.
        x, y: arrays with the same number of rows, ``.npy`` paths, or :class:`Rows` views.
        process_index, process_count: this process and how many processes share every batch
            (data-parallel training over a mesh: ``jax.process_index()``, ``jax.process_count()``;
            default: one process reads whole batches).
    """

    def __init__(
        self,
        where: str,
        x: Any,
        y: Any,
        *,
        process_index: int = 0,
        process_count: int = 1,
    ):
        self.x, self.y = _open(where, "x", x), _open(where, "y", y)
        for name, value in (("x", self.x), ("y", self.y)):
            if not isinstance(value, np.ndarray | Rows) or value.ndim < 1:
                raise TypeError(
                    f"{where}: {name} must be a NumPy array with a batch axis first, got "
                    f"{type(value).__name__} of shape {np.shape(value)}."
                )
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(
                f"{where}: x has {self.x.shape[0]} examples (shape {self.x.shape}) but y has "
                f"{self.y.shape[0]} (shape {self.y.shape}); pass one target per example."
            )
        self.n = int(self.x.shape[0])
        self.process_index, self.process_count = process_index, process_count
        self._read_x, self._read_y = _reader(self.x), _reader(self.y)

    def sample(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Arrays of ``batch_size`` rows with the data's shapes and dtypes, for checks and sizes
        before compiling; nothing is read (see :meth:`placeholders`)."""
        x, y = self.placeholders()
        rows = min(batch_size, self.n)
        return x[:rows], y[:rows]

    def placeholders(self) -> tuple[np.ndarray, np.ndarray]:
        """``x`` and ``y`` as arrays for shape and dtype checks; a :class:`Rows` view reads
        nothing (:meth:`Rows.placeholder`)."""
        pair = [v.placeholder() if isinstance(v, Rows) else v for v in (self.x, self.y)]
        return pair[0], pair[1]

    def local_rows(self, batch_rows: np.ndarray) -> np.ndarray:
        """This process's slice of every batch: ``(steps, batch)`` -> ``(steps, batch / P)``."""
        size = batch_rows.shape[1]
        if size % self.process_count:
            raise ValueError(
                f"the batch of {size} examples does not split over {self.process_count} "
                f"processes; pass a batch_size that divides by {self.process_count}."
            )
        part = size // self.process_count
        return batch_rows[:, self.process_index * part : (self.process_index + 1) * part]

    def read(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``x[rows], y[rows]`` for a flat vector of row indices, in that order, as new arrays.

        A file's rows are read without mapping the file into the process (see
        :mod:`jaxbp.data._rows`), so a file of any size costs the process about one chunk of memory.
        """
        rows = np.asarray(rows, np.int64)
        return self._read_x(rows), self._read_y(rows)


def _reader(value: np.ndarray | Rows) -> Any:
    return value.read if isinstance(value, Rows) else row_reader(value)


def array_chunks(
    source: ArraySource,
    *,
    batch_size: int,
    key: Any,
    plan: Iterable[tuple[int, int]],
) -> Iterator[Chunk]:
    """The chunks ``(first_step, steps)`` of ``plan``, steps counted over epochs from 0.

    A chunk may span an epoch boundary. Each epoch's permutation is drawn once, and the next
    epoch's is dispatched when an epoch starts, so it is computed while this one is read.
    """
    plan = list(plan)
    steps_per_epoch = source.n // batch_size
    last_epoch = (plan[-1][0] + plan[-1][1] - 1) // steps_per_epoch if plan else -1
    orders: dict[int, Any] = {}

    def order(epoch: int) -> np.ndarray:
        for wanted in (epoch, epoch + 1):
            if wanted <= last_epoch and wanted not in orders:
                orders[wanted] = draw_epoch_permutation(key, wanted, source.n)  # asynchronous
        for old in [e for e in orders if e < epoch]:
            del orders[old]
        orders[epoch] = np.asarray(orders[epoch])
        return orders[epoch]

    for first, size in plan:
        batch_rows = np.empty((size, batch_size), np.int64)
        for i, index in enumerate(range(first, first + size)):
            epoch, step = divmod(index, steps_per_epoch)
            if key is None:
                batch_rows[i] = np.arange(step * batch_size, (step + 1) * batch_size)
            else:
                batch_rows[i] = order(epoch)[step * batch_size : (step + 1) * batch_size]
        local = source.local_rows(batch_rows)
        try:
            x, y = source.read(local.reshape(-1))
        except (OSError, ValueError, IndexError) as error:
            epoch, step = divmod(first, steps_per_epoch)
            detail = str(error) if isinstance(error, FileShrankError) else f"{type(error).__name__}: {error}"  # fmt: skip
            raise BatchError(
                f"fit: reading batches {first}..{first + size - 1} (from epoch {epoch}, step "
                f"{step}) failed: {detail}",
                first,
                Position(epoch, step),
            ) from error
        yield Chunk(first, x.reshape(size, -1, *x.shape[1:]), y.reshape(size, -1, *y.shape[1:]))


def _describe(value: Any) -> str:
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is None:
        return f"a {type(value).__name__}"
    return f"shape {tuple(shape)} dtype {dtype}"


def _native_array(value: Any) -> np.ndarray:
    """``value`` as a NumPy array in this machine's byte order (JAX refuses ``'>f4'``)."""
    array = np.asarray(value)
    return array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("="))


class IterableSource:
    """Any iterable of ``(x, y)`` batches; every batch must match the first in shape and dtype.

    An epoch is one pass, ``iter(batches)``, or its first ``steps_per_epoch`` batches when that
    is given (then a one-shot iterator, such as a generator or an endless stream, is read on
    from where the last epoch stopped: ``iter()`` of an iterator is the iterator itself). An
    epoch that ends before its length (``steps_per_epoch``, else ``len(batches)`` when the
    iterable has one), or gives no batch at all, raises :class:`BatchError` naming the epoch.

    Args:
        where: the calling function's name, for messages.
        batches: an iterable (iterated once per epoch) or a one-shot iterator (one epoch only,
            unless ``steps_per_epoch`` is given).
        epochs: how many epochs will be drawn.
        steps_per_epoch: batches per epoch (``None``: a whole pass, its length ``len(batches)``
            when known, else unknown until it ends).
    """

    def __init__(
        self,
        where: str,
        batches: Iterable[Any],
        *,
        epochs: int,
        steps_per_epoch: int | None = None,
    ):
        if not isinstance(batches, Iterable):
            raise TypeError(
                f"{where}: x must be an array, a .npy path or an iterable of (x, y) batches, "
                f"got {type(batches).__name__}."
            )
        self.where = where
        self.batches = batches
        self.steps_per_epoch = steps_per_epoch
        #: batches per epoch: steps_per_epoch, else len(batches), else None (unknown)
        self.length: int | None = steps_per_epoch
        if self.length is None and hasattr(batches, "__len__"):
            self.length = len(batches)  # type: ignore[arg-type]
        first_iterator = iter(batches)
        self.one_shot = first_iterator is batches
        if self.one_shot and epochs > 1 and steps_per_epoch is None:
            raise ValueError(
                f"{where}: x is a one-shot iterator ({type(batches).__name__}), which cannot be "
                f"read for {epochs} epochs; pass a re-iterable (a DataLoader, a list, an object "
                f"whose __iter__ starts a new pass), steps_per_epoch=N to read N batches per "
                f"epoch on from where the last epoch stopped, or epochs=1."
            )
        try:
            first = next(first_iterator)
        except StopIteration:
            raise ValueError(f"{where}: x, the iterable of batches, yielded no batch.") from None
        self.first = self._as_pair(first, 0, None)
        self._pending: Iterator[Any] | None = itertools.chain([first], first_iterator)

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """The first batch, to check shapes and dtypes before compiling."""
        return self.first

    def _as_pair(
        self, batch: Any, index: int, reference: tuple[np.ndarray, np.ndarray] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(batch, tuple | list) or len(batch) != 2:
            raise BatchError(
                f"{self.where}: batch {index} is {_describe(batch)}, not an (x, y) pair; "
                f"yield (x, y) tuples of arrays.",
                index,
            )
        try:
            pair = (_native_array(batch[0]), _native_array(batch[1]))
        except ValueError:
            raise BatchError(
                f"{self.where}: batch {index} holds a ragged nested list (rows of different "
                f"lengths), not an array; yield rectangular arrays.",
                index,
            ) from None
        if reference is not None:
            for name, got, want in zip("xy", pair, reference, strict=True):
                if got.shape != want.shape or got.dtype != want.dtype:
                    raise BatchError(
                        f"{self.where}: batch {index} has {name} of {_describe(got)}, but batch 0 "
                        f"had {_describe(want)}; every batch must have the same shape and dtype "
                        f"(drop a short last batch, e.g. DataLoader(..., drop_last=True)).",
                        index,
                    )
        return pair

    def chunks(
        self, *, epochs: int, chunk_steps: int, every: int | None, first: int = 0
    ) -> Iterator[Chunk]:
        """Stacked chunks over ``epochs`` epochs (see the class), cut as :func:`next_chunk_size`
        says (the total is unknown until the data ends), numbered from global step ``first``. A
        failure reading batch ``i`` (counted from ``first``) raises :class:`BatchError`; so does
        an epoch that ends short, after the chunks of the batches before it."""
        pending: list[tuple[np.ndarray, np.ndarray]] = []
        index = first
        for epoch in range(epochs):
            iterator = self._pending if epoch == 0 and self._pending is not None else None
            self._pending = None
            if iterator is None:
                try:
                    iterator = iter(self.batches)
                except Exception as error:  # the loader's own __iter__ failed
                    yield from _rest(first, pending, chunk_steps, every)
                    raise BatchError(
                        f"{self.where}: starting epoch {epoch} of the iterable (iter(x)) failed "
                        f"before batch {index}: {type(error).__name__}: {error}",
                        index,
                    ) from error
            count = 0
            while self.length is None or count < self.length:
                try:
                    batch = next(iterator)
                except StopIteration:
                    break
                except Exception as error:
                    raise BatchError(
                        f"{self.where}: reading batch {index} (epoch {epoch}) failed: "
                        f"{type(error).__name__}: {error}",
                        index,
                    ) from error
                pending.append(self._as_pair(batch, index, self.first))
                index += 1
                count += 1
                if len(pending) == next_chunk_size(first, chunk_steps, every, None):
                    yield _stack(first, pending)
                    first, pending = index, []
            if count == 0 or (self.length is not None and count < self.length):
                yield from _rest(first, pending, chunk_steps, every)
                raise self._short(epoch, count, index)
        yield from _rest(first, pending, chunk_steps, every)

    def _short(self, epoch: int, count: int, index: int) -> BatchError:
        """The error for epoch ``epoch`` ending after ``count`` batches, short of its length."""
        if self.steps_per_epoch is not None:
            wanted = f"not the steps_per_epoch={self.steps_per_epoch} asked for"
        elif self.length is not None:
            wanted = f"not the {self.length} its len() gives"
        else:
            wanted = "none at all"
        fix = (
            "an iterable whose __iter__ starts a new pass each time (a list, a DataLoader); a "
            "generator, or an object that hands back the same iterator, is read once: pass "
            "steps_per_epoch=N to read N batches per epoch on from where the last stopped, "
            "or fewer epochs"
        )
        return BatchError(
            f"{self.where}: x, the iterable of batches, ran out in epoch {epoch} (counted from "
            f"0) after {count} batches, {wanted}; pass {fix}.",
            index,
            None if self.length is None else Position(epoch, count),
        )


def _rest(
    first: int, pending: list[tuple[np.ndarray, np.ndarray]], chunk_steps: int, every: int | None
) -> Iterator[Chunk]:
    """The chunks of the batches left when the data ends."""
    while pending:
        size = next_chunk_size(first, chunk_steps, every, first + len(pending))
        yield _stack(first, pending[:size])
        first, pending = first + size, pending[size:]


def _stack(first: int, pairs: list[tuple[np.ndarray, np.ndarray]]) -> Chunk:
    """The batches stacked into new aligned arrays (a CPU device then uses them as they are)."""
    stacked = []
    for part in (0, 1):
        arrays = [pair[part] for pair in pairs]
        out = aligned_empty((len(arrays), *arrays[0].shape), arrays[0].dtype)
        stacked.append(np.stack(arrays, out=out))
    return Chunk(first, stacked[0], stacked[1])
