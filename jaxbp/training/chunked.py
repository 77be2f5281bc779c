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
import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxbp.data.sources import (
    ArraySource,
    BatchError,
    Chunk,
    IterableSource,
    Rows,
    _permutation,
    array_chunks,
    chunk_plan,
    next_chunk_size,
)
from jaxbp.model import checks as _checks
from jaxbp.model.steps import batch_loss, check_batch
from jaxbp.training import run_checks as _run_checks
from jaxbp.training import sharding as _sharding
from jaxbp.training.callbacks import Callback, ProgressBar, callback_name, wants_stop
from jaxbp.training.chunk_checks import (
    Plan,
    check_finite_in_memory,
    check_reference,
    check_validation,
    plan_run,
    update_rule_start,
)
from jaxbp.training.chunk_loop import (
    auto_chunk_steps,
    batch_bytes,
    check_finite_chunks,
    run_chunks,
)
from jaxbp.training.epochs import run_batches
from jaxbp.training.program import (
    STOP_REASONS,
    guard_report,
    init_carry,
    make_train_step,
    update_rule,
)

if TYPE_CHECKING:
    from jaxbp._types import Array, Loss, Model, Params


@functools.partial(
    jax.jit,
    static_argnames=("model", "loss", "optimizer", "schedule", "guard", "sharding", "length"),
)
def _chunk_program(
    carry: Any,
    xs: Array,
    ys: Array,
    lr: Array,
    *,
    model: Model,
    loss: Loss,
    optimizer: optax.GradientTransformation | None,
    schedule: Callable[[Array], Array] | None,
    guard: bool,
    sharding: jax.sharding.NamedSharding | None,
    length: int | None,
) -> tuple[Any, Array]:
    """``K`` training steps: over stacked batches, or ``length`` full-batch steps on ``xs, ys``."""
    step = make_train_step(model, loss, update_rule(optimizer, lr, schedule), guard)
    if length is not None:
        return jax.lax.scan(lambda c, _: step(c, (xs, ys)), carry, None, length=length)
    return run_batches(step, carry, (xs, ys), sharding)


@functools.partial(
    jax.jit,
    static_argnames=("model", "loss", "optimizer", "schedule", "guard", "batch_size", "length"),
)
def _device_chunk_program(
    carry: Any,
    x: Array,
    y: Array,
    lr: Array,
    order: Array,
    start: Array,
    *,
    model: Model,
    loss: Loss,
    optimizer: optax.GradientTransformation | None,
    schedule: Callable[[Array], Array] | None,
    guard: bool,
    batch_size: int,
    length: int,
) -> tuple[Any, Array]:
    """``length`` steps on data that stays on the device: the batches ``start .. start + length``
    of the epoch whose row order is ``order``, gathered inside the program, as the whole-run
    program gathers them."""
    step = make_train_step(model, loss, update_rule(optimizer, lr, schedule), guard)
    rows = jax.lax.dynamic_slice(order, (start * batch_size,), (length * batch_size,))
    index = rows.reshape(length, batch_size)
    return run_batches(step, carry, (x[index], y[index]))


@functools.partial(jax.jit, static_argnames=("model", "loss"))
def _evaluate(params: Params, x: Array, y: Array, *, model: Model, loss: Loss) -> Array:
    return batch_loss(model, loss, params, x, y)


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


class DeviceSource:
    """Device arrays that stay on the device: a chunk's program gathers its own batches (by the
    epoch's row order, drawn on the device) instead of the host reading and sending them."""

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

    def sample(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``batch_size`` rows, to check shapes and dtypes before compiling."""
        return np.asarray(self.x[:batch_size]), np.asarray(self.y[:batch_size])


Source = ArraySource | IterableSource | DeviceSource


def open_source(where: str, x: Any, y: Any, *, epochs: int, mesh: Any) -> Source:
    """The source for ``x, y``: an iterable of batches when ``y`` is ``None``; device arrays stay
    on the device (without a mesh); other arrays (lists come to the host once), memmaps, ``Rows``
    and ``.npy`` paths are read chunk by chunk."""
    if y is None:
        if isinstance(x, jax.Array | np.ndarray | str | os.PathLike | Rows):
            raise ValueError(
                f"{where}: y is None but x is {type(x).__name__}; pass the targets as y (one row "
                f"per row of x), or pass an iterable of (x, y) batches as x."
            )
        return IterableSource(where, x, epochs=epochs)
    if mesh is None and isinstance(x, jax.Array) and isinstance(y, jax.Array):
        return DeviceSource(where, x, y)
    if not isinstance(x, np.ndarray | str | os.PathLike | Rows):
        x = np.asarray(x)
    if not isinstance(y, np.ndarray | str | os.PathLike | Rows):
        y = np.asarray(y)
    count = jax.process_count() if mesh is not None else 1
    shared = x.array if isinstance(x, Rows) else x
    if count > 1 and not isinstance(shared, np.memmap | str | os.PathLike):
        raise ValueError(
            f"{where}: in a multi-process run, streamed training reads every process's rows from "
            f"one shared file; pass x and y as .npy paths or np.load(path, mmap_mode='r'), or "
            f"train without callbacks, validation, progress and start_step."
        )
    index = jax.process_index() if mesh is not None else 0
    return ArraySource(where, x, y, process_index=index, process_count=count)


def fit_chunked(
    model: Model,
    loss: Loss,
    params: Params,
    x: Any,
    y: Any,
    *,
    lr: Any,
    epochs: int,
    batch_size: int | None,
    key: Any,
    optimizer: optax.GradientTransformation | None,
    opt_state: Any,
    start_epoch: int,
    start_step: int,
    stop_on_nonfinite: bool,
    reference_loss: Any,
    mesh: jax.sharding.Mesh | None,
    callbacks: Sequence[Callback],
    validation: tuple[Any, Any] | None,
    validate_every: int | None,
    chunk_steps: int | None,
    prefetch: int,
    progress: bool,
) -> tuple[Params, dict[str, Any]]:
    """``fit`` over compiled chunks; the arguments are ``fit``'s (see there)."""
    where = "fit"
    _checks.check_positive_int(where, "epochs", epochs)
    _run_checks.check_key(where, key)
    for name, value in (("start_epoch", start_epoch), ("start_step", start_step)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ValueError(f"{where}: {name} must be an int >= 0, got {value!r}.")
    if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0:
        raise ValueError(f"{where}: prefetch must be an int >= 0 (0: no background reading), got {prefetch!r}.")  # fmt: skip
    if chunk_steps is not None:
        _checks.check_positive_int(where, "chunk_steps", chunk_steps)
    source = open_source(where, x, y, epochs=epochs, mesh=mesh)
    if isinstance(source, ArraySource):  # shapes only: nothing is read
        check_batch(where, model, loss, params, *source.placeholders())
        check_finite_in_memory(where, source)
    elif isinstance(source, DeviceSource):
        check_batch(where, model, loss, params, source.x, source.y)
        _run_checks.check_finite_data(where, "x", source.x)
        _run_checks.check_finite_data(where, "y", source.y)
    plan = plan_run(where, source, epochs, batch_size, key, start_epoch, start_step)
    if isinstance(source, IterableSource):
        check_batch(where, model, loss, params, *plan.sample)
    if validation is not None:
        validation = check_validation(where, model, loss, params, validation)
    every = validate_every if validate_every is not None else plan.steps_per_epoch
    if validate_every is not None:
        _checks.check_positive_int(where, "validate_every", validate_every)
    if chunk_steps is None:
        # data on the device is not copied from the host: only the step limits bound a chunk
        on_host = batch_size is not None and not isinstance(source, DeviceSource)
        size = batch_bytes(*plan.sample) if on_host else 0
        chunk_steps = auto_chunk_steps(size, every, plan.total)
    rule_state, lr_array, schedule = update_rule_start(
        where, params, lr, optimizer, opt_state, plan.first, plan.total, plan.last_epoch_steps
    )
    placed_sharding = None
    if mesh is not None:
        params, rule_state, placed_sharding = _sharding.place_fit(
            where, mesh, params, rule_state, plan.global_batch, batch_size
        )
    reference = check_reference(where, reference_loss)
    carry = init_carry(params, rule_state, plan.first, reference)
    program = functools.partial(
        _chunk_program, model=model, loss=loss, optimizer=optimizer, schedule=schedule,
        guard=stop_on_nonfinite, sharding=placed_sharding,
    )  # fmt: skip
    if isinstance(source, DeviceSource) and batch_size is not None:
        device_program = functools.partial(
            _device_chunk_program, model=model, loss=loss, optimizer=optimizer,
            schedule=schedule, guard=stop_on_nonfinite, batch_size=batch_size,
        )  # fmt: skip
        chunks, run_chunk, place = _device_pipeline(
            source, plan, device_program, lr_array, chunk_steps, every, key, batch_size
        )
    else:
        chunks, run_chunk, place = _pipeline(
            where, source, plan, program, lr_array, chunk_steps, every, key, epochs, batch_size,
            mesh,
        )  # fmt: skip
    between = _Between(
        model, loss, validation, every, list(callbacks), stop_on_nonfinite, plan, progress
    )
    try:
        outcome = run_chunks(
            run_chunk, carry, chunks, start=plan.first, place=place, prefetch=prefetch,
            after_chunk=between, on_error=functools.partial(_attach, between, optimizer),
        )  # fmt: skip
    finally:
        between.close()
    history = between.history(outcome.losses, outcome.steps_done, outcome.stop)
    history["host_seconds"], history["wait_seconds"] = outcome.host_seconds, outcome.wait_seconds
    history["chunks"] = outcome.chunks
    if optimizer is not None:
        history["opt_state"] = outcome.state.opt_state
    if stop_on_nonfinite:
        history.update(guard_report(outcome.state, _checks.leaf_paths(params)))
    return outcome.state.params, history


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
    where: str,
    source: Source,
    plan: Plan,
    program: Callable[..., tuple[Any, Array]],
    lr: np.ndarray,
    chunk_steps: int,
    every: int | None,
    key: Any,
    epochs: int,
    batch_size: int | None,
    mesh: jax.sharding.Mesh | None,
) -> tuple[Iterator[Chunk], Callable[[Any, Chunk], tuple[Any, Array]], Callable[[Chunk], Chunk]]:
    """The chunks to read, how to run one, and how to place one on the device."""
    if isinstance(source, IterableSource):
        chunks = source.chunks(epochs=epochs, chunk_steps=chunk_steps, every=every, first=plan.first)  # fmt: skip
    elif batch_size is not None:
        assert isinstance(source, ArraySource)  # device data in mini-batches: _device_pipeline
        steps = chunk_plan(plan.first, plan.total or 0, chunk_steps, every)
        chunks = array_chunks(source, batch_size=batch_size, key=key, plan=steps)
    elif isinstance(source, DeviceSource):  # full batch on data already on the device
        lengths = chunk_plan(plan.first, plan.total or 0, chunk_steps, every)
        empty = (Chunk(first, None, None, length=size) for first, size in lengths)
        xd, yd = source.x, source.y
        return empty, lambda s, c: program(s, xd, yd, lr, length=c.steps), lambda c: c
    else:  # full batch: the data goes to the device once; chunks carry only their length
        x, y = source.read(np.arange(source.n))
        _run_checks.check_finite_data(where, "x", x)
        _run_checks.check_finite_data(where, "y", y)
        xd, yd = (
            _sharding.shard_batch(mesh, x, y, where=where)
            if mesh is not None
            else (jax.device_put(x), jax.device_put(y))
        )
        lengths = chunk_plan(plan.first, plan.total or 0, chunk_steps, every)
        empty = (Chunk(first, None, None, length=size) for first, size in lengths)
        return empty, lambda s, c: program(s, xd, yd, lr, length=c.steps), lambda c: c
    return (
        check_finite_chunks(where, chunks),
        lambda s, c: program(s, c.x, c.y, lr, length=None),
        _placer(mesh),
    )


def _device_pipeline(
    source: DeviceSource,
    plan: Plan,
    program: Callable[..., tuple[Any, Array]],
    lr: np.ndarray,
    chunk_steps: int,
    every: int | None,
    key: Any,
    batch_size: int,
) -> tuple[Iterator[Chunk], Callable[[Any, Chunk], tuple[Any, Array]], Callable[[Chunk], Chunk]]:
    """Chunks of mini-batch steps on data that stays on the device. Chunks end at every epoch's
    end, so each lies in one epoch, whose row order (drawn once per epoch on the device, as the
    whole-run program draws it) the chunk carries in ``order``."""
    steps_per_epoch = source.n // batch_size
    identity = jnp.arange(source.n)

    def chunks() -> Iterator[Chunk]:
        index, total, orders = plan.first, plan.total or 0, {}
        while index < total:
            epoch = index // steps_per_epoch
            end = min(total, (epoch + 1) * steps_per_epoch)
            size = next_chunk_size(index, chunk_steps, every, end)
            if key is not None and epoch not in orders:
                orders = {epoch: _permutation(key, np.int32(epoch), source.n)}
            order = identity if key is None else orders[epoch]
            yield Chunk(index, None, None, length=size, order=order)
            index += size

    def run_chunk(state: Any, chunk: Chunk) -> tuple[Any, Array]:
        start = np.int32(chunk.first % steps_per_epoch)
        return program(state, source.x, source.y, lr, chunk.order, start, length=chunk.length)

    return chunks(), run_chunk, lambda c: c


class _Between:
    """The work after each chunk: the guard's stop, validation, callbacks, the progress bar."""

    def __init__(
        self,
        model: Model,
        loss: Loss,
        validation: tuple[Array, Array] | None,
        every: int | None,
        callbacks: list[Callback],
        guard: bool,
        plan: Plan,
        progress: bool,
    ):
        self.model, self.loss, self.validation, self.every = model, loss, validation, every
        self.callbacks, self.guard, self.plan = callbacks, guard, plan
        self.bar = ProgressBar(plan.total, plan.first) if progress else None
        self.val_steps: list[int] = []
        self.val_losses: list[float] = []

    def __call__(self, done: int, carry: Any, losses: Array) -> str | None:
        if self.guard and int(carry.stop_step) >= 0:
            return STOP_REASONS[int(carry.stop_reason)]
        if not (self.callbacks or self.validation or self.bar):
            return None
        metrics: dict[str, Any] = {"loss": float(jnp.mean(losses))}
        position = self.plan.position(done)
        if position is not None:
            metrics["epoch"], metrics["step_in_epoch"] = position
        metrics["opt_state"] = carry.opt_state
        metrics["losses"] = losses
        due = self.every is None or done % self.every == 0 or done == self.plan.total
        if self.validation is not None and due:
            value = float(_evaluate(carry.params, *self.validation, model=self.model, loss=self.loss))  # fmt: skip
            metrics["val_loss"] = value
            self.val_steps.append(done)
            self.val_losses.append(value)
        for callback in self.callbacks:
            if wants_stop(callback(done, carry.params, metrics)):
                return callback_name(callback)
        if self.bar is not None:
            self.bar(done, carry.params, metrics)
        return None

    def history(self, losses: list[Array], done: int, stop: str | None) -> dict[str, Any]:
        history: dict[str, Any] = {
            "loss": jnp.concatenate(losses) if losses else jnp.zeros((0,)),
            "steps_done": done,
            "position": self.plan.position(done),
            "stop": stop,
        }
        if self.validation is not None:
            history["val_step"] = np.asarray(self.val_steps, np.int64)
            history["val_loss"] = np.asarray(self.val_losses)
        return history

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _attach(
    between: _Between,
    optimizer: Any,
    error: BatchError,
    state: Any,
    losses: list[Array],
    done: int,
) -> None:
    """Give a source's error the last good parameters and the history up to them."""
    error.params, error.steps_done = state.params, done
    error.opt_state = state.opt_state if optimizer is not None else None
    error.history = between.history(losses, done, "error")
    if error.position is None:
        error.position = between.plan.position(error.batch_index)
    error.args = (
        f"{error.args[0]} The parameters after the {done} steps before it are in "
        f"error.params (error.history has their losses); fix the data and resume from there.",
    )
