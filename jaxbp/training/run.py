"""One validation path: ``fit``'s arguments become a :class:`Run`, checked once, for both paths.

:func:`describe_run` is the only place ``fit``'s arguments are checked and interpreted: the data
(:mod:`jaxbp.training.inputs`), the run's span in global steps, the update rule and its starting
state (the hand-written SGD or an optimizer, wrapped in the divergence guard when asked), the
mesh placement and, for a streamed run, the chunking. The whole-run program
(:mod:`jaxbp.training.fit`) and the streamed chunks (:mod:`jaxbp.training.chunked`) both take the
:class:`Run` it returns and interpret nothing themselves; :func:`finish` turns the final state
into ``fit``'s history on both.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from jaxbp.data.sources import Position
from jaxbp.model import batch_checks as _batch_checks
from jaxbp.model import checks as _checks
from jaxbp.training import callbacks as _callbacks
from jaxbp.training import guard as _guard
from jaxbp.training import inputs as _inputs
from jaxbp.training import run_checks as _run_checks
from jaxbp.training import sharding as _sharding
from jaxbp.training.chunk_loop import auto_chunk_steps
from jaxbp.training.program import Step, TrainCarry, UpdateRule, sgd_start_state
from jaxbp.training.validation_data import check_validation

if TYPE_CHECKING:
    import optax

    from jaxbp._types import Array, Loss, Model, Params


@dataclasses.dataclass(frozen=True)
class Stream:
    """How a streamed run is cut and what runs between its chunks (besides callbacks).

    Attributes:
        validation: ``(x_val, y_val)`` on the device, or ``None``.
        every: validate (and end a chunk) every this many steps (``None``: epoch length unknown).
        chunk_steps: steps per compiled chunk. prefetch: chunks read ahead. progress: a bar.
    """

    validation: tuple[Array, Array] | None
    every: int | None
    chunk_steps: int
    prefetch: int
    progress: bool


@dataclasses.dataclass(frozen=True)
class Run:
    """A training run, validated: what both of ``fit``'s paths run.

    Attributes:
        step: the step's static parts (model, loss, update rule; guarded with
            ``stop_on_nonfinite``), a static argument of every program.
        params, opt_state: where the run starts (placed on the mesh when there is one); the
            state is the update rule's (the SGD's counts steps from epoch 0).
        lr: the SGD's traced learning rate (0 with an optimizer or a schedule), in ``dtype``.
        dtype: the params' float dtype.
        epochs, batch_size, key, start_epoch: as passed to ``fit``.
        steps_per_epoch, first, total, global_batch: the span in global steps (see
            :class:`jaxbp.training.inputs.Span`).
        mesh, batch_sharding: data parallelism (``None``: one device).
        paths: every params leaf's tree path, for the guard's report.
        stream: the streamed path's settings (``None``: the whole-run program).
    """

    step: Step
    params: Params
    opt_state: Any
    lr: np.ndarray
    dtype: np.dtype
    epochs: int
    batch_size: int | None
    key: Any
    start_epoch: int
    steps_per_epoch: int | None
    first: int
    total: int | None
    global_batch: int
    mesh: jax.sharding.Mesh | None
    batch_sharding: jax.sharding.NamedSharding | None
    paths: tuple[str, ...]
    stream: Stream | None

    @property
    def optimizer(self) -> optax.GradientTransformation | None:
        return self.step.rule.optimizer

    @property
    def guarded(self) -> bool:
        return isinstance(self.step.rule, _guard.Guarded)

    def position(self, step: int) -> Position | None:
        """Global step ``step`` as (epochs done, steps done in the next); ``None``: unknown."""
        if not self.steps_per_epoch:
            return None
        return Position(*divmod(step, self.steps_per_epoch))


def describe_run(
    model: Model,
    loss: Loss,
    params: Params,
    x: Any,
    y: Any,
    *,
    streamed: bool,
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
    validation: Any,
    validate_every: int | None,
    chunk_steps: int | None,
    prefetch: int,
    progress: bool,
    callbacks: tuple[Any, ...] = (),
    steps_per_epoch: int | None = None,
) -> tuple[Run, _inputs.Source]:
    """Check ``fit``'s arguments (see there) and describe the run; ``streamed``: which path runs
    it. Returns the :class:`Run` and its data source. Raises before anything is compiled."""
    where = "fit"
    _checks.check_positive_int(where, "epochs", epochs)
    for name, flag in (("stop_on_nonfinite", stop_on_nonfinite), ("progress", progress)):
        if not isinstance(flag, bool | np.bool_):
            raise TypeError(f"{where}: {name} must be True or False, got {type(flag).__name__} {flag!r:.40}.")  # fmt: skip
    _run_checks.check_start(where, start_epoch, start_step)
    _run_checks.check_key(where, key)
    check_steps_per_epoch(where, steps_per_epoch, y)
    params = _batch_checks.native_params(where, params)
    source = _inputs.open_data(
        where, model, loss, params, x, y, streamed=streamed, epochs=epochs, mesh=mesh,
        steps_per_epoch=steps_per_epoch,
    )  # fmt: skip
    span = _inputs.plan(
        where, source, epochs=epochs, batch_size=batch_size, key=key,
        start_epoch=start_epoch, start_step=start_step,
    )  # fmt: skip
    _inputs.warn_unused_rows(where, source, batch_size, key, stacklevel=3)
    stream = None
    if streamed:
        stream = describe_stream(
            where, source, span, model, loss, params, batch_size=batch_size,
            validation=validation, validate_every=validate_every, chunk_steps=chunk_steps,
            prefetch=prefetch, progress=progress,
        )  # fmt: skip
        _callbacks.check_metrics(where, callbacks, stream_metrics(span, stream))
    rule: UpdateRule | _guard.Guarded
    rule, state, lr_array = describe_update(where, params, lr, optimizer, opt_state, span)
    reference = _run_checks.check_reference(where, reference_loss)
    paths = _checks.leaf_paths(params)
    checked, sharding = params, None
    if mesh is not None:
        params, state, sharding = _sharding.place_fit(
            where, mesh, params, state, span.global_batch, batch_size
        )
    _inputs.probe_rows(where, model, loss, checked, source)
    if stop_on_nonfinite:
        rule, state = _guard.Guarded(rule), _guard.start(state, params, span.first, reference)
    run = Run(
        Step(model, loss, rule), params, state, lr_array, lr_array.dtype, epochs, batch_size,
        key, int(start_epoch), span.steps_per_epoch, span.first, span.total, span.global_batch,
        mesh, sharding, paths, stream,
    )  # fmt: skip
    return run, source


def check_steps_per_epoch(where: str, steps_per_epoch: Any, y: Any) -> None:
    """``steps_per_epoch``: ``None``, or an int >= 1 for an iterable of batches (``y`` is
    ``None``); arrays have ``n // batch_size`` steps per epoch."""
    if steps_per_epoch is None:
        return
    _checks.check_positive_int(where, "steps_per_epoch", steps_per_epoch)
    if y is not None:
        raise ValueError(
            f"{where}: steps_per_epoch={steps_per_epoch} applies to an iterable of (x, y) "
            f"batches (y=None); with arrays an epoch is n // batch_size steps: pass "
            f"steps_per_epoch=None, and fewer epochs or a smaller data set for a shorter run."
        )


def describe_update(
    where: str,
    params: Params,
    lr: Any,
    optimizer: optax.GradientTransformation | None,
    opt_state: Any,
    span: _inputs.Span,
) -> tuple[UpdateRule, Any, np.ndarray]:
    """The update rule, its state before the run's first step, and the traced learning rate:
    ``lr`` (a number or a schedule) for the hand-written SGD, or ``optimizer``, never both."""
    _run_checks.check_lr_or_optimizer(
        where, lr, optimizer, "a number or an optax schedule", opt_state
    )
    dtype = _run_checks.float_dtype(params)
    if optimizer is None:
        steps = None if span.total is None else span.total - span.first
        _run_checks.check_rate(where, lr, dtype, span.first, steps)
        schedule = lr if callable(lr) else None
        rate = np.asarray(0.0 if schedule else lr, dtype)  # NumPy: no device dispatch
        return UpdateRule(None, schedule), sgd_start_state(params, span.first), rate
    if opt_state is None:
        opt_state = optimizer.init(params)
    else:
        _checks.check_opt_state(where, optimizer, params, opt_state)
    return UpdateRule(optimizer), opt_state, np.asarray(0.0, dtype)


def describe_stream(
    where: str,
    source: _inputs.Source,
    span: _inputs.Span,
    model: Model,
    loss: Loss,
    params: Params,
    *,
    batch_size: int | None,
    validation: Any,
    validate_every: int | None,
    chunk_steps: int | None,
    prefetch: int,
    progress: bool,
) -> Stream:
    """The streamed path's settings, checked; ``chunk_steps`` by default holds about 16 MiB of
    batches read on the host, bounded by ``validate_every`` and the run's length."""
    if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0:
        raise ValueError(f"{where}: prefetch must be an int >= 0 (0: no background reading), got {prefetch!r}.")  # fmt: skip
    if chunk_steps is not None:
        _checks.check_positive_int(where, "chunk_steps", chunk_steps)
    if validation is not None:
        validation = check_validation(where, model, loss, params, validation, source)
    if validate_every is not None:
        _checks.check_positive_int(where, "validate_every", validate_every)
    every = validate_every if validate_every is not None else span.steps_per_epoch
    if chunk_steps is None:
        size = _inputs.sample_bytes(source, batch_size)
        chunk_steps = auto_chunk_steps(size, every, span.total)
    return Stream(validation, every, chunk_steps, prefetch, progress)


def stream_metrics(span: _inputs.Span, stream: Stream) -> tuple[str, ...]:
    """The metrics a streamed run gives its callbacks (some only on some chunks)."""
    names = ["loss", "losses", "opt_state"]
    if span.steps_per_epoch:
        names += ["epoch", "step_in_epoch"]
    if stream.validation is not None:
        names.append("val_loss")
    return tuple(names)


def finish(run: Run, carry: TrainCarry, history: dict[str, Any]) -> tuple[Params, dict[str, Any]]:
    """``(params, history)`` after the run: with an optimizer, its state in
    ``history["opt_state"]``; with the guard, its report (and NaN losses after its stop)."""
    if run.optimizer is not None:
        history["opt_state"] = _guard.inner_state(carry.opt_state)
    if run.guarded:
        history.update(_guard.report(carry.opt_state, history["loss"], run.first, run.paths))
    return carry.params, history
