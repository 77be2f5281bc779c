"""The compiled training step every loop shares: the loss, its gradient, and the update.

:class:`Step` names what a step is made of (the model, the loss, the update rule); it is
hashable, the one static argument the programs that scan it take, and ``step(lr)`` is the body of
a ``lax.scan`` over batches (``jaxbp.training.epochs.run_batches`` or ``run_epochs``):
``(carry, (xb, yb)) -> (carry, loss before the update)``. The update rule is an optax
``GradientTransformation`` whatever the user passed (the hand-written SGD is one too,
``jaxbp.model.updates.sgd_transformation``), so there is a single update path: an
:data:`Update`, ``(params, opt_state, grads, loss) -> (params, opt_state)``, which the divergence
guard wraps when asked (:mod:`jaxbp.training.guard`), as optax's ``apply_if_finite`` wraps a
transformation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import numpy as np
import optax

from jaxbp.model.steps import batch_loss
from jaxbp.model.updates import SgdState, unchecked_sgd_transformation

if TYPE_CHECKING:
    from jaxbp._types import Array, Loss, Model, Params
    from jaxbp.training.guard import Guarded


#: One step's update: ``(params, opt_state, grads, loss) -> (new params, new opt_state)``.
Update = Callable[[Any, Any, Any, Any], tuple[Any, Any]]


class TrainCarry(NamedTuple):
    """What the loop carries from step to step: the parameters and the update rule's state."""

    params: Params
    opt_state: Any


@dataclasses.dataclass(frozen=True)
class UpdateRule:
    """How a step turns gradients into updates; hashable, so the programs take it as static.

    Attributes:
        optimizer: an optax ``GradientTransformation``, or ``None`` for the hand-written SGD.
        schedule: the SGD's learning-rate schedule (a function of the step), or ``None``: the
            traced learning rate the programs are called with.
    """

    optimizer: optax.GradientTransformation | None = None
    schedule: Callable[[Array], Array] | None = None

    def transformation(self, lr: Array) -> optax.GradientTransformation:
        """``optimizer``, or the hand-written SGD at ``lr`` (traced) or following ``schedule``."""
        if self.optimizer is not None:
            return self.optimizer
        return unchecked_sgd_transformation(lr if self.schedule is None else self.schedule)

    def update(self, lr: Array) -> Update:
        """The step's update: the transformation's updates, applied to the params."""
        transformation = self.transformation(lr)

        def update(params: Params, opt_state: Any, grads: Any, value: Array) -> tuple[Any, Any]:
            del value  # an optax transformation sees the gradient only
            updates, opt_state = transformation.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state

        return update


def sgd_start_state(params: Params, first_step: int) -> SgdState:
    """The hand-written SGD's state before global step ``first_step``: it counts steps from the
    run's start (epoch 0), so a schedule sees the same step on every path and after a resume."""
    return unchecked_sgd_transformation(0.0).init(params)._replace(steps=np.int32(first_step))


@dataclasses.dataclass(frozen=True)
class Step:
    """A training step's static parts: ``model``, ``loss`` and the update ``rule`` (an
    :class:`UpdateRule`, or one wrapped in the guard). ``step(lr)`` is the step function."""

    model: Model
    loss: Loss
    rule: UpdateRule | Guarded

    def __call__(
        self, lr: Array
    ) -> Callable[[TrainCarry, tuple[Array, Array]], tuple[TrainCarry, Array]]:
        return make_train_step(self.model, self.loss, self.rule.update(lr))


def make_train_step(
    model: Model, loss: Loss, update: Update
) -> Callable[[TrainCarry, tuple[Array, Array]], tuple[TrainCarry, Array]]:
    """The step of a ``lax.scan`` over batches: ``(carry, (xb, yb)) -> (carry, loss before it)``."""
    value_and_grad = jax.value_and_grad(batch_loss, argnums=2)

    def step(carry: TrainCarry, batch: tuple[Array, Array]) -> tuple[TrainCarry, Array]:
        xb, yb = batch
        value, grads = value_and_grad(model, loss, carry.params, xb, yb)
        return TrainCarry(*update(carry.params, carry.opt_state, grads, value)), value

    return step
