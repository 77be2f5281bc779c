"""Many models at once: ``init_ensemble`` and ``fit_ensemble`` (``vmap`` inside one compiled loop).

Every leaf of an ensemble's params has a leading model axis M. ``fit_ensemble`` trains all M
models on the same batches, each with its own learning rate if asked: a hyper-parameter sweep in
one program, batched and shuffled as ``fit`` is (see ``jaxbp._epochs``).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp import _checks
from jaxbp import sharding as _sharding
from jaxbp._epochs import (
    check_run,
    dtype_of,
    float_dtype,
    run_epochs,
    sgd_update,
)
from jaxbp._types import Array, ArrayLike, Params
from jaxbp.mlp import MLP
from jaxbp.sgd import batch_loss


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
        return sgd_update(model_params, grads, model_lr), value

    ensemble_step = jax.vmap(model_step, in_axes=(0, 0, None, None))

    def step(params, batch):
        return ensemble_step(params, lr, *batch)

    return run_epochs(
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
    first = jax.tree.map(lambda leaf: np.empty(np.shape(leaf)[1:], dtype_of(leaf)), stacked_params)
    x, y = check_run(
        where, spec, loss, first, x, y, epochs=epochs, batch_size=batch_size, mesh=mesh
    )
    _checks.check_learning_rate(where, lr, allow_vector=True)
    if jnp.ndim(lr) == 1 and jnp.shape(lr) != (num_models,):
        raise ValueError(
            f"{where}: lr has shape {jnp.shape(lr)} but stacked_params holds {num_models} models; "
            f"pass one number, or one learning rate per model (shape ({num_models},))."
        )
    lr = np.broadcast_to(np.asarray(lr, float_dtype(stacked_params)), (num_models,))
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
