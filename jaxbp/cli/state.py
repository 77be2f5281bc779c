"""The state a ``jaxbp train`` run starts from: fresh parameters, or a checkpoint's, checked.

A new run initialises the model with a key split from ``--seed`` (the other half shuffles). A
resumed run takes the checkpoint's params, optimizer state, key, position and metrics, every field
checked against the model the config builds: shapes and dtypes, the step against the epoch, the
loss sum of a part-done epoch, the feature scaling and the per-epoch metrics lists.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.cli import metrics
from jaxbp.training import checkpoint

if TYPE_CHECKING:
    from jaxbp._types import Array, Params
    from jaxbp.cli.build import Model
    from jaxbp.cli.config import TrainConfig
    from jaxbp.cli.dataset import Data
    from jaxbp.cli.prepare import Resumed


@dataclasses.dataclass(frozen=True)
class State:
    """Where training starts: ``params``, ``opt_state`` (``None`` for plain SGD), the shuffling
    ``key``, the ``step`` (global, from the run's first), and the run's ``history`` so far (the
    checkpoint's metrics; ``{}`` for a new run)."""

    params: Params
    opt_state: Any
    key: Array
    step: int
    history: dict[str, Any]


def initial_state(cfg: TrainConfig, model: Model, data: Data, resumed: Resumed | None) -> State:
    """The fresh state of ``cfg.seed``, or the resumed checkpoint's, checked against ``model``.

    Raises:
        CheckpointError: one line naming the checkpoint and the field that does not fit.
    """
    init_key, shuffle_key = jax.random.split(jax.random.key(cfg.seed))
    params = model.spec.init(init_key, jnp.dtype(cfg.dtype))
    opt_state = None if model.optimizer is None else model.optimizer.init(params)
    if resumed is None:
        return State(params, opt_state, shuffle_key, 0, {})
    saved = resumed.saved
    params, opt_state = _restore(resumed, model, params, opt_state, data.mean.shape)
    history = saved.metrics
    if history.get("data_sha256") != data.fingerprint:
        history["data_changed_at_epoch"] = saved.epoch
    key = jax.random.wrap_key_data(jnp.asarray(saved.key))
    return State(params, opt_state, key, saved.step, history)


def _restore(
    resumed: Resumed, model: Model, params: Params, opt_state: Any, features: tuple[int, ...]
) -> tuple[Params, Any]:
    """The checkpoint's params and optimizer state in the fresh model's trees, every field checked."""
    path, saved, steps = resumed.path, resumed.saved, model.steps_per_epoch
    checkpoint.check_spec(path, saved, model.spec)
    restored = checkpoint.load(path, params=params, opt_state=opt_state)
    inside = saved.step - saved.epoch * steps
    if not 0 <= inside < steps:
        raise checkpoint.CheckpointError(
            f"{path}: step {saved.step} does not match epoch {saved.epoch} at {steps} steps "
            f"per epoch"
        )
    _check_partial_epoch(path, saved.metrics, inside)
    for name in ("mean", "scale"):
        array = saved.arrays.get(name)
        if array is None or array.shape != features:
            raise checkpoint.CheckpointError(f"{path}: the feature {name} is missing or misshapen")
    if not (saved.arrays["scale"] > 0).all():
        raise checkpoint.CheckpointError(f"{path}: the feature scale holds values <= 0")
    _check_metrics(path, saved)
    return jax.tree.map(jnp.asarray, restored.params), (
        None if opt_state is None else jax.tree.map(jnp.asarray, restored.opt_state)
    )


def _check_metrics(path: Path, saved: checkpoint.Checkpoint) -> None:
    """The per-epoch lists hold a number (or null) per epoch done; the times are numbers >= 0."""
    for key in metrics.EPOCH_KEYS:
        values = saved.metrics.get(key)
        if (
            not isinstance(values, list)
            or len(values) != saved.epoch
            or not all(value is None or _is_number(value) for value in values)
        ):
            raise checkpoint.CheckpointError(
                f"{path}: metrics {key!r} is not a list of {saved.epoch} numbers"
            )
    for key in ("train_seconds", "wall_seconds"):
        value = saved.metrics.get(key, 0.0)
        if not _is_number(value) or not value >= 0:
            raise checkpoint.CheckpointError(f"{path}: metrics {key!r} is not a number >= 0")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_partial_epoch(path: Path, saved: dict[str, Any], inside: int) -> None:
    """A checkpoint inside an epoch carries the loss sum of the epoch's steps done so far (one at
    an epoch's end carries none), and ``first_loss``, if saved, is a finite number."""
    first = saved.get("first_loss")
    if first is not None and (not _is_number(first) or not np.isfinite(first)):
        raise checkpoint.CheckpointError(f"{path}: metrics 'first_loss' is not a finite number")
    partial = saved.get("partial_epoch")
    if inside == 0 and partial is None:
        return
    if (
        inside == 0
        or not isinstance(partial, dict)
        or partial.get("steps") != inside
        or not _is_number(partial.get("loss_sum"))
        or not np.isfinite(partial["loss_sum"])
    ):
        raise checkpoint.CheckpointError(
            f"{path}: metrics 'partial_epoch' does not hold the loss sum of its {inside} steps "
            f"inside the epoch"
        )
