"""One step at a time: the batch loss, ``loss_and_grad``, ``train_step`` and ``optax_step``.

The model is any callable ``(params, x) -> prediction`` (a ``jaxbp.MLP`` is one), the loss a name
in ``jaxbp.LOSSES`` or any callable ``(prediction, y) -> per-example losses`` of shape
``(batch,)``; the batch loss is the mean of the per-example losses. Model and loss are static
arguments of the compiled steps (hashed by identity for functions, by value for an ``MLP``), so a
new lambda per call compiles anew; the learning rate is traced and never recompiles.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxbp.model import batch_checks as _batch_checks
from jaxbp.model import checks as _checks
from jaxbp.model.losses import LOSSES
from jaxbp.model.mlp import MLP, forward
from jaxbp.model.updates import apply_sgd

if TYPE_CHECKING:
    from jaxbp._types import Array, ArrayLike, Grads, Loss, Model, Params


def predict(model: Model, params: Params, x: Array) -> Array:
    """The model's prediction, without validation (an ``MLP`` runs its unchecked forward pass)."""
    return forward(model, params, x) if isinstance(model, MLP) else model(params, x)


def batch_loss(model: Model, loss: Loss, params: Params, x: Array, y: Array) -> Array:
    """The batch-mean loss, without validation (for traced code that has already been checked).

    A loss name gives ``LOSSES[name](prediction, y)``; a callable loss gives the mean of its
    per-example losses, whose shape is checked here, while tracing.
    """
    prediction = predict(model, params, x)
    if isinstance(loss, str):
        return LOSSES[loss](prediction, y)
    per_example = loss(prediction, y)
    _checks.check_loss_shape("loss", jnp.shape(per_example), per_example.dtype, x.shape[0])
    return jnp.mean(per_example)


def check_batch(
    where: str,
    model: Model,
    loss: Loss,
    params: Params,
    x: Any,
    y: Any,
    *,
    values: bool = False,
    pairing: bool = True,
) -> tuple[Params, Any, Any]:
    """Validate a (model, loss, params, x, y) call before anything runs or compiles; return
    ``params, x, y`` as arrays (lists converted, NumPy data in native byte order).

    A ``jaxbp.MLP`` gets its own checks of params against the spec (and, with a loss name, of
    ``y`` against its outputs). Any other model gets the contract's: float params of one dtype,
    ``x`` and ``y`` with the same number of examples, a prediction per example that does not
    broadcast against ``y`` and a loss of shape ``(batch,)``, checked once with
    ``jax.eval_shape`` (no compilation). With ``values`` (real arrays, not shape stand-ins), also
    :func:`~jaxbp.model.batch_checks.check_values`: finite params, and each example's loss its own.
    With ``pairing`` (training; a worked example shows what a bad pairing does instead), the
    model's output activation must suit a named loss (:func:`~jaxbp.model.checks.check_output_pairing`).
    """
    _checks.check_model(where, model)
    _checks.check_loss(where, loss, LOSSES)
    if pairing:
        _checks.check_trainable(where, model)
        _checks.check_output_pairing(where, model, loss)
    params = _batch_checks.native_params(where, params)
    if isinstance(model, MLP):
        _checks.check_params(where, model, params)
        _checks.check_param_leaves(where, params)
        x = _checks.check_input(where, model, x)
        if isinstance(loss, str):
            y = _checks.check_target(where, model, x, y)
            if values:
                _batch_checks.check_values(where, model, loss, params, x, y)
            return params, x, y
    else:
        _checks.check_param_leaves(where, params)
        x = _checks.as_real_array(where, "x", x)
    y = _checks.as_real_array(where, "y", y)
    if x.ndim < 2 and isinstance(model, MLP):
        raise ValueError(
            f"{where}: x has shape {tuple(x.shape)}; a callable loss needs a batch axis: "
            f"pass x[None] for a single example."
        )
    _checks.check_rows(where, x, y)
    check_loss_output(where, model, loss, params, x, y)
    if values:
        _batch_checks.check_values(where, model, loss, params, x, y)
    return params, x, y


def check_loss_output(where: str, model: Model, loss: Loss, params: Any, x: Any, y: Any) -> None:
    """Trace the model and loss once on shapes alone: one prediction per example, not broadcast
    against ``y``, and a loss of shape ``(batch,)``. An error raised by the model or the loss
    while tracing is raised again naming the shapes it was called with."""
    structs = _checks.shape_structs((params, x, y))
    batch = jnp.shape(x)[0]
    try:
        prediction = jax.eval_shape(functools.partial(predict, model), *structs[:2])
    except (TypeError, ValueError) as error:
        raise (TypeError if isinstance(error, TypeError) else ValueError)(
            f"{where}: the model failed on params of shapes {_shapes(params)} and x of shape "
            f"{tuple(jnp.shape(x))}: {error}"
        ) from error
    _batch_checks.check_prediction(where, loss, prediction, structs[2], batch)
    if isinstance(loss, str):
        return
    try:
        per_example = jax.eval_shape(loss, prediction, structs[2])
    except (TypeError, ValueError) as error:
        raise (TypeError if isinstance(error, TypeError) else ValueError)(
            f"{where}: the loss failed on predictions of shape {_shapes(prediction)} and y of "
            f"shape {tuple(jnp.shape(y))}: {error}"
        ) from error
    if not isinstance(per_example, jax.ShapeDtypeStruct):
        raise TypeError(
            f"{where}: loss returned {type(per_example).__name__}; it must return one array "
            f"of per-example losses, shape ({batch},)."
        )
    _checks.check_loss_shape(where, per_example.shape, per_example.dtype, batch)


def _shapes(tree: Any) -> Any:
    shapes = [tuple(jnp.shape(leaf)) for leaf in jax.tree.leaves(tree)]
    return shapes[0] if len(shapes) == 1 else shapes


def loss_and_grad(
    model: Model,
    loss: Loss,
    params: Params,
    x: ArrayLike,
    y: ArrayLike,
    *,
    check_values: bool = True,
) -> tuple[Array, Grads]:
    """Loss and its gradient with respect to every parameter (``jax.value_and_grad``).

    Args:
        model: a callable ``(params, x) -> prediction`` (a ``jaxbp.MLP`` is one).
        loss: a name in ``jaxbp.LOSSES``, or a callable ``(prediction, y) -> (batch,)``.
        params: any pytree of float arrays (for an ``MLP``, the layout of ``MLP.init``).
        x: the inputs, batch axis first (an ``MLP`` also takes one example ``(sizes[0],)``).
        y: the targets, batch axis first (float, or integer labels for a callable loss).
        check_values: also refuse NaN or infinity and a loss that mixes examples (see
            :func:`check_step`); ``False`` checks shapes and dtypes only and does not wait.

    Returns:
        ``(loss, grads)``: a scalar, and a tree with the structure of ``params``.

    Raises:
        ValueError, TypeError: when an argument breaks the contract, before anything compiles.
    """
    params, x, y = check_step("loss_and_grad", model, loss, params, x, y, check_values)
    return _loss_and_grad(model, loss, params, x, y)


def check_step(
    where: str, model: Model, loss: Loss, params: Params, x: Any, y: Any, values: bool = True
) -> tuple[Params, Any, Any]:
    """:func:`check_batch` with values, and finite data: what a step on concrete arrays needs.

    On concrete arrays this runs one small compiled check and waits for it (and for the arrays),
    so a loop of steps does not run ahead of the device; traced arguments (a step inside the
    caller's own ``jit``) are checked on shapes alone, and so is every call with ``values=False``
    (a hot loop that has checked its data once).
    """
    if not isinstance(values, bool):
        raise TypeError(f"{where}: check_values must be True or False, got {values!r:.40}.")
    params, x, y = check_batch(where, model, loss, params, x, y)
    # sent to the device once, for the check and the step
    x, y = (jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in (x, y))
    if values:
        _batch_checks.check_values(where, model, loss, params, x, y, data=True)
    return params, x, y


#: ``loss_and_grad`` without validation, compiled once per (model, loss, shapes).
_loss_and_grad = jax.jit(jax.value_and_grad(batch_loss, argnums=2), static_argnums=(0, 1))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _train_step(
    model: Model, loss: Loss, params: Params, x: Array, y: Array, lr: Array
) -> tuple[Params, Array]:
    value, grads = jax.value_and_grad(batch_loss, argnums=2)(model, loss, params, x, y)
    return apply_sgd(params, grads, lr), value


def train_step(
    model: Model,
    loss: Loss,
    params: Params,
    x: ArrayLike,
    y: ArrayLike,
    lr: ArrayLike,
    *,
    check_values: bool = True,
) -> tuple[Params, Array]:
    """One jitted SGD step: ``(params - lr * grad, loss before the step)``.

    ``model`` and ``loss`` are static; ``lr`` is traced, so a new learning rate does not recompile.

    Raises:
        ValueError, TypeError: when an argument breaks the contract (see :func:`check_batch`),
            before anything compiles. Called with concrete arrays, NaN or infinity in ``params``
            (naming the leaf), ``x`` or ``y`` is refused too; this waits for the arrays, so steps
            do not run ahead of the device. Inside your own ``jax.jit`` the values are unknown
            and only shapes and dtypes are checked; ``check_values=False`` checks only those
            too, and does not wait (a hot loop over data checked once).
    """
    _checks.check_learning_rate("train_step", lr)
    params, x, y = check_step("train_step", model, loss, params, x, y, check_values)
    return _train_step(model, loss, params, x, y, lr)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _optax_step(
    model: Model,
    loss: Loss,
    optimizer: optax.GradientTransformation,
    params: Params,
    opt_state: optax.OptState,
    x: Array,
    y: Array,
) -> tuple[Params, optax.OptState, Array]:
    value, grads = jax.value_and_grad(batch_loss, argnums=2)(model, loss, params, x, y)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, value


def optax_step(
    model: Model,
    loss: Loss,
    optimizer: optax.GradientTransformation,
    params: Params,
    opt_state: optax.OptState,
    x: ArrayLike,
    y: ArrayLike,
    *,
    check_values: bool = True,
) -> tuple[Params, optax.OptState, Array]:
    """One jitted step of any optax optimiser in place of ``sgd``; ``check_values`` as in
    :func:`train_step`.

    Returns:
        ``(new_params, new_opt_state, loss before the step)``; the state is returned, never stored.
    """
    _checks.check_optimizer("optax_step", optimizer)
    params, x, y = check_step("optax_step", model, loss, params, x, y, check_values)
    _checks.check_opt_state("optax_step", optimizer, params, opt_state)
    return _optax_step(model, loss, optimizer, params, opt_state, x, y)
