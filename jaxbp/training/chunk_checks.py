"""The checks and the plan of a chunked training run (:mod:`jaxbp.training.chunked`), done before compiling.

The plan counts steps globally from epoch 0: where the run starts (``start_epoch``,
``start_step``) and ends, and the sample batch whose shapes the model is checked with. The checks
refuse what the whole-run ``fit`` refuses, with the same messages: a bad ``reference_loss``, NaN
in in-memory data, a validation set that does not fit the model, a learning rate or optimizer
state that does not fit.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jax.numpy as jnp
import numpy as np
import optax

from jaxbp.data.sources import ArraySource, IterableSource, Position, Rows
from jaxbp.model import checks as _checks
from jaxbp.model.steps import check_batch
from jaxbp.model.updates import sgd_transformation
from jaxbp.training import run_checks as _run_checks

if TYPE_CHECKING:
    from jaxbp._types import Array, Loss, Model, Params


class Plan:
    """The run's shape in global steps (counted from epoch 0): where it starts, where it ends."""

    def __init__(
        self,
        sample: tuple[Any, Any],
        steps_per_epoch: int | None,
        first: int,
        total: int | None,
        global_batch: int,
    ):
        self.sample, self.steps_per_epoch = sample, steps_per_epoch
        self.first, self.total, self.global_batch = first, total, global_batch

    @property
    def last_epoch_steps(self) -> int | None:
        return None if self.total is None else self.total - self.first

    def position(self, step: int) -> Position | None:
        if not self.steps_per_epoch:
            return None
        return Position(*divmod(step, self.steps_per_epoch))


def plan_run(
    where: str,
    source: Any,
    epochs: int,
    batch_size: int | None,
    key: Any,
    start_epoch: int,
    start_step: int,
) -> Plan:
    if isinstance(source, IterableSource):
        sample = source.sample()
        rows = int(sample[0].shape[0]) if sample[0].ndim else 0
        if batch_size is not None and batch_size != rows:
            raise ValueError(
                f"{where}: batch_size is {batch_size} but the iterable's first batch has {rows} "
                f"examples; pass batch_size=None (the loader sets the batch size)."
            )
        if key is not None or start_epoch:
            raise ValueError(
                f"{where}: with an iterable of batches the loader owns the order and its "
                f"position; pass key=None and start_epoch=0 (start_step sets the step count)."
            )
        length = len(source.batches) if hasattr(source.batches, "__len__") else None  # type: ignore[arg-type]
        total = None if length is None else start_step + epochs * length
        return Plan(sample, length, int(start_step), total, rows)
    steps = _run_checks.batches_per_epoch(where, source.n, batch_size)
    if start_step >= steps:
        raise ValueError(
            f"{where}: start_step {start_step} is not inside an epoch of {steps} steps; pass "
            f"0 <= start_step < {steps} (or count whole epochs in start_epoch)."
        )
    _run_checks.check_step_count(where, epochs, int(start_epoch), steps)
    first = int(start_epoch) * steps + int(start_step)
    rows = source.n if batch_size is None else batch_size
    sample = source.sample(min(rows, 64) if batch_size is None else rows)
    return Plan(sample, steps, first, (int(start_epoch) + epochs) * steps, rows)


def check_reference(where: str, reference_loss: Any) -> np.ndarray:
    if reference_loss is None:
        return np.float32(np.nan)
    if isinstance(reference_loss, bool) or not np.isfinite(reference_loss):
        raise ValueError(
            f"{where}: reference_loss must be a finite number (a run's first loss), "
            f"got {reference_loss!r}."
        )
    return np.float32(reference_loss)


#: Rows per block of the finite-data check of in-memory arrays (bounds its temporary memory).
_FINITE_BLOCK_ROWS = 65536


def check_finite_in_memory(where: str, source: ArraySource) -> None:
    """Refuse NaN or infinity in in-memory arrays before training, block by block; a memmap's
    or a :class:`~jaxbp.data.sources.Rows` view's batches are checked as they are read instead (a scan
    first would read the file twice)."""
    for name, array in (("x", source.x), ("y", source.y)):
        if not isinstance(array, np.ndarray) or isinstance(array, np.memmap):
            continue
        for start in range(0, array.shape[0], _FINITE_BLOCK_ROWS):
            block = array[start : start + _FINITE_BLOCK_ROWS]
            _run_checks.check_finite_data(where, name, block)


def check_validation(
    where: str, model: Model, loss: Loss, params: Params, validation: Any
) -> tuple[Array, Array]:
    if not isinstance(validation, tuple | list) or len(validation) != 2:
        raise TypeError(
            f"{where}: validation must be a pair (x_val, y_val), got {type(validation).__name__}."
        )
    # a Rows view (or a .npy path) of a validation set is read whole: it is evaluated in one go
    pair = [_whole(where, value) for value in validation]
    check_batch(f"{where} (validation)", model, loss, params, *pair)
    return jnp.asarray(pair[0]), jnp.asarray(pair[1])


def _whole(where: str, value: Any) -> Any:
    if isinstance(value, Rows):
        return value.read(np.arange(len(value)))
    if isinstance(value, str | os.PathLike):
        try:
            return np.load(value, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as error:
            raise ValueError(f"{where}: cannot open the validation file {str(value)!r} ({error}).") from None  # fmt: skip
    return value


def update_rule_start(
    where: str,
    params: Params,
    lr: Any,
    optimizer: optax.GradientTransformation | None,
    opt_state: Any,
    first: int,
    total: int | None,
    steps: int | None,
) -> tuple[Any, np.ndarray, Callable[[Array], Array] | None]:
    """The update rule's starting state, the traced learning rate and the schedule, checked."""
    dtype = _run_checks.float_dtype(params)
    if optimizer is None:
        if lr is None:
            raise ValueError(f"{where}: pass lr (a number or an optax schedule), or an optimizer.")
        _checks.check_learning_rate(where, lr)
        if steps is not None:
            _run_checks.check_learning_rate_for_run(where, lr, dtype, first, steps)
        schedule = lr if callable(lr) else None
        lr_array = np.asarray(0.0 if schedule else lr, dtype)
        state = sgd_transformation(lr_array).init(params)  # counts steps from the run's start
        return state._replace(steps=jnp.asarray(first, jnp.int32)), lr_array, schedule
    _checks.check_optimizer(where, optimizer)
    if lr is not None:
        raise ValueError(
            f"{where}: an optimizer carries its own learning rate; pass lr=None, "
            f"e.g. optimizer=optax.sgd(0.1) or optax.sgd(optax.cosine_decay_schedule(...))."
        )
    if opt_state is None:
        opt_state = optimizer.init(params)
    else:
        _checks.check_opt_state(where, optimizer, params, opt_state)
    return opt_state, np.asarray(0.0, dtype), None
