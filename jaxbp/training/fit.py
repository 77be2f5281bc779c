"""Whole training runs compiled into one XLA program: ``fit`` and ``per_example_grads``.

The model is any callable ``(params, x) -> prediction`` over any params pytree, the loss a name in
``jaxbp.LOSSES`` or a callable ``(prediction, y) -> (batch,)``; see ``jaxbp.model.steps``.

``fit`` runs every epoch and every batch inside one ``jax.jit``-compiled program (``lax.scan`` over
epochs, and over the batches of an epoch), so there is no Python or host work per step. The
loss history stays on the device. Inputs are validated once, before compiling, by
``jaxbp.training.run.describe_run`` (the same for the streamed path); calling ``fit`` again with
the same shapes and static settings reuses the compiled program. Batching and
shuffling are described in ``jaxbp.training.epochs``; ``jaxbp.training.ensemble`` trains many models at once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
import optax

from jaxbp._types import Array, ArrayLike, Grads, Loss, Model, Params
from jaxbp.model.steps import batch_loss, check_batch
from jaxbp.training import chunked
from jaxbp.training import run_checks as _run_checks
from jaxbp.training.callbacks import as_callback_list
from jaxbp.training.end_checks import check_fit_end
from jaxbp.training.epochs import run_epochs
from jaxbp.training.inputs import DeviceSource, wants_chunks
from jaxbp.training.program import Step, TrainCarry
from jaxbp.training.run import Run, describe_run, finish

if TYPE_CHECKING:
    from jaxbp.training.callbacks import Callback

LearningRate = float | Array | Callable[[Array], Array]


@functools.partial(jax.jit, static_argnames=("step", "epochs", "batch_size", "batch_sharding"))
def _fit_program(
    carry: TrainCarry,
    x: Array,
    y: Array,
    lr: Array,
    key: Array | None,
    start_epoch: Array,
    *,
    step: Step,
    epochs: int,
    batch_size: int | None,
    batch_sharding: jax.sharding.NamedSharding | None,
) -> tuple[TrainCarry, Array]:
    return run_epochs(
        step(lr), carry, x, y, epochs=epochs, batch_size=batch_size, key=key,
        start_epoch=start_epoch, batch_sharding=batch_sharding,
    )  # fmt: skip


def _fit_whole(run: Run, data: DeviceSource) -> tuple[TrainCarry, dict[str, Any]]:
    """The whole-run program: every epoch of ``run`` in one compiled program."""
    carry, losses = _fit_program(
        TrainCarry(run.params, run.opt_state), data.x, data.y, run.lr, run.key,
        np.int32(run.start_epoch), step=run.step, epochs=run.epochs, batch_size=run.batch_size,
        batch_sharding=run.batch_sharding,
    )  # fmt: skip
    return carry, {"loss": losses}


def fit(
    model: Model,
    loss: Loss,
    params: Params,
    x: ArrayLike,
    y: ArrayLike,
    *,
    lr: LearningRate | None = None,
    epochs: int,
    batch_size: int | None = None,
    key: Array | None = None,
    optimizer: optax.GradientTransformation | None = None,
    opt_state: Any = None,
    start_epoch: int = 0,
    stop_on_nonfinite: bool = False,
    reference_loss: float | None = None,
    mesh: jax.sharding.Mesh | None = None,
    callbacks: Sequence[Callback] | None = (),
    validation: tuple[ArrayLike, ArrayLike] | None = None,
    validate_every: int | None = None,
    start_step: int = 0,
    chunk_steps: int | None = None,
    prefetch: int = 2,
    progress: bool = False,
    steps_per_epoch: int | None = None,
) -> tuple[Params, dict[str, Any]]:
    """Train for whole epochs: in one compiled program, or streamed in compiled chunks.

    Device arrays train in one program. NumPy arrays, ``np.memmap``s, ``.npy`` paths and
    iterables of ``(x, y)`` batches (with ``y=None``), and any data with ``callbacks``,
    ``validation``, ``progress`` or ``start_step``, train as a host loop over compiled chunks of
    ``chunk_steps`` steps, the next chunk read in the background; the parameters are the same,
    bit for bit, for the same batches (see ``docs/streaming.md``, ``jaxbp.training.chunked``).

    Args:
        model: a callable ``(params, x) -> prediction`` (a ``jaxbp.MLP`` is one); static, so a
            new function object (a fresh lambda) compiles anew.
        loss: a name in ``jaxbp.LOSSES``, or a callable ``(prediction, y) -> (batch,)``
            per-example losses; the batch loss is their mean.
        params: any pytree of float arrays of one dtype.
        x: inputs ``(n, ...)``, any rank, examples first; y: targets ``(n, ...)`` (float, or
            integer labels ``(n,)`` for a callable loss). NaN or infinity is refused.
        lr: the hand-written SGD's learning rate: a number, or an optax schedule (a function of
            the step number, checked >= 0 on the run's steps). Leave it ``None`` when
            ``optimizer`` is given.
        epochs: number of passes over the data.
        batch_size: ``None`` (full batch), 1 (stochastic) or a mini-batch size; see ``_epochs``.
        key: a ``jax.random.key`` to shuffle every epoch; ``None`` keeps the data's order.
        optimizer: any ``optax.GradientTransformation`` in place of the hand-written SGD.
        opt_state: the optimizer state to continue from (default ``optimizer.init(params)``).
        start_epoch: the number of epochs already done, to continue a run exactly (shuffling and
            an SGD schedule depend on it).
        stop_on_nonfinite: check every step, inside the program, for a non-finite loss or
            gradient, or a blown-up loss (finite, above 1e6 x max(|first loss|, 1)); at the first
            one, keep the last good parameters and stop updating.
        reference_loss: the loss the blow-up rule compares with (default: this call's first
            loss); pass a run's first loss when continuing it one call at a time.
        mesh: a ``jax.sharding.Mesh`` to train data-parallel over its devices (the batch split
            over its first axis, params replicated); see ``jaxbp.training.sharding``. ``None``: one device.
        callbacks: a list of functions ``callback(step, params, metrics)`` (``None``: none) run
            between chunks; one that returns ``True`` or ``"stop"`` stops training (see
            ``jaxbp.training.callbacks``).
        validation: ``(x_val, y_val)``, whose loss is computed every ``validate_every`` steps
            (default: every epoch) into ``metrics["val_loss"]`` and ``history["val_loss"]``;
            arrays, or ``jaxbp.Rows`` views or ``.npy`` paths, which are read whole once.
        start_step: steps of epoch ``start_epoch`` already done, to resume mid-epoch exactly.
        chunk_steps: steps per compiled chunk (default: about 16 MiB of batches).
        prefetch: chunks read ahead in a background thread (0: read in the calling thread).
        progress: a progress bar on stderr (only when stderr is a terminal).
        steps_per_epoch: for an iterable of batches only: an epoch is its first this many
            batches (a one-shot iterator, such as a generator or an endless stream, is read on
            from where the last epoch stopped), so ``epochs * steps_per_epoch`` steps run;
            needed for an endless iterable, which otherwise never ends its first epoch.
            ``None``: an epoch is a whole pass. An epoch that ends short of this (or of the
            iterable's ``len()``), or gives no batch, raises ``jaxbp.BatchError``.

    Returns:
        ``(params, history)``. ``history["loss"]``: the loss of each step's batch before its
        update, shape ``(epochs * steps_per_epoch,)``, a device array. With an optimizer,
        ``history["opt_state"]``. With ``stop_on_nonfinite`` (host values, so the call waits for
        the program): ``history["stop_step"]`` (-1 when the run never stopped; later losses are
        NaN), ``history["stop_reason"]`` (``None``, ``"nonfinite"`` or ``"blowup"``) and
        ``history["nonfinite_path"]``, the tree path (``jax.tree_util.keystr``) of the first
        params leaf whose gradient was not finite, e.g. ``"[1]['w']"`` (``None`` if none was), and
        ``history["nonfinite_paths"]``, all such paths in ``jax.tree.leaves`` order.

    The call waits for the run: at its end one reduction on the device checks the result, and a
    ``jaxbp.NonFiniteWarning`` says at which step the loss first became non-finite when the
    params or the last loss are NaN or infinite (without ``stop_on_nonfinite``, a diverged run
    goes on to the end), and a ``jaxbp.TrainingWarning`` when no parameter changed at all.

    Streamed, ``history`` also has ``"steps_done"``, ``"position"`` (epochs done, steps done in
    the next epoch), ``"stop"`` (``None`` or why the run ended early), ``"host_seconds"``,
    ``"wait_seconds"`` and ``"chunks"``; with ``validation``, ``"val_loss"`` and ``"val_step"``.

    Raises:
        ValueError, TypeError: on any input that does not fit, before anything is compiled
            (callbacks that are not functions of ``(step, params, metrics)``, an
            ``EarlyStopping`` on a metric the run never computes).
        jaxbp.BatchError: streamed, when a batch cannot be read or does not fit; it names the
            batch and carries the last good ``params``, ``opt_state`` and ``history``.
    """
    callbacks = as_callback_list("fit", callbacks)
    streamed = (
        wants_chunks(x, y, mesh)
        or bool(callbacks)
        or validation is not None
        or progress
        or bool(start_step)
    )
    run, data = describe_run(
        model, loss, params, x, y, streamed=streamed, lr=lr, epochs=epochs,
        batch_size=batch_size, key=key, optimizer=optimizer, opt_state=opt_state,
        start_epoch=start_epoch, start_step=start_step, stop_on_nonfinite=stop_on_nonfinite,
        reference_loss=reference_loss, mesh=mesh, validation=validation,
        validate_every=validate_every, chunk_steps=chunk_steps, prefetch=prefetch,
        progress=progress, callbacks=callbacks, steps_per_epoch=steps_per_epoch,
    )  # fmt: skip
    if streamed:
        carry, history = chunked.fit_chunked(run, data, callbacks)
    else:
        assert isinstance(data, DeviceSource)
        carry, history = _fit_whole(run, data)
    params, history = finish(run, carry, history)
    check_fit_end(
        "fit", run.params, params, history, first=run.first,
        steps_per_epoch=run.steps_per_epoch, fix=_what_to_lower(lr, optimizer),
    )  # fmt: skip
    return params, history


def _what_to_lower(lr: Any, optimizer: Any) -> str:
    if optimizer is not None:
        return "the optimizer's learning rate"
    if callable(lr):
        return "the learning-rate schedule"
    return f"the learning rate (lr={lr!r})"


def per_example_grads(
    model: Model, loss: Loss, params: Params, x: ArrayLike, y: ArrayLike
) -> Grads:
    """The gradient of each example's loss (``vmap`` of ``grad``); every leaf gets a batch axis.

    Each example is passed to the model as a batch of one (``x[i:i+1]``), so any model that
    takes a batch works. Their mean over the batch axis is the gradient of the batch-mean loss.
    """
    check_batch("per_example_grads", model, loss, params, x, y)
    x, y = _run_checks.as_batch_arrays("per_example_grads", model, x, y)
    return _per_example_grads(model, loss, params, x, y)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _per_example_grads(model: Model, loss: Loss, params: Params, x: Array, y: Array) -> Grads:
    def example_loss(p, xi, yi):
        return batch_loss(model, loss, p, xi[None], yi[None])

    return jax.vmap(jax.grad(example_loss), in_axes=(None, 0, 0))(params, x, y)
