"""Whole training runs compiled into one XLA program: ``fit`` and ``per_example_grads``.

``fit`` runs every epoch and every batch inside one ``jax.jit``-compiled program (``lax.scan`` over
epochs, and over the batches of an epoch), so there is no Python or host work per step. The
loss history stays on the device. Inputs are validated once, before compiling; calling ``fit``
again with the same shapes and static settings reuses the compiled program. Batching and
shuffling are described in ``jaxbp._epochs``; ``jaxbp.ensemble`` trains many models at once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxbp import _checks
from jaxbp import sharding as _sharding
from jaxbp._epochs import (
    as_batch_arrays,
    check_run,
    float_dtype,
    run_epochs,
    sgd_update,
)
from jaxbp._types import Array, ArrayLike, Grads, Params
from jaxbp.losses import LOSSES
from jaxbp.mlp import MLP, forward
from jaxbp.sgd import batch_loss, check_batch

LearningRate = float | Array | Callable[[Array], Array]


def _nonfinite_layers(value: Array, grads: Grads) -> Array:
    """Per layer: True where the gradient (or the loss) holds a NaN or an infinity."""
    bad_loss = ~jnp.isfinite(value)
    return jnp.stack(
        [
            bad_loss | ~jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in layer.values()]))
            for layer in grads
        ]
    )


@functools.partial(
    jax.jit,
    static_argnames=(
        "spec",
        "loss",
        "optimizer",
        "schedule",
        "epochs",
        "batch_size",
        "guard",
        "batch_sharding",
    ),
)
def _fit_program(
    params: Params,
    opt_state: Any,
    x: Array,
    y: Array,
    lr: Array,
    key: Array | None,
    start_epoch: Array,
    *,
    spec: MLP,
    loss: str,
    optimizer: optax.GradientTransformation | None,
    schedule: Callable[[Array], Array] | None,
    epochs: int,
    batch_size: int | None,
    guard: bool,
    batch_sharding: jax.sharding.NamedSharding | None = None,
) -> tuple[Params, Any, dict[str, Array]]:
    steps = 1 if batch_size is None else x.shape[0] // batch_size
    value_and_grad = jax.value_and_grad(batch_loss, argnums=2)

    def step(carry, batch):
        params, opt_state, stop_step, stop_layers, step_index = carry
        xb, yb = batch
        value, grads = value_and_grad(spec, loss, params, xb, yb)
        if optimizer is None:
            rate = lr if schedule is None else schedule(step_index)
            new_params, new_state = sgd_update(params, grads, rate), opt_state
        else:
            updates, new_state = optimizer.update(grads, opt_state, params)
            new_params = optax.apply_updates(params, updates)
        if guard:
            bad = _nonfinite_layers(value, grads)
            stopped = stop_step >= 0
            first = ~stopped & jnp.any(bad)
            stop_layers = jnp.where(first, bad, stop_layers)
            stop_step = jnp.where(first, step_index, stop_step)
            keep = stopped | first
            new_params = jax.tree.map(
                lambda old, new: jnp.where(keep, old, new), params, new_params
            )
            new_state = jax.tree.map(
                lambda old, new: jnp.where(keep, old, new), opt_state, new_state
            )
            value = jnp.where(stopped, jnp.nan, value)
        return (new_params, new_state, stop_step, stop_layers, step_index + 1), value

    first_step = start_epoch * steps
    carry = (
        params,
        opt_state,
        jnp.asarray(-1, jnp.int32),
        jnp.zeros(spec.num_layers, bool),
        jnp.asarray(first_step, jnp.int32),
    )
    (params, opt_state, stop_step, stop_layers, _), losses = run_epochs(
        step,
        carry,
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        key=key,
        start_epoch=start_epoch,
        batch_sharding=batch_sharding,
    )
    history = {"loss": losses}
    if guard:
        history["nonfinite_step"] = stop_step
        history["nonfinite_layers"] = stop_layers
    return params, opt_state, history


def fit(
    spec: MLP,
    loss: str,
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
    mesh: jax.sharding.Mesh | None = None,
) -> tuple[Params, dict[str, Any]]:
    """Train for whole epochs in one compiled program.

    Args:
        spec, loss, params: as for ``jaxbp.loss_and_grad``.
        x: float array ``(n, sizes[0])``; y: float array ``(n, sizes[-1])``.
        lr: the hand-written SGD's learning rate: a number, or an optax schedule (a function of
            the step number). Leave it ``None`` when ``optimizer`` is given.
        epochs: number of passes over the data.
        batch_size: ``None`` (full batch), 1 (stochastic) or a mini-batch size; see the module.
        key: a ``jax.random.key`` to shuffle every epoch; ``None`` keeps the data's order.
        optimizer: any ``optax.GradientTransformation`` in place of the hand-written SGD.
        opt_state: the optimizer state to continue from (default ``optimizer.init(params)``).
        start_epoch: the number of epochs already done, to continue a run exactly (shuffling and
            an SGD schedule depend on it).
        stop_on_nonfinite: check every step, inside the program, for a non-finite loss or
            gradient; at the first one, keep the last finite parameters and stop updating.
        mesh: a ``jax.sharding.Mesh`` to train data-parallel over its devices (the batch split
            over its first axis, params replicated); see ``jaxbp.sharding``. ``None``: one device.

    Returns:
        ``(params, history)``. ``history["loss"]``: the loss of each step's batch before its
        update, shape ``(epochs * steps_per_epoch,)``, a device array. With an optimizer,
        ``history["opt_state"]``. With ``stop_on_nonfinite``, ``history["nonfinite_step"]`` (-1
        when every step was finite; later losses are NaN) and ``history["nonfinite_layers"]``,
        a bool per layer.

    Raises:
        ValueError, TypeError: on any input that does not fit, before anything is compiled.
    """
    where = "fit"
    x, y = check_run(
        where, spec, loss, params, x, y, epochs=epochs, batch_size=batch_size, mesh=mesh
    )
    if isinstance(start_epoch, bool) or not isinstance(start_epoch, int) or start_epoch < 0:
        raise ValueError(f"{where}: start_epoch must be an int >= 0, got {start_epoch!r}.")
    schedule = None
    if optimizer is None:
        if lr is None:
            raise ValueError(f"{where}: pass lr (a number or an optax schedule), or an optimizer.")
        _checks.check_learning_rate(where, lr)
        if callable(lr):
            schedule, lr = lr, 0.0
    else:
        if not isinstance(optimizer, optax.GradientTransformation):
            raise TypeError(
                f"{where}: optimizer must be an optax.GradientTransformation, "
                f"got {type(optimizer).__name__}."
            )
        if lr is not None:
            raise ValueError(
                f"{where}: an optimizer carries its own learning rate; pass lr=None, "
                f"e.g. optimizer=optax.sgd(0.1) or optax.sgd(optax.cosine_decay_schedule(...))."
            )
        lr = 0.0
        if opt_state is None:
            opt_state = optimizer.init(params)
    batch_sharding = None
    if mesh is not None:
        params, opt_state, batch_sharding = _sharding.place_fit(
            where, mesh, params, opt_state, x.shape[0], batch_size
        )
    params, opt_state, history = _fit_program(
        params,
        opt_state,
        x,
        y,
        np.asarray(lr, float_dtype(params)),  # NumPy: no device dispatch before the call
        key,
        np.int32(start_epoch),
        spec=spec,
        loss=loss,
        optimizer=optimizer,
        schedule=schedule,
        epochs=epochs,
        batch_size=batch_size,
        guard=stop_on_nonfinite,
        batch_sharding=batch_sharding,
    )
    if optimizer is not None:
        history["opt_state"] = opt_state
    return params, history


def per_example_grads(spec: MLP, loss: str, params: Params, x: ArrayLike, y: ArrayLike) -> Grads:
    """The gradient of each example's loss (``vmap`` of ``grad``); every leaf gets a batch axis.

    Their mean over the batch axis is the gradient of the batch-mean loss.
    """
    check_batch("per_example_grads", spec, loss, params, x, y)
    x, y = as_batch_arrays("per_example_grads", x, y)
    return _per_example_grads(spec, loss, params, x, y)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _per_example_grads(spec: MLP, loss: str, params: Params, x: Array, y: Array) -> Grads:
    def example_loss(p, xi, yi):
        return LOSSES[loss](forward(spec, p, xi), yi)

    return jax.vmap(jax.grad(example_loss), in_axes=(None, 0, 0))(params, x, y)
