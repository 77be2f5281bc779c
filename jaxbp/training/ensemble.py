"""Many models at once: ``init_ensemble`` and ``fit_ensemble`` (``vmap`` inside one compiled loop).

Every leaf of an ensemble's params has a leading model axis M. ``fit_ensemble`` trains all M
models on the same batches, each with its own learning rate if asked: a hyper-parameter sweep in
one program, batched and shuffled as ``fit`` is (see ``jaxbp.training.epochs``).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxbp.model import checks as _checks
from jaxbp.training import inputs as _inputs
from jaxbp.training import run_checks as _run_checks
from jaxbp.training import sharding as _sharding
from jaxbp.training.end_checks import check_ensemble_end
from jaxbp.training.epochs import run_epochs
from jaxbp.training.program import Step, TrainCarry, UpdateRule, sgd_start_state

if TYPE_CHECKING:
    from jaxbp._types import Array, ArrayLike, Loss, Model, Params
    from jaxbp.model.mlp import MLP


def init_ensemble(spec: MLP, key: Array, num_models: int, dtype: Any = jnp.float32) -> Params:
    """``num_models`` independent initialisations of an MLP, stacked: a leading model axis.

    For any other model, ``jax.vmap(init)(jax.random.split(key, num_models))`` stacks the
    params of your own ``init(key)`` the same way.
    """
    _checks.check_positive_int("init_ensemble", "num_models", num_models)
    _checks.check_init_key("init_ensemble", key)
    one = jax.eval_shape(lambda k: spec.init(k, dtype), key)  # spec.init checks one model's size
    _checks.check_param_memory(
        "init_ensemble", [(num_models, *leaf.shape) for leaf in jax.tree.leaves(one)], dtype
    )
    return _init_ensemble(spec, key, num_models, jnp.dtype(dtype))


@functools.partial(jax.jit, static_argnums=(0, 2, 3))
def _init_ensemble(spec: MLP, key: Array, num_models: int, dtype: Any) -> Params:
    # One compiled program rather than one dispatch per random op per layer.
    return jax.vmap(lambda k: spec.init(k, dtype))(jax.random.split(key, num_models))


@functools.partial(jax.jit, static_argnames=("step", "epochs", "batch_size", "batch_sharding"))
def _fit_ensemble_program(
    params: Params,
    opt_state: Any,
    x: Array,
    y: Array,
    lr: Array,
    key: Array | None,
    *,
    step: Step,
    epochs: int,
    batch_size: int | None,
    batch_sharding: jax.sharding.NamedSharding | None,
) -> tuple[Any, Array]:
    def model_step(model_params, model_state, model_lr, xb, yb):
        carry, value = step(model_lr)(TrainCarry(model_params, model_state), (xb, yb))
        return carry.params, carry.opt_state, value

    ensemble_step = jax.vmap(model_step, in_axes=(0, 0, 0, None, None))

    def scan_step(carry, batch):
        params, state = carry
        params, state, value = ensemble_step(params, state, lr, *batch)
        return (params, state), value

    if opt_state is None:  # the hand-written SGD, each model counting from step 0
        opt_state = jax.vmap(lambda p: sgd_start_state(p, 0))(params)
    return run_epochs(
        scan_step, (params, opt_state), x, y, epochs=epochs, batch_size=batch_size, key=key,
        start_epoch=0, batch_sharding=batch_sharding,
    )  # fmt: skip


def fit_ensemble(
    model: Model,
    loss: Loss,
    stacked_params: Params,
    x: ArrayLike,
    y: ArrayLike,
    *,
    lr: ArrayLike | None = None,
    epochs: int,
    batch_size: int | None = None,
    key: Array | None = None,
    optimizer: optax.GradientTransformation | None = None,
    mesh: jax.sharding.Mesh | None = None,
) -> tuple[Params, dict[str, Any]]:
    """Train M models at once (``vmap`` inside one compiled loop), all on the same batches.

    Args:
        model, loss: as for ``fit``; the model sees one model's params at a time.
        stacked_params: any params pytree with a leading model axis M on every leaf (see
            ``init_ensemble``, or ``jax.vmap(init)(jax.random.split(key, M))``).
        lr: the hand-written SGD's learning rate: a number for every model, or shape ``(M,)``:
            one per model. Leave it ``None`` when ``optimizer`` is given.
        optimizer: any ``optax.GradientTransformation`` in place of the hand-written SGD, the
            same for every model (each model has its own state).
        x, y, epochs, batch_size, key: as for ``fit`` (all models see the same batch order).
        mesh: a ``jax.sharding.Mesh``: the models split over its ``"model"`` axis, the batch over
            its first other axis; see ``jaxbp.training.sharding``. ``None``: one device.

    Returns:
        ``(stacked_params, history)`` with ``history["loss"]`` of shape ``(steps, M)``, and with
        an optimizer ``history["opt_state"]``, stacked over the models. The call waits for the
        run and checks it as ``fit`` does: a ``jaxbp.NonFiniteWarning`` names the models whose
        params or last loss are NaN or infinite (and the step where each loss first was), a
        ``jaxbp.TrainingWarning`` those whose params did not change at all.
    """
    where = "fit_ensemble"
    _checks.check_trainable(where, model)
    num_models, first = _check_stacked(where, stacked_params)
    _checks.check_positive_int(where, "epochs", epochs)
    _run_checks.check_key(where, key)
    _inputs.check_in_memory(where, x, y)
    stacked_params = _inputs.check_ensemble_params(where, model, stacked_params, first, x)
    data = _inputs.DeviceSource(where, *_inputs.check_arrays(where, model, loss, first, x, y, mesh))
    _inputs.check_ensemble_losses(where, model, loss, stacked_params, data.x, data.y)
    _inputs.plan(where, data, epochs=epochs, batch_size=batch_size, key=key, start_epoch=0, start_step=0)  # fmt: skip
    _inputs.warn_unused_rows(where, data, batch_size, key, stacklevel=2)
    lr, opt_state = _ensemble_update(where, stacked_params, num_models, lr, optimizer)
    batch_sharding = None
    if mesh is not None:
        stacked_params, batch_sharding = _sharding.place_ensemble(
            where, mesh, stacked_params, data.n, batch_size
        )
    before = stacked_params
    (params, opt_state), losses = _fit_ensemble_program(
        stacked_params, opt_state, data.x, data.y, lr, key, step=Step(model, loss, UpdateRule(optimizer)),
        epochs=epochs, batch_size=batch_size, batch_sharding=batch_sharding,
    )  # fmt: skip
    fix = "the optimizer's learning rate" if optimizer is not None else "their learning rates"
    check_ensemble_end(
        where, before, params, losses, fix=fix,
        steps_per_epoch=_run_checks.batches_per_epoch(where, data.n, batch_size),
    )  # fmt: skip
    history: dict[str, Any] = {"loss": losses}
    if optimizer is not None:
        history["opt_state"] = opt_state
    return params, history


def _check_stacked(where: str, stacked_params: Params) -> tuple[int, Params]:
    """The number of models M, and model 0's shapes and dtypes (for checks only: no device work)."""
    num_models = _run_checks.check_stacked(where, stacked_params)
    first = jax.tree.map(
        lambda leaf: np.empty(np.shape(leaf)[1:], _run_checks.dtype_of(leaf)), stacked_params
    )
    return int(num_models), first


def _ensemble_update(
    where: str, stacked_params: Params, num_models: int, lr: Any, optimizer: Any
) -> tuple[np.ndarray, Any]:
    """One learning rate per model (the hand-written SGD; its state starts in the program), or
    the optimizer's state per model: ``lr`` or ``optimizer``, never both."""
    _run_checks.check_lr_or_optimizer(where, lr, optimizer, "a number or one per model")
    dtype = _run_checks.float_dtype(stacked_params)
    if optimizer is not None:
        return np.zeros(num_models, dtype), jax.vmap(optimizer.init)(stacked_params)
    if callable(lr):
        raise TypeError(
            f"{where}: lr is a schedule ({type(lr).__name__}); fit_ensemble's hand-written SGD "
            f"takes a number or one number per model. For a schedule, pass "
            f"optimizer=optax.sgd(schedule) (its state counts each model's steps)."
        )
    _run_checks.check_rate(where, lr, dtype, 0, 1, allow_vector=True)
    if jnp.ndim(lr) == 1 and jnp.shape(lr) != (num_models,):
        raise ValueError(
            f"{where}: lr has shape {jnp.shape(lr)} but stacked_params holds {num_models} "
            f"models; pass one number, or one learning rate per model (shape ({num_models},))."
        )
    return np.broadcast_to(np.asarray(lr, dtype), (num_models,)), None
