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
import sys
from collections.abc import Callable
from typing import Any

from jaxbp._types import Params

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
