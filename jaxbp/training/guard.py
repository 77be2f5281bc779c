"""The divergence guard (``fit(..., stop_on_nonfinite=True)``): a wrapper around the update.

As optax's ``apply_if_finite`` wraps a transformation, :func:`stop_on_nonfinite` wraps a step's
update (:data:`jaxbp.training.program.Update`: the hand-written SGD's or an optax optimizer's,
applied to the params): the programs that run the step know nothing of it; the guard lives in the
update's state (:class:`GuardState`) and in nothing else. It looks at every step, inside the program, and stops updating at the first step whose loss
or gradient is not finite, or whose loss has blown up: a finite loss above
``BLOWUP_FACTOR * max(|reference|, 1)``, where the reference is the run's first loss (or one
passed in, to continue a run in pieces). A diverging run grows geometrically; six orders of
magnitude above where it started (or above 1, for a loss that starts small) is beyond what a
converging run visits, and far below float32's overflow at 3e38, so the last finite params are
still sane. From that step on, the params and the wrapped state stay as they were.

:func:`report` reads what the guard found, as host values, and sets the losses of the steps after
the stop to NaN: the one place both training paths read it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

if TYPE_CHECKING:
    from jaxbp._types import Array, Params
    from jaxbp.training.program import Update, UpdateRule

#: A finite loss above this many times ``max(|reference loss|, 1)`` counts as blown up.
BLOWUP_FACTOR = 1e6
#: ``GuardState.stop_reason`` codes.
NOT_STOPPED, NONFINITE, BLOWUP = 0, 1, 2
STOP_REASONS = {NOT_STOPPED: None, NONFINITE: "nonfinite", BLOWUP: "blowup"}


class GuardState(NamedTuple):
    """The state of :func:`stop_on_nonfinite`: the wrapped rule's state and what the guard saw.

    Attributes:
        inner: the wrapped rule's state (as it was before the stop, from the stop on).
        step: int32, the number of the next step (counted from the run's start, epoch 0).
        stop_step: int32, the step at which the guard stopped the run (-1: not stopped).
        stop_reason: int32, one of ``NOT_STOPPED``, ``NONFINITE``, ``BLOWUP``.
        stop_leaves: bool per params leaf (``jax.tree.leaves`` order): non-finite gradient there.
        reference: float32, the loss the blow-up rule compares with (NaN: take the first step's).
    """

    inner: Any
    step: Any
    stop_step: Any
    stop_reason: Any
    stop_leaves: Any
    reference: Any


def start(inner_state: Any, params: Params, first_step: int, reference: Any) -> GuardState:
    """The guard's state before global step ``first_step`` (host values: nothing is dispatched)."""
    return GuardState(
        inner=inner_state,
        step=np.int32(first_step),
        stop_step=np.int32(-1),
        stop_reason=np.int32(NOT_STOPPED),
        stop_leaves=np.zeros(len(jax.tree.leaves(params)), bool),
        reference=np.float32(reference),
    )


def stop_on_nonfinite(update: Update) -> Update:
    """``update``, guarded: its state is a :class:`GuardState` around ``update``'s; from the first
    bad step on (see the module), the params and that state stay as they were."""

    def guarded(
        params: Params, state: GuardState, grads: Any, value: Array
    ) -> tuple[Params, GuardState]:
        new_params, new_inner = update(params, state.inner, grads, value)
        bad_leaves = jnp.stack([~jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)])
        nonfinite = ~jnp.isfinite(value) | jnp.any(bad_leaves)
        loss32 = value.astype(jnp.float32)
        reference = jnp.where(jnp.isnan(state.reference), loss32, state.reference)
        limit = BLOWUP_FACTOR * jnp.maximum(jnp.abs(reference), 1.0)
        blowup = jnp.isfinite(value) & (loss32 > limit)
        stopped = state.stop_step >= 0
        first = ~stopped & (nonfinite | blowup)
        keep = stopped | first

        def choose(old: Any, new: Any) -> Any:
            return jax.tree.map(lambda o, n: jnp.where(keep, o, n), old, new)

        return choose(params, new_params), GuardState(
            inner=choose(state.inner, new_inner),
            step=state.step + 1,
            stop_step=jnp.where(first, state.step, state.stop_step),
            stop_reason=jnp.where(
                first, jnp.where(nonfinite, NONFINITE, BLOWUP), state.stop_reason
            ),
            stop_leaves=jnp.where(first, bad_leaves, state.stop_leaves),
            reference=reference,
        )

    return guarded


@dataclasses.dataclass(frozen=True)
class Guarded:
    """An update rule wrapped in :func:`stop_on_nonfinite`; hashable, like the rule it wraps."""

    inner: UpdateRule

    @property
    def optimizer(self) -> optax.GradientTransformation | None:
        return self.inner.optimizer

    def update(self, lr: Array) -> Update:
        return stop_on_nonfinite(self.inner.update(lr))


def inner_state(state: Any) -> Any:
    """The wrapped rule's state (``state`` itself when it is not guarded): what a caller sees."""
    return state.inner if isinstance(state, GuardState) else state


def stopped(state: Any) -> str | None:
    """Why the guard stopped, or ``None`` (also for an unguarded state); waits for ``state``."""
    if not isinstance(state, GuardState) or int(state.stop_step) < 0:
        return None
    return STOP_REASONS[int(state.stop_reason)]


def report(
    state: GuardState, losses: Array, first_step: int, paths: tuple[str, ...]
) -> dict[str, Any]:
    """The guard's findings as host values (this waits for the program), and ``losses`` (the
    steps from ``first_step`` on) with NaN after the stop step."""
    stop_step, reason, leaves = jax.device_get(
        (state.stop_step, state.stop_reason, state.stop_leaves)
    )
    bad = [path for path, is_bad in zip(paths, leaves, strict=True) if is_bad]
    if stop_step >= 0:
        losses = losses.at[int(stop_step) - first_step + 1 :].set(jnp.nan)
    return {
        "loss": losses,
        "stop_step": int(stop_step),
        "stop_reason": STOP_REASONS[int(reason)],
        "nonfinite_path": bad[0] if bad else None,
        "nonfinite_paths": bad,
    }
