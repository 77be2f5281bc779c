"""What ``jaxbp train`` records while it trains: the per-epoch metrics and the summary of
``metrics.json``, kept by two of ``fit``'s callbacks.

:meth:`RunLog.check` runs first after each chunk: it notes the run's first loss, stops the run on
what the in-program guard does not see (parameters that an update made non-finite; the blow-up
rule with ``--debug-nans``), and holds the state that a checkpoint saves. :meth:`RunLog.record`
runs after validation (:class:`jaxbp.callbacks.Validation`): at each epoch's end it appends the
epoch's training loss (the mean of its steps' losses), validation loss and accuracy and time to
the history, and puts the training loss into the chunk's metrics for the progress display.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxbp.cli import metrics
from jaxbp.cli import model as train_model
from jaxbp.training import divergence
from jaxbp.training import run_checks as _run_checks
from jaxbp.training.callbacks import EarlyStopping

if TYPE_CHECKING:
    from jaxbp.cli.prepare import Prepared


class RunLog:
    """A run's record as of the last chunk: ``history`` (per-epoch lists, :data:`metrics.EPOCH_KEYS`),
    ``summary`` (the rest of ``metrics.json``), ``params`` and ``step``, and ``diverged`` (a
    report, or ``None``)."""

    def __init__(self, run: Prepared) -> None:
        self.steps_per_epoch, self.debug_nans = run.steps_per_epoch, run.options.debug_nans
        saved, data = run.state.history, run.data
        self.history = {key: list(saved.get(key, [])) for key in metrics.EPOCH_KEYS}
        self.summary: dict[str, Any] = {
            "data": data.name,
            "data_sha256": saved.get("data_sha256", data.fingerprint),
            "examples": {
                "train": len(data.train[0]),
                "val": len(data.val[0]),
                "test": len(data.test[0]),
            },
            "model": train_model.model_name(run.model.spec, run.config),
            "config": run.config.to_json(),
            "train_seconds": float(saved.get("train_seconds", 0.0)),
        }
        if data.columns:
            self.summary["columns"] = list(data.columns)
        if data.class_names is not None:
            self.summary["class_names"] = list(data.class_names)
        self.loss_factor = data.loss_factor
        for key in ("data_changed_at_epoch", "first_loss"):
            if key in saved:
                self.summary[key] = saved[key]
        self.params, self.step = run.state.params, run.state.step
        self.epoch_losses: list[np.ndarray] = []  # this session's steps of the current epoch
        partial = saved.get("partial_epoch", {"steps": 0, "loss_sum": 0.0})
        self.epoch_loss_sum = float(partial["loss_sum"])
        self.diverged: dict[str, Any] | None = None
        self.session_start = self.epoch_start = self.chunk_end = time.perf_counter()
        self.wall_before = float(saved.get("wall_seconds", 0.0))

    @property
    def first_loss(self) -> float | None:
        """The run's first loss, which the blow-up rule compares with (``None`` before step 0)."""
        value = self.summary.get("first_loss")
        if value is None and self.history["train_loss"]:
            value = self.history["train_loss"][0]  # a run saved before first_loss was kept
        return float(value) if value is not None and np.isfinite(value) else None

    def check(self, step: int, params: Any, chunk: dict[str, Any]) -> str | None:
        """Callback, first: the first loss, divergence, and the state as of ``step``."""
        losses = np.asarray(chunk["losses"], np.float64)
        # the chunk's end: its losses are ready; later device work (the finite check,
        # validation) waits for the chunk dispatched after it, so the clock is read now
        self.chunk_end = time.perf_counter()
        if "first_loss" not in self.summary and self.step == 0 and losses.size:
            self.summary["first_loss"] = float(losses[0])
        if self.debug_nans and self.first_loss is not None:
            blown = divergence.blowup(losses, self.first_loss, self.step)
            if blown is not None:
                self.diverged = divergence.report(blown[0], self.steps_per_epoch, blown[1], [])
                return "stop"
        if not _run_checks.all_finite(params):  # the chunk's last update overflowed
            reason = divergence.NONFINITE_PARAMS
            self.diverged = divergence.report(step - 1, self.steps_per_epoch, reason, [])
            return "stop"
        self.params, self.step = params, step
        self.epoch_loss_sum += float(np.sum(losses))
        self.epoch_losses.append(losses)
        return None

    def record(self, step: int, params: Any, chunk: dict[str, Any]) -> None:
        """Callback, after validation: at an epoch's end, the epoch's metrics into the history."""
        if step % self.steps_per_epoch:
            return
        losses = np.concatenate(self.epoch_losses or [np.zeros(0)])
        if losses.size == self.steps_per_epoch:  # the whole epoch ran in this session
            train_loss = metrics.epoch_train_loss(losses)
        else:  # resumed inside it: the steps before come as a sum
            train_loss = self.epoch_loss_sum / self.steps_per_epoch
        train_loss *= self.loss_factor  # in the targets' own units
        seconds = self.chunk_end - self.epoch_start  # from the previous epoch's end to this one's
        self.summary["train_seconds"] += seconds
        values = (train_loss, chunk["val_loss"], chunk["val_accuracy"], seconds)
        for key, value in zip(metrics.EPOCH_KEYS, values, strict=True):
            self.history[key].append(value)
        self.epoch_losses, self.epoch_loss_sum = [], 0.0
        self.epoch_start = self.chunk_end
        chunk["train_loss"] = train_loss

    def saved_metrics(self, step: int) -> dict[str, Any]:
        """The metrics a checkpoint at ``step`` (this log's step) holds."""
        self.summary["wall_seconds"] = self.session_seconds() + self.wall_before
        inside = step % self.steps_per_epoch
        extra = {"partial_epoch": {"steps": inside, "loss_sum": self.epoch_loss_sum}} if inside else {}  # fmt: skip
        return {**self.summary, **self.history, **extra}

    def write_json(self, path: Path, step: int) -> Path:
        """``metrics.json`` as of ``step``, next to the checkpoint ``path`` just written."""
        done = {"epochs_done": step // self.steps_per_epoch, "steps_done": step}
        return metrics.write_json(path.parent / "metrics.json", {**self.summary, **done, **self.history})  # fmt: skip

    def session_seconds(self) -> float:
        return time.perf_counter() - self.session_start

    def best_val_loss(self) -> float:
        finite = [v for v in self.history["val_loss"] if v is not None and np.isfinite(v)]
        return min(finite) if finite else float("nan")

    def early_stopping(self, patience: int) -> EarlyStopping:
        """``--patience``: stop after ``patience`` epochs without a better validation loss,
        counting the epochs of the run before a resume."""
        stopper = EarlyStopping(patience - 1, metric="val_loss")
        for epoch, value in enumerate(self.history["val_loss"], start=1):
            if value is not None:
                stopper(epoch * self.steps_per_epoch, self.params, {"val_loss": value})
        return stopper
