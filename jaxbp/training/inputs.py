"""What a run trains on, opened and checked once, and the run's span in global steps.

:func:`open_data` turns ``fit``'s ``x, y`` into a source: a :class:`DeviceSource` (device arrays:
what the whole-run program scans, or what a streamed chunk's program gathers from), or one of
:mod:`jaxbp.data.sources`' (NumPy arrays, memmaps, ``.npy`` paths, ``Rows`` views, iterables of
batches), whose chunks are read on the host. :func:`plan` counts the run in global steps from
epoch 0: where it starts (``start_epoch``, ``start_step``) and ends. Both refuse what does not fit
with the same messages on both paths: NaN in the data, a batch size larger than the data, a run
beyond the int32 step counter, a start outside an epoch.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import numpy as np

from jaxbp.data.sources import ArraySource, IterableSource, Rows
from jaxbp.model import batch_checks as _batch_checks
from jaxbp.model import checks as _checks
from jaxbp.model.steps import check_batch
from jaxbp.training import run_checks as _run_checks
from jaxbp.training import sharding as _sharding
from jaxbp.training.end_checks import TrainingWarning

if TYPE_CHECKING:
    from jaxbp._types import Array, Loss, Model, Params


def wants_chunks(x: Any, y: Any, mesh: Any) -> bool:
    """Whether ``fit`` streams ``x``: a memmap, a ``.npy`` path, a :class:`~jaxbp.data.sources.Rows`
    view (``x`` or ``y``), an iterable of batches (``y`` is ``None``), or an in-memory NumPy array
    (without a mesh: with one, in-memory arrays keep the whole-run path and its multi-process
    meaning, each process passing its slice)."""
    if isinstance(x, Rows) or isinstance(y, Rows):
        return True
    if isinstance(x, jax.Array):
        return False
    if y is None or isinstance(x, np.memmap | str | os.PathLike):
        return True
    return isinstance(x, np.ndarray) and mesh is None


def check_arrays(
    where: str,
    model: Model,
    loss: Loss,
    params: Params,
    x: Any,
    y: Any,
    mesh: Any,
    *,
    values: bool = False,
) -> tuple[Array, Array]:
    """Data a whole-run program (``fit``'s or ``fit_ensemble``'s) trains on, checked: return
    ``x, y`` as placed arrays.

    ``params`` may be shape-and-dtype stand-ins (a NumPy array per leaf); with ``values`` they are
    the real ones, checked finite, and each example's loss checked to be its own (see
    :func:`jaxbp.model.batch_checks.check_values`). With a mesh, the data is
    split over its data axis, so the batch-size check that follows sees the global row count.
    """
    _, x, y = check_batch(where, model, loss, params, x, y, values=values)
    x, y = _run_checks.as_batch_arrays(where, model, x, y)
    _run_checks.check_finite_data(where, "x", x)
    _run_checks.check_finite_data(where, "y", y)
    if mesh is not None:
        x, y = _sharding.shard_batch(mesh, x, y, where=where)
    return x, y


def check_in_memory(where: str, x: Any, y: Any) -> None:
    """``fit_ensemble``'s data: arrays x and y; a :class:`~jaxbp.data.sources.Rows` view or an
    iterable of batches (``y`` is ``None``) is refused, saying how to read it or stream it."""
    for name, value in (("x", x), ("y", y)):
        if isinstance(value, Rows):
            raise TypeError(
                f"{where}: {name} is a jaxbp.Rows view ({value!r}); {where} trains on arrays in "
                f"memory: read it whole with {name}.read(np.arange(len({name}))), or train one "
                f"model at a time with jaxbp.fit, which streams it."
            )
    if y is None:
        raise TypeError(
            f"{where}: y is None; {where} trains on arrays x and y, not on an iterable of "
            f"batches: pass both arrays, or train one model at a time with jaxbp.fit, which "
            f"streams batches."
        )


def check_ensemble_params(
    where: str, model: Model, stacked_params: Params, first: Params, x: Any
) -> Params:
    """An ensemble's params in native byte order and finite (naming the leaf), and one model's
    params (``first``: shape stand-ins) fit the model: when they do not, the message says how to
    stack a list of per-model params, the likely cause."""
    stacked_params = _batch_checks.native_params(where, stacked_params, "stacked_params")
    structs = _checks.shape_structs((first, _checks.as_array(where, "x", x)))
    try:
        jax.eval_shape(model, *structs)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{where}: the model fails on one model's params (stacked_params without its leading "
            f"axis) of shapes {[tuple(s.shape) for s in jax.tree.leaves(structs[0])]}: {error}. "
            f"If stacked_params is a list of per-model params, stack them: "
            f"jax.tree.map(lambda *a: jnp.stack(a), *params_list), or jax.vmap(init)(keys)."
        ) from error
    _batch_checks.check_finite_params(where, stacked_params, "stacked_params")
    return stacked_params


def check_ensemble_losses(
    where: str, model: Model, loss: Loss, stacked_params: Params, x: Array, y: Array
) -> None:
    """The first model's loss of each of the first rows of ``x, y`` is that example's own."""
    first = jax.tree.map(lambda leaf: leaf[0], stacked_params)
    rows = np.arange(min(int(x.shape[0]), _batch_checks.PROBE_EXAMPLES))
    _batch_checks.check_values(where, model, loss, first, x[rows], y[rows])


class DeviceSource:
    """Device arrays that stay on the device: the whole-run program scans them, and a streamed
    chunk's program gathers its own batches from them (by the epoch's row order, drawn on the
    device) instead of the host reading and sending them."""

    def __init__(self, where: str, x: Array, y: Array):
        for name, value in (("x", x), ("y", y)):
            if value.ndim < 1:
                raise TypeError(
                    f"{where}: {name} must have a batch axis first, got shape {value.shape}."
                )
        if x.shape[0] != y.shape[0]:
            raise ValueError(
                f"{where}: x has {x.shape[0]} examples (shape {x.shape}) but y has "
                f"{y.shape[0]} (shape {y.shape}); pass one target per example."
            )
        self.x, self.y, self.n = x, y, int(x.shape[0])


Source = ArraySource | IterableSource | DeviceSource


def open_data(
    where: str,
    model: Model,
    loss: Loss,
    params: Params,
    x: Any,
    y: Any,
    *,
    streamed: bool,
    epochs: int,
    mesh: Any,
    steps_per_epoch: int | None = None,
) -> Source:
    """``x, y`` as a source, checked against the model and loss, NaN refused (in-memory data
    now, a file's or an iterable's batch by batch as they are read)."""
    check_pairing(where, x, y)
    if not streamed:
        arrays = check_arrays(where, model, loss, params, x, y, mesh, values=True)
        return DeviceSource(where, *arrays)
    source = open_source(where, x, y, epochs=epochs, mesh=mesh, steps_per_epoch=steps_per_epoch)
    if isinstance(source, ArraySource):  # shapes only: nothing is read (see probe_rows)
        check_batch(where, model, loss, params, *source.placeholders())
        check_finite_in_memory(where, source)
    elif isinstance(source, DeviceSource):
        check_batch(where, model, loss, params, source.x, source.y, values=True)
        _run_checks.check_finite_data(where, "x", source.x)
        _run_checks.check_finite_data(where, "y", source.y)
    else:  # an iterable: its first batch
        check_batch(where, model, loss, params, *source.sample(), values=True)
    return source


def probe_rows(where: str, model: Model, loss: Loss, params: Params, source: Source) -> None:
    """The value check of :func:`~jaxbp.model.steps.check_batch` on a file's or an array's
    first few rows (each example's loss its own), read once, after every check that needs no
    rows has passed. In a run of several processes each reads only its own rows, so the check
    is left to the shapes there."""
    if isinstance(source, ArraySource) and source.process_count == 1:
        rows = np.arange(min(source.n, _batch_checks.PROBE_EXAMPLES))
        check_batch(where, model, loss, params, *source.read(rows), values=True)


def check_pairing(where: str, x: Any, y: Any) -> None:
    """Arrays ``x`` come with their targets ``y``; an iterable of ``(x, y)`` batches (a loader,
    a generator) comes as ``x`` alone, with ``y=None``."""
    if y is None:
        if isinstance(x, jax.Array | np.ndarray | str | os.PathLike | Rows):
            raise ValueError(
                f"{where}: y is None but x is {type(x).__name__}; pass the targets as y (one row "
                f"per row of x), or pass an iterable of (x, y) batches as x."
            )
        return
    if isinstance(x, _ARRAY_LIKE) or not isinstance(x, Iterable):
        return
    raise TypeError(
        f"{where}: x is an iterable of batches ({type(x).__name__}) but y is given too; pass "
        f"the batches as x with y=None, each an (x, y) pair: fit(model, loss, params, batches, "
        f"None, ...), or pass x and y as arrays."
    )


#: What ``fit`` takes as one array of rows (not as an iterable of batches).
_ARRAY_LIKE = (jax.Array, np.ndarray, list, tuple, str, bytes, os.PathLike, Rows)


def open_source(
    where: str, x: Any, y: Any, *, epochs: int, mesh: Any, steps_per_epoch: int | None = None
) -> Source:
    """The streamed source for ``x, y``: an iterable of batches when ``y`` is ``None``; device
    arrays stay on the device (without a mesh); other arrays (lists come to the host once),
    memmaps, ``Rows`` and ``.npy`` paths are read chunk by chunk."""
    check_pairing(where, x, y)
    if y is None:
        return IterableSource(where, x, epochs=epochs, steps_per_epoch=steps_per_epoch)
    if mesh is None and isinstance(x, jax.Array) and isinstance(y, jax.Array):
        return DeviceSource(where, x, y)
    x, y = _in_memory(where, "x", x), _in_memory(where, "y", y)
    count = jax.process_count() if mesh is not None else 1
    shared = x.array if isinstance(x, Rows) else x
    if count > 1 and not isinstance(shared, np.memmap | str | os.PathLike):
        raise ValueError(
            f"{where}: in a multi-process run, streamed training reads every process's rows from "
            f"one shared file; pass x and y as .npy paths or np.load(path, mmap_mode='r'), or "
            f"train without callbacks, validation, progress and start_step."
        )
    index = jax.process_index() if mesh is not None else 0
    source = ArraySource(where, x, y, process_index=index, process_count=count)
    for name, placeholder in zip("xy", source.placeholders(), strict=True):
        if not placeholder.dtype.isnative:
            raise TypeError(
                f"{where}: {name} is read from a file or view of dtype {placeholder.dtype.str!r}, "
                f"not in this machine's byte order; rewrite it once, e.g. np.save(path, "
                f"np.load(path).astype({_checks.native(placeholder.dtype).str!r}))."
            )
    return source


def _in_memory(where: str, name: str, value: Any) -> Any:
    """In-memory data as a NumPy array in native byte order (lists come to the host once); files,
    memmaps and views pass as they are (their byte order is checked on the source)."""
    if isinstance(value, str | os.PathLike | Rows | np.memmap):
        return value
    return _checks.as_array(
        where, name, np.asarray(value) if isinstance(value, jax.Array) else value
    )


#: Rows per block of the finite-data check of in-memory arrays (bounds its temporary memory).
_FINITE_BLOCK_ROWS = 65536


def check_finite_in_memory(where: str, source: ArraySource) -> None:
    """Refuse NaN or infinity in in-memory arrays before training, block by block; a memmap's
    or a :class:`~jaxbp.data.sources.Rows` view's batches are checked as they are read instead (a
    scan first would read the file twice)."""
    for name, array in (("x", source.x), ("y", source.y)):
        if not isinstance(array, np.ndarray) or isinstance(array, np.memmap):
            continue
        for start in range(0, array.shape[0], _FINITE_BLOCK_ROWS):
            block = array[start : start + _FINITE_BLOCK_ROWS]
            _run_checks.check_finite_data(where, name, block)


class Span(NamedTuple):
    """A run in global steps (counted from epoch 0).

    Attributes:
        steps_per_epoch: batches per epoch (``None``: an iterable of unknown length).
        first: the run's first step; total: the step it ends before (``None``: unknown).
        global_batch: examples per step, over every process.
    """

    steps_per_epoch: int | None
    first: int
    total: int | None
    global_batch: int


def plan(
    where: str,
    source: Source,
    *,
    epochs: int,
    batch_size: int | None,
    key: Any,
    start_epoch: int,
    start_step: int,
) -> Span:
    """The run's :class:`Span`; refuses a batch size larger than the data, a start outside an
    epoch, and a run longer than the int32 step counter holds."""
    if isinstance(source, IterableSource):
        return _plan_iterable(where, source, epochs, batch_size, key, start_epoch, start_step)
    steps = _run_checks.batches_per_epoch(where, source.n, batch_size)
    if start_step >= steps:
        raise ValueError(
            f"{where}: start_step {start_step} is not inside an epoch of {steps} steps; pass "
            f"0 <= start_step < {steps} (or count whole epochs in start_epoch)."
        )
    _run_checks.check_step_count(where, epochs, int(start_epoch), steps)
    first = int(start_epoch) * steps + int(start_step)
    rows = source.n if batch_size is None else batch_size
    return Span(steps, first, (int(start_epoch) + epochs) * steps, rows)


def warn_unused_rows(
    where: str, source: Source, batch_size: int | None, key: Any, stacklevel: int
) -> None:
    """Without a key the data keeps its order, so a batch size that does not divide ``n`` leaves
    the same last rows out of every epoch: they would never be trained on. Say so (a
    :class:`~jaxbp.training.end_checks.TrainingWarning`) before anything compiles."""
    if key is not None or batch_size is None or isinstance(source, IterableSource):
        return
    left = source.n % batch_size
    if left:
        warnings.warn(
            f"{where}: without a key the data keeps its order, so batch_size {batch_size} leaves "
            f"the last {left} of the {source.n} examples out of every epoch: they are never "
            f"trained on. Pass key=jax.random.key(0) to shuffle every epoch (a different "
            f"{left} left out each time), or a batch_size that divides {source.n}.",
            TrainingWarning,
            stacklevel=stacklevel + 1,
        )


def _plan_iterable(
    where: str,
    source: IterableSource,
    epochs: int,
    batch_size: int | None,
    key: Any,
    start_epoch: int,
    start_step: int,
) -> Span:
    sample = source.sample()
    rows = int(sample[0].shape[0]) if sample[0].ndim else 0
    if batch_size is not None and batch_size != rows:
        raise ValueError(
            f"{where}: batch_size is {batch_size} but the iterable's first batch has {rows} "
            f"examples; pass batch_size=None (the loader sets the batch size)."
        )
    if key is not None or start_epoch:
        raise ValueError(
            f"{where}: with an iterable of batches the loader owns the order and its "
            f"position; pass key=None and start_epoch=0 (start_step sets the step count)."
        )
    length = source.length
    total = None if length is None else start_step + epochs * length
    if total is not None and total > _run_checks.MAX_STEPS:
        raise ValueError(
            f"{where}: epochs {epochs} of {length} steps (from start_step {start_step}) reach step "
            f"{total}, beyond the {_run_checks.MAX_STEPS} steps the int32 step counter holds; "
            f"pass fewer epochs or a smaller steps_per_epoch."
        )
    return Span(length, int(start_step), total, rows)


def sample_bytes(source: Source, batch_size: int | None) -> int:
    """Bytes of one batch read on the host (0 when nothing is: full batch, device data)."""
    if batch_size is None or isinstance(source, DeviceSource):
        return 0
    x, y = source.sample() if isinstance(source, IterableSource) else source.sample(batch_size)
    return int(np.asarray(x).nbytes + np.asarray(y).nbytes)
