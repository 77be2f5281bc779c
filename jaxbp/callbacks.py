"""What runs between compiled chunks: user callbacks, early stopping, a progress bar, checkpoints.

A callback is any function ``callback(step, params, metrics)`` called by the chunked ``fit``
after each chunk, with ``step`` the number of training steps done (counted from the run's
first step, epoch 0), ``params`` the parameters after them, and ``metrics`` a dict:

- ``"loss"``: the mean loss of the chunk's steps (a float);
- ``"losses"``: the loss of each of the chunk's steps (a device array of shape ``(steps,)``);
- ``"epoch"``, ``"step_in_epoch"``: the position (when the epoch length is known);
- ``"val_loss"``: the validation loss, on the chunks after which validation ran;
- ``"opt_state"``: the optimizer state after ``step`` steps (for checkpoints).

A callback that returns ``True`` or ``"stop"`` stops training after this chunk; ``fit`` then
returns these very parameters and ``history["stop"]`` names the callback. Callbacks run in
order, so one that adds to ``metrics`` (validation does, first) is seen by the later ones.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxbp import checkpoint
from jaxbp._types import Params
from jaxbp.mlp import MLP

Callback = Callable[[int, Params, dict[str, Any]], Any]


def wants_stop(result: Any) -> bool:
    """Whether a callback's return value asks to stop: ``True`` or ``"stop"``."""
    return result is True or (isinstance(result, str) and result == "stop")


def callback_name(callback: Any) -> str:
    return getattr(callback, "__name__", type(callback).__name__)


class EarlyStopping:
    """Stop when ``metrics[metric]`` has not improved for ``patience`` evaluations in a row.

    Keeps the best value, the step it came at and those parameters (``best_params``), so a run
    can go back to them: ``params = stopper.best_params``.

    Args:
        patience: evaluations without improvement that are tolerated; the next one stops.
        metric: the metrics key to watch (default ``"val_loss"``); chunks without it are skipped.
        min_delta: an improvement must beat the best by more than this.
        mode: ``"min"`` (a loss) or ``"max"`` (an accuracy).
    """

    __name__ = "EarlyStopping"

    def __init__(
        self, patience: int, *, metric: str = "val_loss", min_delta: float = 0.0, mode: str = "min"
    ):
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be an int >= 0, got {patience!r}.")
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max', got {mode!r}.")
        if not (isinstance(min_delta, int | float) and min_delta >= 0):
            raise ValueError(f"EarlyStopping: min_delta must be a number >= 0, got {min_delta!r}.")
        self.patience, self.metric, self.min_delta, self.mode = patience, metric, min_delta, mode
        self.best = math.inf if mode == "min" else -math.inf
        self.best_step: int | None = None
        self.best_params: Params | None = None
        self.waited = 0

    def __call__(self, step: int, params: Params, metrics: dict[str, Any]) -> str | None:
        if self.metric not in metrics:
            return None
        value = float(metrics[self.metric])
        sign = 1.0 if self.mode == "min" else -1.0
        if sign * (self.best - value) > self.min_delta:
            self.best, self.best_step, self.best_params, self.waited = value, step, params, 0
            return None
        self.waited += 1
        return "stop" if self.waited > self.patience else None


class ProgressBar:
    """A tqdm bar over the run's steps with the latest losses; off when stderr is not a terminal
    (or tqdm is not installed), so logs and pipes stay clean.

    Args:
        total: the run's last step (``None`` when unknown, e.g. an iterable without a length).
        initial: the steps already done.
    """

    __name__ = "ProgressBar"

    def __init__(self, total: int | None, initial: int = 0):
        self.bar: Any = None
        self.last = initial
        if not sys.stderr.isatty():
            return
        try:
            from tqdm import tqdm
        except ModuleNotFoundError:
            return
        self.bar = tqdm(total=total, initial=initial, unit="step", desc="fit", dynamic_ncols=True)

    def __call__(self, step: int, params: Params, metrics: dict[str, Any]) -> None:
        if self.bar is None:
            return
        fields = {name: f"{metrics[name]:.4g}" for name in ("loss", "val_loss") if name in metrics}
        self.bar.set_postfix(fields, refresh=False)
        self.bar.update(step - self.last)
        self.last = step

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def save_checkpoint(
    directory: str | os.PathLike[str],
    params: Params,
    opt_state: Any,
    *,
    step: int,
    position: tuple[int, int],
    key: Any,
    keep: int,
    model: Any,
    metrics: dict[str, Any],
) -> Path:
    """Write one checkpoint through :mod:`jaxbp.checkpoint`: the single place this module calls it.

    The position (epochs done, steps done in the next epoch) goes into the checkpoint's config as
    ``"position"``, so a run resumes from it with ``fit(..., start_epoch=epoch,
    start_step=step_in_epoch)``.
    """
    # without a key (data order), zeros stand in for it and config["shuffled"] says so
    key_data = np.zeros(2, np.uint32) if key is None else np.asarray(jax.random.key_data(key))
    state = checkpoint.Checkpoint(
        params=jax.device_get(params),
        opt_state=jax.device_get(opt_state),
        key=key_data,
        epoch=int(position[0]),
        step=int(step),
        config={"position": [int(p) for p in position], "shuffled": key is not None},
        metrics=metrics,
        spec=model if isinstance(model, MLP) else None,
    )
    return checkpoint.save(directory, state, keep=keep, step_in_epoch=int(position[1]))


class Checkpoints:
    """Save a checkpoint at the first chunk end at or after every multiple of ``every`` steps.

    Args:
        directory: where the checkpoint files go (created if missing).
        every: steps between checkpoints.
        model: the model the params belong to (saved with them).
        key: the run's shuffling key, saved so that the run resumes with it (``None``: none).
        keep: how many checkpoint files to keep.

    Attributes:
        saved: the paths written, oldest first.
    """

    __name__ = "Checkpoints"

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        every: int,
        model: Any,
        key: Any = None,
        keep: int = 3,
    ):
        for name, value in (("every", every), ("keep", keep)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Checkpoints: {name} must be an int >= 1, got {value!r}.")
        self.directory, self.every, self.model, self.key, self.keep = (
            Path(directory), every, model, key, keep,
        )  # fmt: skip
        self.saved: list[Path] = []
        self.last = 0

    def __call__(self, step: int, params: Params, metrics: dict[str, Any]) -> None:
        if step // self.every <= self.last // self.every:
            return
        self.last = step
        self.directory.mkdir(parents=True, exist_ok=True)
        numbers = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
        position = (metrics.get("epoch", 0), metrics.get("step_in_epoch", step))
        self.saved.append(
            save_checkpoint(
                self.directory,
                params,
                metrics.get("opt_state"),
                step=step,
                position=position,
                key=self.key,
                keep=self.keep,
                model=self.model,
                metrics=numbers,
            )
        )
