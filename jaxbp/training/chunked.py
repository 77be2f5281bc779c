"""Training as a host loop over compiled chunks of ``K`` steps: data of any size, callbacks between.

``fit`` takes this path when the data is not on the device (NumPy arrays, memmaps, ``.npy``
paths, iterables of batches; see :mod:`jaxbp.data.sources`) or when something has to happen between
steps (callbacks, validation, a progress bar, resuming mid-epoch). One compiled program runs a
chunk of ``K`` steps (``lax.scan`` over batches stacked as ``(K, batch, ...)``) with the very step
of the whole-run program, so for the same batches in the same order the parameters are the same,
bit for bit; the shuffled order is the one the whole-run program draws. The next chunk is read
and transferred in a background thread while the device works (:mod:`jaxbp.training.prefetch`,
:mod:`jaxbp.training.chunk_loop`).

``K`` (``chunk_steps``): by default as many steps as hold about 16 MiB of data (at most 4096), so
the host's work per chunk (a dispatch, the callbacks) is spread over many steps, and memory stays
bounded: about ``(3 + prefetch)`` chunks exist at a time. Chunks are cut at every multiple of
``validate_every`` steps, where validation runs; the rest of a segment runs in chunks whose
lengths are powers of two, so at most ``1 + log2(K)`` programs are compiled. Full-batch training
(``batch_size=None``) puts the data on the device once and runs ``K`` steps per chunk on it.

Device arrays (``jax.Array`` x and y, without a mesh) stay where they are: each chunk's program
gathers its batches from them by the epoch's row order, drawn once per epoch on the device as
the whole-run program draws it, so nothing goes through the host; chunks then end at every
epoch's end, and by default a chunk is the whole epoch (at most 4096 steps).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.data.order import draw_epoch_permutation
from jaxbp.data.sources import (  # fmt: skip
    ArraySource,
    BatchError,
    Chunk,
    IterableSource,
    array_chunks,
    chunk_plan,
    next_chunk_size,
)
from jaxbp.model.steps import batch_loss
from jaxbp.training import guard as _guard
from jaxbp.training import run_checks as _run_checks
from jaxbp.training import sharding as _sharding
from jaxbp.training.callbacks import Callback, ProgressBar, callback_name, unwatched, wants_stop
from jaxbp.training.chunk_loop import check_finite_chunks, run_chunks
from jaxbp.training.end_checks import TrainingWarning
from jaxbp.training.epochs import run_batches
from jaxbp.training.inputs import DeviceSource, Source
from jaxbp.training.program import Step, TrainCarry

if TYPE_CHECKING:
    from jaxbp._types import Array, Loss, Model, Params
    from jaxbp.training.run import Run

#: How a pipeline runs one placed chunk: ``(carry, chunk) -> (carry, losses)``.
RunChunk = Callable[[TrainCarry, Chunk], tuple[TrainCarry, Any]]


@functools.partial(jax.jit, static_argnames=("step", "sharding", "length"))
def _chunk_program(
    carry: TrainCarry,
    xs: Array,
    ys: Array,
    lr: Array,
    *,
    step: Step,
    sharding: jax.sharding.NamedSharding | None,
    length: int | None,
) -> tuple[TrainCarry, Array]:
    """``K`` training steps: over stacked batches, or ``length`` full-batch steps on ``xs, ys``."""
    train_step = step(lr)
    if length is not None:
        return jax.lax.scan(lambda c, _: train_step(c, (xs, ys)), carry, None, length=length)
    return run_batches(train_step, carry, (xs, ys), sharding)


@functools.partial(jax.jit, static_argnames=("step", "batch_size", "length"))
def _device_chunk_program(
    carry: TrainCarry,
    x: Array,
    y: Array,
    lr: Array,
    order: Array,
    start: Array,
    *,
    step: Step,
    batch_size: int,
    length: int,
) -> tuple[TrainCarry, Array]:
    """``length`` steps on data that stays on the device: the batches ``start .. start + length``
    of the epoch whose row order is ``order``, gathered inside the program, as the whole-run
    program gathers them."""
    rows = jax.lax.dynamic_slice(order, (start * batch_size,), (length * batch_size,))
    index = rows.reshape(length, batch_size)
    return run_batches(step(lr), carry, (x[index], y[index]))


@functools.partial(jax.jit, static_argnames=("model", "loss"))
def _evaluate(params: Params, x: Array, y: Array, *, model: Model, loss: Loss) -> Array:
    return batch_loss(model, loss, params, x, y)


def fit_chunked(
    run: Run, source: Source, callbacks: Sequence[Callback] = ()
) -> tuple[TrainCarry, dict[str, Any]]:
    """``fit``'s streamed path: ``run`` (from :func:`jaxbp.training.run.describe_run`, with its
    ``stream`` settings) over ``source`` in compiled chunks, ``callbacks`` between them.

    Returns the final carry and the history so far (``jaxbp.training.run.finish`` completes it).
    """
    assert run.stream is not None  # describe_run(streamed=True) sets it
    if isinstance(source, DeviceSource) and run.batch_size is not None:
        chunks, run_chunk, place = _device_pipeline(run, source)
    else:
        chunks, run_chunk, place = _pipeline(run, source)
    between = _Between(run, list(callbacks))
    try:
        outcome = run_chunks(
            run_chunk, TrainCarry(run.params, run.opt_state), chunks, start=run.first,
            place=place, prefetch=run.stream.prefetch, after_chunk=between,
            on_error=functools.partial(_attach, between),
        )  # fmt: skip
    finally:
        between.close()
    if outcome.stop is None:
        between.check_watched()
    history = between.history(outcome.losses, outcome.steps_done, outcome.stop)
    history["host_seconds"], history["wait_seconds"] = outcome.host_seconds, outcome.wait_seconds
    history["chunks"] = outcome.chunks
    return outcome.state, history


def _placer(mesh: jax.sharding.Mesh | None) -> Callable[[Chunk], Chunk]:
    """Moves a host chunk to the device(s); with a mesh, split by batch rows over its data axis."""
    if mesh is None:
        return lambda c: Chunk(c.first, jax.device_put(c.x), jax.device_put(c.y))
    sharding = _sharding.batch_sharding(mesh)
    if jax.process_count() == 1:
        return lambda c: Chunk(
            c.first, jax.device_put(c.x, sharding), jax.device_put(c.y, sharding)
        )
    return lambda c: Chunk(
        c.first,
        jax.make_array_from_process_local_data(sharding, c.x),
        jax.make_array_from_process_local_data(sharding, c.y),
    )


def _pipeline(
    run: Run, source: Source
) -> tuple[Iterator[Chunk], RunChunk, Callable[[Chunk], Chunk]]:
    """The chunks to read, how to run one, and how to place one on the device."""
    assert run.stream is not None
    where, stream, lr = "fit", run.stream, run.lr
    program = functools.partial(_chunk_program, step=run.step, sharding=run.batch_sharding)
    lengths = chunk_plan(run.first, run.total or 0, stream.chunk_steps, stream.every)
    if isinstance(source, IterableSource):
        chunks = source.chunks(epochs=run.epochs, chunk_steps=stream.chunk_steps, every=stream.every, first=run.first)  # fmt: skip
    elif run.batch_size is not None:
        assert isinstance(source, ArraySource)  # device data in mini-batches: _device_pipeline
        chunks = array_chunks(source, batch_size=run.batch_size, key=run.key, plan=lengths)
    else:  # full batch: the data goes to the device once; chunks carry only their length
        xd, yd = _full_batch(where, source, run.mesh)
        empty = (Chunk(first, None, None, length=size) for first, size in lengths)
        return empty, lambda s, c: program(s, xd, yd, lr, length=c.steps), lambda c: c
    return (
        check_finite_chunks(where, chunks),
        lambda s, c: program(s, c.x, c.y, lr, length=None),
        _placer(run.mesh),
    )


def _full_batch(where: str, source: Source, mesh: jax.sharding.Mesh | None) -> tuple[Any, Any]:
    """Every row of ``source`` on the device (split over the mesh's data axis with a mesh)."""
    if isinstance(source, DeviceSource):
        return source.x, source.y
    assert isinstance(source, ArraySource)
    x, y = source.read(np.arange(source.n))
    _run_checks.check_finite_data(where, "x", x)
    _run_checks.check_finite_data(where, "y", y)
    if mesh is not None:
        return _sharding.shard_batch(mesh, x, y, where=where)
    return jax.device_put(x), jax.device_put(y)


def _device_pipeline(
    run: Run, source: DeviceSource
) -> tuple[Iterator[Chunk], RunChunk, Callable[[Chunk], Chunk]]:
    """Chunks of mini-batch steps on data that stays on the device. Chunks end at every epoch's
    end, so each lies in one epoch, whose row order (drawn once per epoch on the device, as the
    whole-run program draws it) the chunk carries in ``order``."""
    assert run.stream is not None and run.batch_size is not None
    stream, batch_size, key = run.stream, run.batch_size, run.key
    steps_per_epoch = source.n // batch_size
    identity = jnp.arange(source.n)
    program = functools.partial(_device_chunk_program, step=run.step, batch_size=batch_size)

    def chunks() -> Iterator[Chunk]:
        index, total, orders = run.first, run.total or 0, {}
        while index < total:
            epoch = index // steps_per_epoch
            end = min(total, (epoch + 1) * steps_per_epoch)
            size = next_chunk_size(index, stream.chunk_steps, stream.every, end)
            if key is not None and epoch not in orders:
                orders = {epoch: draw_epoch_permutation(key, epoch, source.n)}
            order = identity if key is None else orders[epoch]
            yield Chunk(index, None, None, length=size, order=order)
            index += size

    def run_chunk(state: TrainCarry, chunk: Chunk) -> tuple[TrainCarry, Array]:
        start = np.int32(chunk.first % steps_per_epoch)
        return program(state, source.x, source.y, run.lr, chunk.order, start, length=chunk.length)

    return chunks(), run_chunk, lambda c: c


class _Between:
    """The work after each chunk: the guard's stop, validation, callbacks, the progress bar."""

    def __init__(self, run: Run, callbacks: list[Callback]):
        assert run.stream is not None
        self.run, self.stream, self.callbacks = run, run.stream, callbacks
        self.bar = ProgressBar(run.total, run.first) if run.stream.progress else None
        self.val_steps: list[int] = []
        self.val_losses: list[float] = []
        self.seen: set[str] = set()  # every metric name a callback was handed

    def __call__(self, done: int, carry: TrainCarry, losses: Array) -> str | None:
        reason = _guard.stopped(carry.opt_state)
        if reason is not None:
            return reason
        if not (self.callbacks or self.stream.validation or self.bar):
            return None
        metrics: dict[str, Any] = {"loss": float(jnp.mean(losses))}
        position = self.run.position(done)
        if position is not None:
            metrics["epoch"], metrics["step_in_epoch"] = position
        metrics["opt_state"] = _guard.inner_state(carry.opt_state)
        metrics["losses"] = losses
        every = self.stream.every
        due = every is None or done % every == 0 or done == self.run.total
        if self.stream.validation is not None and due:
            step = self.run.step
            value = float(_evaluate(carry.params, *self.stream.validation, model=step.model, loss=step.loss))  # fmt: skip
            metrics["val_loss"] = value
            self.val_steps.append(done)
            self.val_losses.append(value)
        for callback in self.callbacks:
            self.seen.update(metrics)
            if wants_stop(callback(done, carry.params, metrics)):
                return callback_name(callback)
        if self.bar is not None:
            self.bar(done, carry.params, metrics)
        return None

    def history(self, losses: list[Array], done: int, stop: str | None) -> dict[str, Any]:
        history: dict[str, Any] = {
            "loss": jnp.concatenate(losses) if losses else jnp.zeros((0,)),
            "steps_done": done,
            "position": self.run.position(done),
            "stop": stop,
        }
        if self.stream.validation is not None:
            history["val_step"] = np.asarray(self.val_steps, np.int64)
            history["val_loss"] = np.asarray(self.val_losses)
        return history

    def check_watched(self) -> None:
        """Warn about an ``EarlyStopping`` whose metric no chunk of the finished run had (one
        after a callback that does not say what it adds, so not refused before the run)."""
        for index, stopper in unwatched(tuple(self.callbacks), self.seen):
            warnings.warn(
                f"fit: callbacks[{index}] EarlyStopping watches metric {stopper.metric!r}, but "
                f"no chunk of this run had it (its metrics: "
                f"{', '.join(repr(n) for n in sorted(self.seen))}), so it never acted; pick one "
                f"of those with EarlyStopping(..., metric=...), or add it before it.",
                TrainingWarning,
                stacklevel=4,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _attach(
    between: _Between, error: BatchError, state: TrainCarry, losses: list[Array], done: int
) -> None:
    """Give a source's error the last good parameters and the history up to them."""
    run = between.run
    error.params, error.steps_done = state.params, done
    error.opt_state = _guard.inner_state(state.opt_state) if run.optimizer is not None else None
    error.history = between.history(losses, done, "error")
    if run.guarded:  # the losses after a stop inside the last chunk are NaN, as fit reports them
        error.history["loss"] = _guard.report(state.opt_state, error.history["loss"], run.first, run.paths)["loss"]  # fmt: skip
    if error.position is None:
        error.position = run.position(error.batch_index)
    error.args = (
        f"{error.args[0]} The parameters after the {done} steps before it are in "
        f"error.params (error.history has their losses); fix the data and resume from there.",
    )
