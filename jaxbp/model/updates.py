"""The hand-written SGD update, written once: ``p <- p - lr * g`` leaf by leaf.

``sgd_transformation(learning_rate)`` is that update as an optax ``GradientTransformation``
(``updates = -lr(step) * g``), so ``fit`` and ``fit_ensemble`` run one update path for it and for
any optax optimizer. ``sgd(params, grads, lr)`` is the same step, applied once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxbp.model import checks as _checks

if TYPE_CHECKING:
    from jaxbp._types import Array, ArrayLike, Grads, Params


class SgdState(NamedTuple):
    """The state of ``sgd_transformation``: the number of steps taken (int32)."""

    steps: Array


def sgd_transformation(
    learning_rate: ArrayLike | Callable[[Array], Array],
) -> optax.GradientTransformation:
    """The hand-written SGD as an optax transformation: ``updates = -learning_rate(count) * g``.

    Args:
        learning_rate: a number, a traced array, or a schedule (a function of the int32 step
            count, as optax schedules are).

    Returns:
        An ``optax.GradientTransformation``; its state counts steps, so a schedule can follow
        them. ``optax.apply_updates(params, updates)`` gives ``p - lr * g``.

    Raises:
        TypeError, ValueError: a concrete rate that is not one finite number > 0 (a negative
            one would climb the loss), as for ``fit``'s ``lr``.
    """
    _checks.check_learning_rate("sgd_transformation", learning_rate, allow_schedule=True)
    return unchecked_sgd_transformation(learning_rate)


def unchecked_sgd_transformation(
    learning_rate: ArrayLike | Callable[[Array], Array],
) -> optax.GradientTransformation:
    """:func:`sgd_transformation` without checking the rate (``fit`` checks it once)."""

    def init(params: Params) -> SgdState:
        del params
        return SgdState(steps=jnp.zeros([], jnp.int32))

    def update(grads: Grads, state: SgdState, params: Params | None = None) -> tuple[Any, SgdState]:
        del params
        rate: Any = learning_rate(state.steps) if callable(learning_rate) else learning_rate
        return jax.tree.map(lambda g: -rate * g, grads), SgdState(steps=state.steps + 1)

    return optax.GradientTransformation(init, update)


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
    return apply_sgd(params, grads, lr)


def apply_sgd(params: Params, grads: Grads, lr: ArrayLike) -> Params:
    """``sgd`` without validation: one step of ``sgd_transformation(lr)``."""
    transformation = unchecked_sgd_transformation(lr)
    updates, _ = transformation.update(grads, transformation.init(params))
    return optax.apply_updates(params, updates)
