"""Whole training runs compiled into one XLA program: ``fit``, ``fit_ensemble``, ``per_example_grads``.

``fit`` runs every epoch and every batch inside one ``jax.jit``-compiled program (``lax.scan`` over
epochs, and over the batches of an epoch), so there is no Python or host work per step. The
loss history stays on the device. Inputs are validated once, before compiling; calling ``fit``
again with the same shapes and static settings reuses the compiled program.

Batching (``n`` examples):

- ``batch_size=None``: full-batch gradient descent, one step per epoch.
- ``batch_size=1``: stochastic gradient descent, ``n`` steps per epoch.
- otherwise mini-batch: ``n // batch_size`` steps per epoch. The remaining ``n % batch_size``
  examples of each epoch's order are left out of that epoch (with shuffling, a different set
  every epoch), so every step sees a full batch and one program serves every epoch.

With a ``key``, every epoch's order is a fresh permutation drawn inside the program from
``jax.random.fold_in(key, epoch)``; without one, the order is the data's own.
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
from jaxbp._types import Array, ArrayLike, Grads, Params
from jaxbp.losses import LOSSES
from jaxbp.mlp import MLP, forward
from jaxbp.sgd import batch_loss, check_batch

LearningRate = float | Array | Callable[[Array], Array]


def _batches_per_epoch(where: str, n: int, batch_size: int | None) -> int:
    if batch_size is None:
        return 1
    _checks.check_positive_int(where, "batch_size", batch_size)
    if batch_size > n:
        raise ValueError(
            f"{where}: batch_size {batch_size} is larger than the {n} examples; "
            f"pass batch_size <= {n}, or None for full-batch gradient descent."
        )
    return n // batch_size


def _shuffled_batches(x: Array, y: Array, batch_size: int, key: Array, epoch: Array):
    """The epoch's batches in the order ``permutation(fold_in(key, epoch))``: ``(steps, batch, .)``."""
    steps = x.shape[0] // batch_size
    order = jax.random.permutation(jax.random.fold_in(key, epoch), x.shape[0])
    index = order[: steps * batch_size].reshape(steps, batch_size)
    return x[index], y[index]


def _ordered_batches(x: Array, y: Array, batch_size: int):
    """The data's own order, cut into ``(steps, batch, .)`` without copying (a reshape)."""
    steps = x.shape[0] // batch_size
    used = steps * batch_size
    return (
        x[:used].reshape(steps, batch_size, x.shape[1]),
        y[:used].reshape(steps, batch_size, y.shape[1]),
    )


def _run_epochs(step, carry, x, y, *, epochs, batch_size, key, start_epoch, batch_sharding=None):
    """Apply ``step(carry, (xb, yb)) -> (carry, out)`` to every batch of every epoch.

    Returns the final carry and the outputs stacked over all steps. The loop shape is chosen so
    that XLA sees as little per-step bookkeeping as possible: full batch is a single loop over
    epochs with ``x, y`` as loop constants; without shuffling the batches are cut once, outside
    the loops; with shuffling each epoch gathers its permuted batches once, then loops over them.
    With a ``batch_sharding`` (data-parallel training), the stacked batches are constrained to
    it, so every step's batch stays split over the mesh's data axis; full-batch data arrives
    already split by rows.
    """
    if batch_size is None:
        return jax.lax.scan(lambda c, _: step(c, (x, y)), carry, None, length=epochs)
    if key is None:
        batches = _sharding.constrain_batches(_ordered_batches(x, y, batch_size), batch_sharding)

        def epoch(c, _):
            return jax.lax.scan(step, c, batches)
    else:

        def epoch(c, epoch_index):
            batches = _shuffled_batches(x, y, batch_size, key, epoch_index)
            return jax.lax.scan(step, c, _sharding.constrain_batches(batches, batch_sharding))

    carry, outs = jax.lax.scan(epoch, carry, start_epoch + jnp.arange(epochs))
    return carry, jax.tree.map(lambda out: out.reshape(-1, *out.shape[2:]), outs)


def _sgd_update(params: Params, grads: Grads, lr: Array) -> Params:
    return jax.tree.map(lambda p, g: p - lr * g, params, grads)


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
            new_params, new_state = _sgd_update(params, grads, rate), opt_state
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
    (params, opt_state, stop_step, stop_layers, _), losses = _run_epochs(
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
    check_batch(where, spec, loss, params, x, y)
    x, y = _as_batch_arrays(where, x, y)
    if mesh is not None:
        x, y = _sharding.shard_batch(mesh, x, y, where=where)
    _checks.check_positive_int(where, "epochs", epochs)
    _batches_per_epoch(where, x.shape[0], batch_size)
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
        np.asarray(lr, _float_dtype(params)),  # NumPy: no device dispatch before the call
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


def _as_batch_arrays(where: str, x: Any, y: Any) -> tuple[Array, Array]:
    # Device arrays pass through untouched (no dispatch); anything else is converted once.
    x = x if isinstance(x, jax.Array) else jnp.asarray(x)
    y = y if isinstance(y, jax.Array) else jnp.asarray(y)
    if x.ndim != 2:
        raise ValueError(f"{where}: x must be a batch (n, features), got shape {tuple(x.shape)}.")
    return x, y


def _dtype_of(leaf: Any) -> np.dtype:
    return leaf.dtype if hasattr(leaf, "dtype") else np.asarray(leaf).dtype


def _float_dtype(params: Params) -> np.dtype:
    """The dtype the parameters promote to (float32 params keep float32 learning rates)."""
    return np.dtype(jnp.result_type(*(_dtype_of(leaf) for leaf in jax.tree.leaves(params))))


def init_ensemble(spec: MLP, key: Array, num_models: int, dtype: Any = jnp.float32) -> Params:
    """``num_models`` independent initialisations, stacked: every leaf gets a leading model axis."""
    _checks.check_positive_int("init_ensemble", "num_models", num_models)
    return _init_ensemble(spec, key, num_models, jnp.dtype(dtype))


@functools.partial(jax.jit, static_argnums=(0, 2, 3))
def _init_ensemble(spec: MLP, key: Array, num_models: int, dtype: Any) -> Params:
    # One compiled program rather than one dispatch per random op per layer.
    return jax.vmap(lambda k: spec.init(k, dtype))(jax.random.split(key, num_models))


@functools.partial(
    jax.jit, static_argnames=("spec", "loss", "epochs", "batch_size", "batch_sharding")
)
def _fit_ensemble_program(
    params: Params,
    x: Array,
    y: Array,
    lr: Array,
    key: Array | None,
    *,
    spec: MLP,
    loss: str,
    epochs: int,
    batch_size: int | None,
    batch_sharding: jax.sharding.NamedSharding | None = None,
) -> tuple[Params, Array]:
    value_and_grad = jax.value_and_grad(batch_loss, argnums=2)

    def model_step(model_params, model_lr, xb, yb):
        value, grads = value_and_grad(spec, loss, model_params, xb, yb)
        return _sgd_update(model_params, grads, model_lr), value

    ensemble_step = jax.vmap(model_step, in_axes=(0, 0, None, None))

    def step(params, batch):
        return ensemble_step(params, lr, *batch)

    return _run_epochs(
        step,
        params,
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        key=key,
        start_epoch=0,
        batch_sharding=batch_sharding,
    )


def fit_ensemble(
    spec: MLP,
    loss: str,
    stacked_params: Params,
    x: ArrayLike,
    y: ArrayLike,
    *,
    lr: ArrayLike,
    epochs: int,
    batch_size: int | None = None,
    key: Array | None = None,
    mesh: jax.sharding.Mesh | None = None,
) -> tuple[Params, dict[str, Array]]:
    """Train M models at once (``vmap`` inside one compiled loop), all on the same batches.

    Args:
        stacked_params: every leaf with a leading model axis M (see ``init_ensemble``).
        lr: a number for every model, or shape ``(M,)``: one learning rate per model.
        x, y, epochs, batch_size, key: as for ``fit`` (all models see the same batch order).
        mesh: a ``jax.sharding.Mesh``: the models split over its ``"model"`` axis, the batch over
            its first other axis; see ``jaxbp.sharding``. ``None``: one device.

    Returns:
        ``(stacked_params, history)`` with ``history["loss"]`` of shape ``(steps, M)``.
    """
    where = "fit_ensemble"
    leaves = jax.tree.leaves(stacked_params)
    if not leaves or any(jnp.ndim(leaf) < 1 for leaf in leaves):
        raise ValueError(f"{where}: stacked_params needs a leading model axis on every leaf.")
    num_models = jnp.shape(leaves[0])[0]
    if any(jnp.shape(leaf)[0] != num_models for leaf in leaves):
        raise ValueError(f"{where}: every leaf of stacked_params needs the same model axis M.")
    # Model 0's shapes and dtypes, for validation only (no device work).
    first = jax.tree.map(lambda leaf: np.empty(np.shape(leaf)[1:], _dtype_of(leaf)), stacked_params)
    check_batch(where, spec, loss, first, x, y)
    x, y = _as_batch_arrays(where, x, y)
    if mesh is not None:
        x, y = _sharding.shard_batch(mesh, x, y, where=where)
    _checks.check_positive_int(where, "epochs", epochs)
    _batches_per_epoch(where, x.shape[0], batch_size)
    _checks.check_learning_rate(where, lr, allow_vector=True)
    if jnp.ndim(lr) == 1 and jnp.shape(lr) != (num_models,):
        raise ValueError(
            f"{where}: lr has shape {jnp.shape(lr)} but stacked_params holds {num_models} models; "
            f"pass one number, or one learning rate per model (shape ({num_models},))."
        )
    lr = np.broadcast_to(np.asarray(lr, _float_dtype(stacked_params)), (num_models,))
    batch_sharding = None
    if mesh is not None:
        stacked_params, batch_sharding = _sharding.place_ensemble(
            where, mesh, stacked_params, x.shape[0], batch_size
        )
    params, losses = _fit_ensemble_program(
        stacked_params,
        x,
        y,
        lr,
        key,
        spec=spec,
        loss=loss,
        epochs=epochs,
        batch_size=batch_size,
        batch_sharding=batch_sharding,
    )
    return params, {"loss": losses}


def per_example_grads(spec: MLP, loss: str, params: Params, x: ArrayLike, y: ArrayLike) -> Grads:
    """The gradient of each example's loss (``vmap`` of ``grad``); every leaf gets a batch axis.

    Their mean over the batch axis is the gradient of the batch-mean loss.
    """
    check_batch("per_example_grads", spec, loss, params, x, y)
    x, y = _as_batch_arrays("per_example_grads", x, y)
    return _per_example_grads(spec, loss, params, x, y)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _per_example_grads(spec: MLP, loss: str, params: Params, x: Array, y: Array) -> Grads:
    def example_loss(p, xi, yi):
        return LOSSES[loss](forward(spec, p, xi), yi)

    return jax.vmap(jax.grad(example_loss), in_axes=(None, 0, 0))(params, x, y)
