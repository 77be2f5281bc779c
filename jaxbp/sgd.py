"""Gradients with ``jax.value_and_grad``, the hand-written SGD update, and jitted training steps.

The loss of a batch is ``LOSSES[name](spec.apply(params, x), y)``: the per-example loss averaged
over the batch. ``sgd`` is the whole optimiser: ``p <- p - lr * g`` leaf by leaf. Any optax
``GradientTransformation`` can stand in for it through ``optax_step``.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import optax

from jaxbp import _checks
from jaxbp._types import Array, ArrayLike, Grads, Params
from jaxbp.losses import LOSSES
from jaxbp.mlp import MLP, forward


def batch_loss(spec: MLP, loss: str, params: Params, x: Array, y: Array) -> Array:
    """The batch-mean loss, without validation (for traced code that has already been checked)."""
    return LOSSES[loss](forward(spec, params, x), y)


def check_batch(where: str, spec: MLP, loss: str, params: Params, x: Any, y: Any) -> None:
    """Validate a (spec, loss, params, x, y) call before anything runs."""
    _checks.check_name(where, "loss", loss, LOSSES)
    _checks.check_params(where, spec, params)
    x = _checks.check_input(where, spec, x)
    _checks.check_target(where, spec, x, y)


def loss_and_grad(
    spec: MLP, loss: str, params: Params, x: ArrayLike, y: ArrayLike
) -> tuple[Array, Grads]:
    """Loss and its gradient with respect to every parameter (``jax.value_and_grad``).

    Args:
        spec: the architecture.
        loss: a name in ``jaxbp.LOSSES``.
        params: the parameters, layout of ``MLP.init``.
        x: float array ``(batch, sizes[0])`` or ``(sizes[0],)``.
        y: float array ``(batch, sizes[-1])`` or ``(sizes[-1],)``.

    Returns:
        ``(loss, grads)``: a scalar, and a tree with the structure of ``params``.
    """
    check_batch("loss_and_grad", spec, loss, params, x, y)
    return _loss_and_grad(spec, loss, params, x, y)


#: ``loss_and_grad`` without validation, compiled once per (spec, loss, shapes).
_loss_and_grad = jax.jit(jax.value_and_grad(batch_loss, argnums=2), static_argnums=(0, 1))


def sgd(params: Params, grads: Grads, lr: ArrayLike) -> Params:
    """One hand-written SGD step: ``p - lr * g`` for every leaf; returns a new tree.

    Raises:
        ValueError: when the trees differ in structure or shapes, or ``lr`` is not finite and > 0.

    Example:
        >>> import jax.numpy as jnp, jaxbp
        >>> params = [{"w": jnp.array([[1.0]]), "b": jnp.array([0.5])}]
        >>> grads = [{"w": jnp.array([[2.0]]), "b": jnp.array([-1.0])}]
        >>> new = jaxbp.sgd(params, grads, 0.25)
        >>> float(new[0]["w"][0, 0]), float(new[0]["b"][0])
        (0.5, 0.75)
    """
    _checks.check_same_structure("sgd", "params", params, "grads", grads)
    _checks.check_learning_rate("sgd", lr)
    return jax.tree.map(lambda p, g: p - lr * g, params, grads)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _train_step(
    spec: MLP, loss: str, params: Params, x: Array, y: Array, lr: Array
) -> tuple[Params, Array]:
    value, grads = jax.value_and_grad(batch_loss, argnums=2)(spec, loss, params, x, y)
    return jax.tree.map(lambda p, g: p - lr * g, params, grads), value


def train_step(
    spec: MLP, loss: str, params: Params, x: ArrayLike, y: ArrayLike, lr: ArrayLike
) -> tuple[Params, Array]:
    """One jitted SGD step: ``(params - lr * grad, loss before the step)``.

    ``spec`` and ``loss`` are static; ``lr`` is traced, so a new learning rate does not recompile.
    """
    check_batch("train_step", spec, loss, params, x, y)
    _checks.check_learning_rate("train_step", lr)
    return _train_step(spec, loss, params, x, y, lr)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _optax_step(
    spec: MLP,
    loss: str,
    optimizer: optax.GradientTransformation,
    params: Params,
    opt_state: optax.OptState,
    x: Array,
    y: Array,
) -> tuple[Params, optax.OptState, Array]:
    value, grads = jax.value_and_grad(batch_loss, argnums=2)(spec, loss, params, x, y)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, value


def optax_step(
    spec: MLP,
    loss: str,
    optimizer: optax.GradientTransformation,
    params: Params,
    opt_state: optax.OptState,
    x: ArrayLike,
    y: ArrayLike,
) -> tuple[Params, optax.OptState, Array]:
    """One jitted step of any optax optimiser in place of ``sgd``.

    Returns:
        ``(new_params, new_opt_state, loss before the step)``; the state is returned, never stored.
    """
    check_batch("optax_step", spec, loss, params, x, y)
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            f"optax_step: optimizer must be an optax.GradientTransformation, got "
            f"{type(optimizer).__name__}."
        )
    return _optax_step(spec, loss, optimizer, params, opt_state, x, y)
