"""What every training entry point checks when its run ends, so no wrong result comes back silently.

A run that diverged without the guard (``stop_on_nonfinite=False``, the default) returns NaN or
infinite parameters and losses; a run whose updates were all below the parameters' resolution
(``p - lr * g == p`` in their dtype, or zero gradients) returns its starting parameters. Both look
like a finished run. After the run, one reduction on the device (:func:`summarise`) says whether
the parameters are finite, whether the last loss is, and whether any parameter changed; only when
something is wrong are the losses read, to say at which step the loss first became non-finite.
What is wrong is a warning (:class:`NonFiniteWarning`, :class:`TrainingWarning`), the results
returned as they are: the losses and the history tell the rest.
"""

from __future__ import annotations

import functools
import warnings
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

if TYPE_CHECKING:
    from jaxbp._types import Array, Params


class TrainingWarning(RuntimeWarning):
    """A training run that probably does not do what was asked for: said before it starts (rows
    never trained on) or when it ends (a result that did not change or is not finite)."""


class NonFiniteWarning(TrainingWarning):
    """A training run returned parameters or a last loss that are NaN or infinite."""


@functools.partial(jax.jit, static_argnames=("axis",))
def _summarise(before: Params, after: Params, last_loss: Array, *, axis: bool) -> Any:
    """``(params finite, last loss finite, params unchanged)``; per model (axis 0) with ``axis``."""

    def reduce(flags: Array) -> Array:
        return jnp.all(flags.reshape(flags.shape[0], -1), axis=1) if axis else jnp.all(flags)

    pairs = list(zip(jax.tree.leaves(before), jax.tree.leaves(after), strict=True))
    finite = [reduce(jnp.isfinite(new)) for _, new in pairs]
    same = [reduce(old == new) for old, new in pairs]
    return (
        jnp.all(jnp.stack(finite), axis=0),
        jnp.isfinite(last_loss),
        jnp.all(jnp.stack(same), axis=0),
    )


def summarise(
    before: Params, after: Params, losses: Array, *, per_model: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Host booleans (one per model with ``per_model``): the params ``after`` the run are finite,
    the last of ``losses`` is, ``after`` equals ``before`` bit for bit. This waits for the run."""
    if not jax.tree.leaves(after):
        return np.asarray(True), np.asarray(True), np.asarray(False)
    last = losses[-1] if losses.shape[0] else jnp.zeros(losses.shape[1:], losses.dtype)
    flags = jax.device_get(_summarise(before, after, last, axis=per_model))
    return tuple(np.asarray(flag) for flag in flags)  # type: ignore[return-value]


def first_nonfinite(losses: Any) -> int | None:
    """The index of the first non-finite loss (any model's, for ``(steps, M)``), or ``None``."""
    values = np.asarray(jax.device_get(losses))
    bad = ~np.isfinite(values.reshape(values.shape[0], -1)).all(axis=1) if values.size else []
    found = np.flatnonzero(bad)
    return int(found[0]) if found.size else None


def describe_step(step: int, steps_per_epoch: int | None) -> str:
    """``step 37 (epoch 2, step 5 of 16)``: a global step and, when known, where in its epoch."""
    if not steps_per_epoch:
        return f"step {step}"
    epoch, inside = divmod(step, steps_per_epoch)
    return f"step {step} (epoch {epoch}, step {inside} of {steps_per_epoch}; counted from 0)"


def warn_nonfinite(message: str) -> None:
    warnings.warn(message, NonFiniteWarning, stacklevel=4)


def warn_training(message: str) -> None:
    warnings.warn(message, TrainingWarning, stacklevel=4)


def check_fit_end(
    where: str,
    before: Params,
    after: Params,
    history: dict[str, Any],
    *,
    first: int,
    steps_per_epoch: int | None,
    fix: str,
) -> None:
    """Warn when ``fit``'s result is not finite, or nothing was trained.

    Args:
        before, after: the params the run started from and those it returns.
        history: ``fit``'s history (``"loss"``: the losses of steps ``first, first + 1, ...``;
            with the guard, ``"stop_step"``, after which its losses are NaN by design).
        first: the run's first global step. steps_per_epoch: ``None`` when unknown.
        fix: what to lower, e.g. ``"lr=5.0"`` or ``"the optimizer's learning rate"``.
    """
    losses = history["loss"]
    stop_step = int(history.get("stop_step", -1))
    params_finite, loss_finite, unchanged = summarise(before, after, losses)
    guard_stop = stop_step >= 0
    if not params_finite or (not loss_finite and not guard_stop):
        if guard_stop:
            found = (
                f"the guard stopped at {describe_step(stop_step, steps_per_epoch)}, but the "
                f"params before it are already non-finite: the update of the step before overflowed"
            )
        else:
            index = first_nonfinite(losses)
            found = (
                f"the loss first became non-finite at {describe_step(first + index, steps_per_epoch)}"
                if index is not None
                else "the last update made the params non-finite (every loss was finite)"
            )
        held = "hold NaN or infinity" if not params_finite else "are finite, the last loss is not"
        advice = (
            " (the guard checks each step's loss and gradient, so it cannot stop an update "
            "that overflows the params on the last step)"
            if "stop_step" in history
            else ", or pass stop_on_nonfinite=True to stop at the first bad step and keep the "
            "params before it"
        )
        warn_nonfinite(
            f"{where}: training diverged: {found}; the returned params {held}. Lower {fix}{advice}."
        )
    elif bool(unchanged) and not guard_stop and losses.shape[0]:
        warn_training(
            f"{where}: no parameter changed in {losses.shape[0]} steps: every update was zero "
            f"or below the params' resolution in {_dtype(after)} (p - lr * g == p: a learning "
            f"rate too small for the params' magnitude, or zero gradients). Raise {fix}, or "
            f"check that the loss depends on the params."
        )


def check_ensemble_end(
    where: str,
    before: Params,
    after: Params,
    losses: Array,
    *,
    steps_per_epoch: int,
    fix: str,
) -> None:
    """``fit_ensemble``'s :func:`check_fit_end`: the same rules, per model, naming the models."""
    params_finite, loss_finite, unchanged = summarise(before, after, losses, per_model=True)
    bad = np.flatnonzero(~(params_finite & loss_finite))
    if bad.size:
        values = np.asarray(jax.device_get(losses))
        found = []
        for model in bad:
            index = first_nonfinite(values[:, model])
            found.append(
                f"model {model}: at {describe_step(index, steps_per_epoch)}"
                if index is not None
                else f"model {model}: at its last update"
            )
        warn_nonfinite(
            f"{where}: models {bad.tolist()} of {params_finite.shape[0]} diverged, their params "
            f"or last loss NaN or infinite; the loss first became non-finite for "
            f"{'; '.join(found)}. Lower {fix} for those models."
        )
    idle = np.flatnonzero(unchanged & params_finite & loss_finite)
    if idle.size and losses.shape[0]:
        warn_training(
            f"{where}: models {idle.tolist()} changed no parameter in {losses.shape[0]} steps: "
            f"every update was zero or below the params' resolution in {_dtype(after)} "
            f"(p - lr * g == p). Raise {fix} for those models, or check that the loss depends "
            f"on the params."
        )


def _dtype(params: Params) -> str:
    leaves = jax.tree.leaves(params)
    return str(np.dtype(leaves[0].dtype)) if leaves else "their dtype"
