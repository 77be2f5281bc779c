"""The compiled training step every loop shares: gradient, update, and the divergence guard.

``make_train_step(model, loss, update_rule, guard)`` returns ``step(carry, (xb, yb)) -> (carry,
loss)``, the body of a ``lax.scan`` over batches (``jaxbp.training.epochs.run_batches`` or
``run_epochs``). ``update_rule`` is any optax ``GradientTransformation``; the hand-written SGD is
one too (``jaxbp.model.updates.sgd_transformation``), so there is a single update path.

The guard (``guard=True``) checks every step, inside the program, and stops updating at the
first step whose loss or gradient is not finite, or whose loss has blown up: a finite loss above
``BLOWUP_FACTOR * max(|reference|, 1)``, where the reference is the run's first loss (or one
passed in, to continue a run in pieces). A diverging run grows geometrically; six orders of
magnitude above where it started (or above 1, for a loss that starts small) is beyond what a
converging run visits, and far below float32's overflow at 3e38, so the last finite params are
still sane. From that step on, params and optimizer state stay as they were and losses are NaN.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxbp.model.steps import batch_loss
from jaxbp.model.updates import sgd_transformation
from jaxbp.training import epochs as _epochs

if TYPE_CHECKING:
    from jaxbp._types import Array, Loss, Model, Params

#: A finite loss above this many times ``max(|reference loss|, 1)`` counts as blown up.
BLOWUP_FACTOR = 1e6
#: ``TrainCarry.stop_reason`` codes.
NOT_STOPPED, NONFINITE, BLOWUP = 0, 1, 2
STOP_REASONS = {NOT_STOPPED: None, NONFINITE: "nonfinite", BLOWUP: "blowup"}


class TrainCarry(NamedTuple):
    """Everything the loop carries from step to step.

    Attributes:
        params, opt_state: the model's parameters and its update rule's state.
        step: int32, the number of the next step (counted from the run's start, epoch 0).
        stop_step: int32, the step at which the guard stopped the run (-1: not stopped).
        stop_reason: int32, one of ``NOT_STOPPED``, ``NONFINITE``, ``BLOWUP``.
        stop_leaves: bool per params leaf (``jax.tree.leaves`` order): non-finite gradient there.
        reference: float32, the loss the blow-up rule compares with (NaN: take the first step's).
    """

    params: Params
    opt_state: Any
    step: Array
    stop_step: Array
    stop_reason: Array
    stop_leaves: Array
    reference: Array


def init_carry(
    params: Params, opt_state: Any, first_step: Any, reference: Any = jnp.nan
) -> TrainCarry:
    return TrainCarry(
        params=params,
        opt_state=opt_state,
        step=jnp.asarray(first_step, jnp.int32),
        stop_step=jnp.asarray(-1, jnp.int32),
        stop_reason=jnp.asarray(NOT_STOPPED, jnp.int32),
        stop_leaves=jnp.zeros(len(jax.tree.leaves(params)), bool),
        reference=jnp.asarray(reference, jnp.float32),
    )


def make_train_step(
    model: Model, loss: Loss, update_rule: optax.GradientTransformation, guard: bool
) -> Callable[[TrainCarry, tuple[Array, Array]], tuple[TrainCarry, Array]]:
    """The step of a ``lax.scan`` over batches: ``(carry, (xb, yb)) -> (carry, loss before it)``."""
    value_and_grad = jax.value_and_grad(batch_loss, argnums=2)

    def step(carry: TrainCarry, batch: tuple[Array, Array]) -> tuple[TrainCarry, Array]:
        xb, yb = batch
        value, grads = value_and_grad(model, loss, carry.params, xb, yb)
        updates, new_state = update_rule.update(grads, carry.opt_state, carry.params)
        new_params = optax.apply_updates(carry.params, updates)
        carry = carry._replace(step=carry.step + 1)
        if not guard:
            return carry._replace(params=new_params, opt_state=new_state), value
        return _guarded(carry, value, grads, new_params, new_state)

    return step


def update_rule(
    optimizer: optax.GradientTransformation | None,
    lr: Array,
    schedule: Callable[[Array], Array] | None,
) -> optax.GradientTransformation:
    """``optimizer``, or the hand-written SGD at ``lr`` (traced) or following ``schedule``."""
    if optimizer is not None:
        return optimizer
    return sgd_transformation(lr if schedule is None else schedule)


@functools.partial(
    jax.jit,
    static_argnames=("model", "loss", "optimizer", "schedule", "guard", "batch_sharding"),
    donate_argnums=0,
)
def train_on_batches(
    carry: TrainCarry,
    batches: tuple[Array, Array],
    lr: Array,
    *,
    model: Model,
    loss: Loss,
    optimizer: optax.GradientTransformation | None,
    schedule: Callable[[Array], Array] | None,
    guard: bool,
    batch_sharding: jax.sharding.NamedSharding | None = None,
) -> tuple[TrainCarry, Array]:
    """One compiled program: the step over pre-cut batches ``(steps, batch, ...)``.

    For data that arrives in chunks: cut each chunk into batches, call this with the carry the
    previous call returned (``init_carry`` first; with the hand-written SGD, its state is
    ``sgd_transformation(lr).init(params)`` with ``steps`` set to the first step). The carry is
    donated. Returns the carry and each step's loss.
    """
    step = make_train_step(model, loss, update_rule(optimizer, lr, schedule), guard)
    return _epochs.run_batches(step, carry, batches, batch_sharding)


def _guarded(
    carry: TrainCarry, value: Array, grads: Any, new_params: Params, new_state: Any
) -> tuple[TrainCarry, Array]:
    bad_leaves = jnp.stack([~jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)])
    nonfinite = ~jnp.isfinite(value) | jnp.any(bad_leaves)
    loss32 = value.astype(jnp.float32)
    reference = jnp.where(jnp.isnan(carry.reference), loss32, carry.reference)
    blowup = jnp.isfinite(value) & (loss32 > BLOWUP_FACTOR * jnp.maximum(jnp.abs(reference), 1.0))
    stopped = carry.stop_step >= 0
    first = ~stopped & (nonfinite | blowup)
    keep = stopped | first

    def choose(old: Any, new: Any) -> Any:
        return jax.tree.map(lambda o, n: jnp.where(keep, o, n), old, new)

    carry = carry._replace(
        params=choose(carry.params, new_params),
        opt_state=choose(carry.opt_state, new_state),
        stop_step=jnp.where(first, carry.step - 1, carry.stop_step),
        stop_reason=jnp.where(first, jnp.where(nonfinite, NONFINITE, BLOWUP), carry.stop_reason),
        stop_leaves=jnp.where(first, bad_leaves, carry.stop_leaves),
        reference=reference,
    )
    return carry, jnp.where(stopped, jnp.nan, value)


def guard_report(carry: TrainCarry, paths: tuple[str, ...]) -> dict[str, Any]:
    """The guard's findings as host values (this waits for the program to finish)."""
    stop_step, reason, leaves = jax.device_get(
        (carry.stop_step, carry.stop_reason, carry.stop_leaves)
    )
    bad = [path for path, is_bad in zip(paths, leaves, strict=True) if is_bad]
    return {
        "stop_step": int(stop_step),
        "stop_reason": STOP_REASONS[int(reason)],
        "nonfinite_path": bad[0] if bad else None,
        "nonfinite_paths": bad,
    }
