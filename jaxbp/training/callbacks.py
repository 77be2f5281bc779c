"""What runs between compiled chunks: user callbacks, validation, early stopping, a progress
bar (or plain lines), checkpoints.

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

``fit`` checks its callbacks before the first step (:func:`check_callbacks`): each must be a
function of ``(step, params, metrics)``, and an :class:`EarlyStopping` must watch a metric the run
computes. A callback says which metrics it adds in a ``metrics_added`` attribute (a tuple of
names; jaxbp's own callbacks that add none say ``()``); one without it may add any, so an
:class:`EarlyStopping` after it is checked as the run goes instead (:func:`unwatched`).
"""

from __future__ import annotations

import inspect
import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TextIO

import numpy as np

from jaxbp._types import Params

Callback = Callable[[int, Params, dict[str, Any]], Any]


def wants_stop(result: Any) -> bool:
    """Whether a callback's return value asks to stop: ``True`` (also a NumPy or JAX boolean
    scalar, as a comparison of metrics gives) or ``"stop"``."""
    if isinstance(result, str):
        return result == "stop"
    if result is True or isinstance(result, np.bool_):
        return bool(result)
    dtype = getattr(result, "dtype", None)
    return dtype == np.bool_ and getattr(result, "shape", None) == () and bool(result)


def callback_name(callback: Any) -> str:
    return getattr(callback, "__name__", type(callback).__name__)


def as_callback_list(where: str, callbacks: Any) -> tuple[Callback, ...]:
    """``callbacks`` as a tuple, each checked to be a function of ``(step, params, metrics)``
    (``None``: none)."""
    if callbacks is None:
        return ()
    if isinstance(callbacks, str | bytes) or callable(callbacks) or not isinstance(callbacks, Iterable):  # fmt: skip
        one = "one callback, " if callable(callbacks) else ""
        raise TypeError(
            f"{where}: callbacks must be a list of callbacks, got {one}{type(callbacks).__name__}"
            f" {callbacks!r:.40}; pass a list, e.g. callbacks=[EarlyStopping(3)]."
        )
    checked = tuple(callbacks)
    for index, callback in enumerate(checked):
        problem = _not_a_callback(callback)
        if problem:
            raise TypeError(
                f"{where}: callbacks[{index}] is {type(callback).__name__} {callback!r:.60}, "
                f"{problem}; a callback is a function callback(step, params, metrics) (return "
                f"True or 'stop' to stop the run), e.g. jaxbp.callbacks.EarlyStopping(3)."
            )
    return checked


def _not_a_callback(callback: Any) -> str | None:
    """Why ``callback`` cannot be called as ``callback(step, params, metrics)``, or ``None``."""
    if not callable(callback):
        return "not callable"
    if isinstance(callback, type):
        return f"a class, not a callback made from it; pass {callback.__name__}(...)"
    try:
        signature = inspect.signature(callback)
    except (TypeError, ValueError):  # a builtin without a signature: trust it
        return None
    try:
        signature.bind(0, None, {})
    except TypeError:
        return f"whose signature {signature} does not take (step, params, metrics)"
    return None


def check_metrics(where: str, callbacks: tuple[Callback, ...], metrics: Iterable[str]) -> None:
    """Refuse an :class:`EarlyStopping` whose metric no chunk of the run will have: not one of
    ``metrics`` (what ``fit`` puts in every chunk's, or in some), nor added by a callback before
    it (its ``metrics_added``); after a callback that does not say what it adds, it is checked
    at the run's end instead (:func:`unwatched`)."""
    known, certain = set(metrics), True
    for index, callback in enumerate(callbacks):
        if isinstance(callback, EarlyStopping) and certain and callback.metric not in known:
            computed = ", ".join(repr(name) for name in sorted(known))
            raise ValueError(
                f"{where}: callbacks[{index}] EarlyStopping watches metric {callback.metric!r}, "
                f"which this run never computes (its metrics: {computed}); pass validation="
                f"(x_val, y_val) for 'val_loss', put a Validation callback that adds the metric "
                f"before it, or pick one of those with EarlyStopping(..., metric=...)."
            )
        added = getattr(callback, "metrics_added", None)
        if added is None:
            certain = False
        else:
            known.update(added)


def unwatched(
    callbacks: tuple[Callback, ...], seen: Iterable[str]
) -> list[tuple[int, EarlyStopping]]:
    """The :class:`EarlyStopping` callbacks whose metric is not among ``seen``, the metric names
    of a whole run's chunks: those never acted."""
    names = set(seen)
    return [
        (index, callback)
        for index, callback in enumerate(callbacks)
        if isinstance(callback, EarlyStopping) and callback.metric not in names
    ]


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
    metrics_added = ()

    def __init__(
        self, patience: int, *, metric: str = "val_loss", min_delta: float = 0.0, mode: str = "min"
    ):
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be an int >= 0, got {patience!r}.")
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max', got {mode!r}.")
        if not (isinstance(min_delta, int | float) and min_delta >= 0):
            raise ValueError(f"EarlyStopping: min_delta must be a number >= 0, got {min_delta!r}.")
        if not isinstance(metric, str):
            raise TypeError(f"EarlyStopping: metric must be the name of a metric, such as 'val_loss', got {metric!r:.40}.")  # fmt: skip
        self.patience, self.metric, self.min_delta, self.mode = patience, metric, min_delta, mode
        self.best = math.inf if mode == "min" else -math.inf
        self.best_step: int | None = None
        self.best_params: Params | None = None
        self.waited = 0

    def __call__(self, step: int, params: Params, metrics: dict[str, Any]) -> str | None:
        if self.metric not in metrics:
            return None
        value = metrics[self.metric]
        if not hasattr(value, "__float__") or np.ndim(value) != 0:  # None, a string, an array
            raise TypeError(
                f"EarlyStopping: metrics[{self.metric!r}] is {type(value).__name__} {value!r:.40} "
                f"after step {step}, not a number; watch a metric that every evaluation gives as "
                f"a number (e.g. metric='val_loss')."
            )
        value = float(value)
        sign = 1.0 if self.mode == "min" else -1.0
        if sign * (self.best - value) > self.min_delta:
            self.best, self.best_step, self.best_params, self.waited = value, step, params, 0
            return None
        self.waited += 1
        return "stop" if self.waited > self.patience else None


class Validation:
    """Evaluate the parameters every ``every`` steps into the chunk's ``metrics``, so the callbacks
    after this one (:class:`EarlyStopping`, :class:`ProgressBar`, :class:`~jaxbp.callbacks.Checkpoints`)
    see the values.

    For an evaluation of one's own (more than ``fit``'s ``validation=`` loss: an accuracy, or a
    set read block by block); pass ``fit(..., validate_every=every)`` so chunks end there.

    Args:
        evaluate: ``evaluate(params) -> dict`` of named numbers, e.g. ``{"val_loss": 0.31,
            "val_accuracy": 0.92}``.
        every: steps between evaluations: chunk ends at a multiple of ``every`` are evaluated.
        total: the run's last step, evaluated too (``None``: multiples of ``every`` only).
        metrics_added: the names ``evaluate`` returns, if known, so that ``fit`` can check an
            :class:`EarlyStopping` after this one before the run (``None``: unknown).
    """

    __name__ = "Validation"

    def __init__(
        self,
        evaluate: Callable[[Params], dict[str, Any]],
        every: int,
        *,
        total: int | None = None,
        metrics_added: tuple[str, ...] | None = None,
    ):
        if not callable(evaluate):
            raise TypeError(f"Validation: evaluate must be a function of the params, got {evaluate!r}.")  # fmt: skip
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"Validation: every must be an int >= 1, got {every!r}.")
        if metrics_added is not None and (
            isinstance(metrics_added, str)
            or not all(isinstance(name, str) for name in metrics_added)
        ):
            raise TypeError(
                f"Validation: metrics_added must be a tuple of metric names, such as "
                f"('val_loss',), got {metrics_added!r:.60}."
            )
        self.evaluate, self.every, self.total = evaluate, every, total
        self.metrics_added = None if metrics_added is None else tuple(metrics_added)

    def __call__(self, step: int, params: Params, metrics: dict[str, Any]) -> None:
        if step % self.every == 0 or step == self.total:
            values = self.evaluate(params)
            if not isinstance(values, Mapping):
                raise TypeError(
                    f"Validation: evaluate(params) returned {type(values).__name__} "
                    f"{values!r:.40} after step {step}; it must return a dict of named numbers, "
                    f"e.g. {{'val_loss': 0.31}}."
                )
            metrics.update(values)


#: Without a terminal, the longest time between two lines of a running epoch (``ProgressBar``).
LINE_SECONDS = 30.0


def check_progress_arguments(
    total: Any,
    initial: Any,
    steps_per_epoch: Any,
    lines: Any,
    line_seconds: Any,
    number_format: Any,
    examples_per_step: Any,
) -> None:
    """Refuse, before the run, what :class:`ProgressBar` would fail on or show wrongly after the
    first chunk: counts that are not ints in range, a ``lines`` without ``write``, a bad format."""
    for name, value, low in (
        ("total", total, 0),
        ("initial", initial, 0),
        ("steps_per_epoch", steps_per_epoch, 1),
        ("examples_per_step", examples_per_step, 1),
    ):
        if value is None and name != "initial":
            continue
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            none = "" if name == "initial" else " (or None)"
            raise ValueError(f"ProgressBar: {name} must be an int >= {low}{none}, got {value!r}.")
    if lines is not None and not callable(getattr(lines, "write", None)):
        raise TypeError(
            f"ProgressBar: lines must be a text stream with write() (sys.stdout, an open file), "
            f"got {type(lines).__name__} {lines!r:.40}."
        )
    if line_seconds is not None and (
        isinstance(line_seconds, bool)
        or not isinstance(line_seconds, int | float)
        or not line_seconds >= 0
    ):
        raise ValueError(f"ProgressBar: line_seconds must be a number >= 0, got {line_seconds!r}.")  # fmt: skip
    try:
        format(1.0, number_format)
    except (TypeError, ValueError):
        raise ValueError(
            f"ProgressBar: number_format must be a format spec for floats, such as '.4g', "
            f"got {number_format!r}."
        ) from None


class ProgressBar:
    """A tqdm bar over the run's steps with the latest losses; off when stderr is not a terminal
    (or tqdm is not installed), so logs and pipes stay clean, or plain lines there instead.

    Shown: the epoch (with ``steps_per_epoch``), ``loss`` (``metrics["train_loss"]``, the epoch's
    loss, where a callback before this one put it, else the chunk's mean loss), and where present
    ``val_loss`` and ``val_acc`` (``metrics["val_accuracy"]``).

    Args:
        total: the run's last step (``None`` when unknown, e.g. an iterable without a length).
        initial: the steps already done.
        steps_per_epoch: the epoch's length (``None``: unknown; no epoch shown, no lines).
        lines: where to print plain lines when there is no bar (``None``: nowhere): one at each
            epoch's end, ``epoch  3/40  loss 0.1234  val_loss 0.2345  val_acc 0.9274``, and inside
            a long epoch ``epoch  3/40  step 500/1200  loss 0.1234`` at most every
            ``line_seconds`` (default :data:`LINE_SECONDS`).
        number_format: the format of the numbers shown.
        desc: the bar's label.
        examples_per_step: with it, the lines and the bar also show the throughput since the
            previous line (or the start) and the time left at that rate:
            ``... val_acc 0.9274  1,234 ex/s  left 0:01:05`` (``left`` only with ``total``).
    """

    __name__ = "ProgressBar"
    metrics_added = ()

    def __init__(
        self,
        total: int | None,
        initial: int = 0,
        *,
        steps_per_epoch: int | None = None,
        lines: TextIO | None = None,
        line_seconds: float | None = None,
        number_format: str = ".4g",
        desc: str = "fit",
        examples_per_step: int | None = None,
    ):
        check_progress_arguments(total, initial, steps_per_epoch, lines, line_seconds, number_format, examples_per_step)  # fmt: skip
        self.bar: Any = None
        self.last = initial
        self.total, self.examples_per_step = total, examples_per_step
        # (step, time) the throughput counts from
        self.rate_from = (initial, time.monotonic() if examples_per_step else 0.0)
        self.steps_per_epoch, self.format = steps_per_epoch, number_format
        self.epochs = None if total is None or not steps_per_epoch else -(-total // steps_per_epoch)  # fmt: skip
        self.lines = lines if steps_per_epoch else None
        self.line_seconds = LINE_SECONDS if line_seconds is None else line_seconds
        self.line_time = time.monotonic()
        if not sys.stderr.isatty():
            return
        try:
            from tqdm import tqdm
        except ModuleNotFoundError:
            return
        self.bar = tqdm(total=total, initial=initial, unit="step", desc=desc, dynamic_ncols=True)
        self.lines = None

    def __call__(self, step: int, params: Params, metrics: dict[str, Any]) -> None:
        fields = self._fields(metrics)
        epoch, inside = divmod(step, self.steps_per_epoch) if self.steps_per_epoch else (0, 0)
        shown = epoch + (inside > 0)  # the epoch under way, counted from 1
        if self.bar is not None:
            where = {"epoch": shown} if self.steps_per_epoch else {}
            speed = self._speed(step)
            self.bar.set_postfix({**where, **fields, **speed}, refresh=False)
            self.bar.update(step - self.last)
        elif self.lines is not None:
            self._line(shown, inside, fields, step)
        self.last = step

    def _speed(self, step: int) -> dict[str, str]:
        """``{"ex/s": ..., "left": ...}`` since :attr:`rate_from`, which then moves to now."""
        if not self.examples_per_step:
            return {}
        since, start = self.rate_from
        now = time.monotonic()
        self.rate_from = (step, now)
        if step <= since or now <= start:
            return {}
        steps_per_second = (step - since) / (now - start)
        speed = {"ex/s": f"{steps_per_second * self.examples_per_step:,.0f}"}
        if self.total is not None:
            seconds = round(max(0, self.total - step) / steps_per_second)
            speed["left"] = f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        return speed

    def _fields(self, metrics: dict[str, Any]) -> dict[str, str]:
        values = {
            "loss": metrics.get("train_loss", metrics.get("loss")),
            "val_loss": metrics.get("val_loss"),
            "val_acc": metrics.get("val_accuracy"),
        }
        return {name: format(value, self.format) for name, value in values.items() if value is not None}  # fmt: skip

    def _line(self, epoch: int, inside: int, fields: dict[str, str], step: int) -> None:
        if inside and time.monotonic() - self.line_time < self.line_seconds:
            return
        if inside:
            fields = {"step": f"{inside}/{self.steps_per_epoch}", "loss": fields["loss"]}
        speed = self._speed(step)
        text = "  ".join(f"{name} {value}" for name, value in fields.items())
        if "ex/s" in speed:
            text += f"  {speed['ex/s']} ex/s" + (
                f"  left {speed['left']}" if "left" in speed else ""
            )
        width = len(str(self.epochs))
        print(f"epoch {epoch:>{width}}/{self.epochs}  {text}", file=self.lines, flush=True)
        self.line_time = time.monotonic()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
