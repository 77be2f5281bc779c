"""The callback that saves checkpoints between compiled chunks: :class:`Checkpoints`."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from jaxbp.layers.sequential import Sequential
from jaxbp.model.mlp import MLP
from jaxbp.model.updates import SgdState
from jaxbp.training import checkpoint
from jaxbp.training import run_checks as _run_checks

if TYPE_CHECKING:
    from jaxbp._types import Params


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
    config: dict[str, Any] | None = None,
    arrays: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write one checkpoint through :mod:`jaxbp.training.checkpoint`: the single place this module calls it.

    The position (epochs done, steps done in the next epoch) gives the checkpoint's epoch and its
    file name, and, without ``config``, goes into the checkpoint's config as ``"position"``, so a
    run resumes from it with ``fit(..., start_epoch=epoch, start_step=step_in_epoch)``. The
    hand-written SGD's state (its step count, which is ``step``) is saved as none, as ``fit``
    takes an ``opt_state`` only with an optimizer. An MLP or a layer network is saved with the
    params as the checkpoint's spec.

    Args:
        config: the run's settings, saved as the checkpoint's config in place of the position.
        arrays: named arrays saved with the state (e.g. a feature scaling).
    """
    # without a key (data order), zeros stand in for it and config["shuffled"] says so
    key_data = np.zeros(2, np.uint32) if key is None else np.asarray(jax.random.key_data(key))
    if config is None:
        config = {"position": [int(p) for p in position], "shuffled": key is not None}
    state = checkpoint.Checkpoint(
        params=jax.device_get(params),
        opt_state=None if isinstance(opt_state, SgdState) else jax.device_get(opt_state),
        key=key_data,
        epoch=int(position[0]),
        step=int(step),
        config=config,
        metrics=metrics,
        arrays=dict(arrays or {}),
        spec=model if isinstance(model, MLP | Sequential) else None,
    )
    return checkpoint.save(directory, state, keep=keep, step_in_epoch=int(position[1]))


def check_directory(directory: Path, initial: int) -> None:
    """Refuse, before the run, a ``directory`` that is not a folder, and one that holds another
    run's checkpoints past the start when this run starts afresh (``initial`` 0): its files would
    be overwritten by name, or outrank this run's newest and have it pruned."""
    if directory.exists() and not directory.is_dir():
        raise ValueError(
            f"Checkpoints: {directory} is not a folder (a file is there); pass the path of a "
            f"folder, new or empty."
        )
    found = checkpoint.list_checkpoints(directory)
    later = [path for path in found if checkpoint.order_key(path) > (0, 0)]
    if initial == 0 and later:
        raise ValueError(
            f"Checkpoints: {directory} already holds {len(later)} checkpoint(s) of an earlier run "
            f"(newest: {later[-1].name}); a new run would overwrite them by name or have its own "
            f"pruned in their favour. Pass a new folder, or initial=<that run's step> to continue it."
        )


def check_contents(key: Any, config: Any, arrays: Any) -> None:
    """Refuse, before the run, what the first save would fail on: a key that is not one PRNG key,
    a ``config`` that JSON cannot write, ``arrays`` that are not named finite real arrays."""
    _run_checks.check_key("Checkpoints", key)
    if config is not None:
        try:
            json.dumps(config)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"Checkpoints: config must be a dict of JSON values (it is written into every "
                f"checkpoint), but {error}."
            ) from None
    if arrays is None:
        return
    if not isinstance(arrays, dict):
        raise TypeError(f"Checkpoints: arrays must be a dict of named arrays, got {type(arrays).__name__}.")  # fmt: skip
    for name, value in arrays.items():
        array = np.asarray(value)
        if not isinstance(name, str) or array.dtype.kind not in "biuf":
            raise TypeError(
                f"Checkpoints: arrays[{name!r}] must be named by a string and hold real numbers, "
                f"got dtype {array.dtype}."
            )
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ValueError(
                f"Checkpoints: arrays[{name!r}] holds NaN or infinite values; a checkpoint keeps "
                f"only finite state."
            )


class Checkpoints:
    """Save a checkpoint at the first chunk end at or after every multiple of ``every`` steps,
    and, where asked, every ``minutes`` (inside an epoch if need be) and when ``stop()`` asks the
    run to stop (then this callback stops it, after saving).

    After ``fit`` returns early or raises (a callback stopped it, a batch could not be read),
    :meth:`flush` saves the state of the last chunk if it is not saved yet.

    Args:
        directory: where the checkpoint files go (created if missing).
        every: steps between checkpoints.
        model: the model the params belong to (saved with them).
        key: the run's shuffling key, saved so that the run resumes with it (``None``: none).
        keep: how many checkpoint files to keep.
        minutes: also save when this many minutes have passed since the last save (0: never).
        stop: a function asked after each chunk; when it returns true, save and stop the run
            (a signal handler's flag, say).
        initial: steps done before this ``fit`` call (a resumed run), saved or not.
        config: the run's settings, saved as each checkpoint's config (see :func:`save_checkpoint`).
        arrays: named arrays saved in each checkpoint.
        record: ``record(step) -> dict``, the metrics to save at ``step`` (default: the chunk's
            numbers).
        on_save: ``on_save(path, step)``, called after each checkpoint written.

    Attributes:
        saved: the paths written, oldest first.
    """

    __name__ = "Checkpoints"
    metrics_added = ()

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        every: int,
        model: Any,
        key: Any = None,
        keep: int = 3,
        minutes: float = 0.0,
        stop: Callable[[], bool] | None = None,
        initial: int = 0,
        config: dict[str, Any] | None = None,
        arrays: dict[str, np.ndarray] | None = None,
        record: Callable[[int], dict[str, Any]] | None = None,
        on_save: Callable[[Path, int], Any] | None = None,
    ):
        for name, value in (("every", every), ("keep", keep)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Checkpoints: {name} must be an int >= 1, got {value!r}.")
        if isinstance(minutes, bool) or not isinstance(minutes, int | float) or not minutes >= 0:
            raise ValueError(f"Checkpoints: minutes must be a number >= 0, got {minutes!r}.")
        if isinstance(initial, bool) or not isinstance(initial, int) or initial < 0:
            raise ValueError(f"Checkpoints: initial must be an int >= 0, got {initial!r}.")
        if not isinstance(directory, str | os.PathLike):
            raise TypeError(f"Checkpoints: directory must be a path, got {type(directory).__name__} {directory!r:.40}.")  # fmt: skip
        check_directory(Path(directory), initial)
        check_contents(key, config, arrays)
        self.directory, self.every, self.model, self.key, self.keep = (
            Path(directory), every, model, key, keep,
        )  # fmt: skip
        self.minutes, self.stop, self.config, self.arrays = minutes, stop, config, arrays
        self.record, self.on_save = record, on_save
        self.saved: list[Path] = []
        self.last = initial
        self.pending: tuple[int, Params, dict[str, Any]] | None = None
        self.saved_at = time.perf_counter()

    def __call__(self, step: int, params: Params, metrics: dict[str, Any]) -> str | None:
        self.pending = (step, params, metrics)
        stop = self.stop is not None and bool(self.stop())
        due = step // self.every > self.last // self.every
        timed = self.minutes > 0 and time.perf_counter() - self.saved_at >= 60 * self.minutes
        if due or timed or stop:
            self.save(step, params, metrics)
        return "stop" if stop else None

    def save(self, step: int, params: Params, metrics: dict[str, Any]) -> Path:
        """Save now: the params after ``step`` steps, and ``metrics`` as a chunk's (its
        ``"opt_state"``, ``"epoch"`` and ``"step_in_epoch"``)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        numbers = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
        path = save_checkpoint(
            self.directory,
            params,
            metrics.get("opt_state"),
            step=step,
            position=(metrics.get("epoch", 0), metrics.get("step_in_epoch", step)),
            key=self.key,
            keep=self.keep,
            model=self.model,
            metrics=numbers if self.record is None else self.record(step),
            config=self.config,
            arrays=self.arrays,
        )
        self.saved.append(path)
        self.last, self.pending, self.saved_at = step, None, time.perf_counter()
        if self.on_save is not None:
            self.on_save(path, step)
        return path

    def flush(self) -> Path | None:
        """Save the state of the last chunk unless it is saved; the newest path written, if any."""
        if self.pending is not None:
            self.save(*self.pending)
        return self.saved[-1] if self.saved else None
