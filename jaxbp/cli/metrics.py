"""Metrics of a run: evaluation on a data set, the metrics JSON, and the loss/accuracy plot.

``evaluate`` is jitted once per (spec, loss, shapes) and returns the batch-mean loss and, for
classification, the fraction of examples whose largest output is the true class, over blocks of
rows of arrays or :class:`jaxbp.data.sources.Rows` views. The JSON and the
PNG are written atomically, so an interrupted run never leaves a half-written file.
"""

from __future__ import annotations

import functools
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.data.sources import Rows
from jaxbp.model.steps import batch_loss, predict
from jaxbp.training import files as _files

if TYPE_CHECKING:
    from jaxbp._types import Array, Model, Params

#: Per-epoch lists kept in ``metrics.json`` (and in every checkpoint, so a resume continues them).
EPOCH_KEYS = ("train_loss", "val_loss", "val_accuracy", "epoch_seconds")


@functools.partial(jax.jit, static_argnames=("spec", "loss"))
def _evaluate(spec: Model, loss: str, params: Params, x: Array, y: Array) -> tuple[Array, Array]:
    value = batch_loss(spec, loss, params, x, y)
    correct = jnp.argmax(predict(spec, params, x), axis=-1) == jnp.argmax(y, axis=-1)
    return value, jnp.mean(correct.astype(jnp.float32))


#: Rows per block of :func:`evaluate`: bounds its memory on a large set.
EVAL_BLOCK_ROWS = 65536


def evaluate(
    spec: Model,
    loss: str,
    params: Params,
    x: Any,
    y: Any,
    *,
    classification: bool,
    block_rows: int = EVAL_BLOCK_ROWS,
) -> tuple[float, float | None]:
    """``(mean loss, accuracy)`` on ``(x, y)``; accuracy is ``None`` for regression.

    ``x``, ``y``: arrays or :class:`jaxbp.data.sources.Rows` views; ``y`` is one-hot for
    classification. The set is evaluated ``block_rows`` rows at a time, so memory stays bounded;
    the result is the mean over blocks weighted by their rows (a set of one block gives the
    block's own values). An empty set gives ``(nan, None)``.
    """
    n = int(x.shape[0])
    if n == 0:
        return float("nan"), None
    losses, correct = 0.0, 0
    for start in range(0, n, block_rows):
        rows = np.arange(start, min(start + block_rows, n))
        value, accuracy = _evaluate(spec, loss, params, _block(x, rows), _block(y, rows))
        if n <= block_rows:
            return float(value), float(accuracy) if classification else None
        losses += float(value) * rows.size
        # the block's float32 accuracy times its rows (far below 2**23) rounds back to the count
        correct += round(float(accuracy) * rows.size)
    return losses / n, correct / n if classification else None


def _block(values: Any, rows: np.ndarray) -> Any:
    if isinstance(values, Rows):
        return values.read(rows)
    return values[int(rows[0]) : int(rows[-1]) + 1]


def epoch_train_loss(step_losses: Any) -> float:
    """An epoch's training loss: the mean of its steps' batch losses (before each update)."""
    return float(np.mean(np.asarray(step_losses, np.float64)))


def write_json(path: str | os.PathLike[str], metrics: dict[str, Any]) -> Path:
    """Write ``metrics`` as indented JSON (NaN written as null), atomically."""
    text = json.dumps(_null_nonfinite(metrics), indent=2, allow_nan=False) + "\n"
    return _files.atomic_write(path, text.encode())


def _null_nonfinite(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _null_nonfinite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_null_nonfinite(item) for item in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def plot_curves(path: str | os.PathLike[str], history: dict[str, list[Any]], title: str) -> Path:
    """A PNG with the loss curves (train, validation) and the validation accuracy per epoch."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    epochs = np.arange(1, len(history["train_loss"]) + 1)
    accuracy = [np.nan if a is None else a for a in history["val_accuracy"]]
    has_accuracy = bool(np.isfinite(np.asarray(accuracy, float)).any())
    figure = Figure(figsize=(10 if has_accuracy else 5.5, 4), layout="constrained")
    axes = figure.subplots(1, 2 if has_accuracy else 1, squeeze=False)[0]
    axes[0].plot(epochs, history["train_loss"], label="train")
    if np.isfinite(np.asarray(history["val_loss"], float)).any():
        axes[0].plot(epochs, history["val_loss"], label="validation")
    axes[0].set(xlabel="epoch", ylabel="loss", yscale="log", title=f"{title}: loss")
    axes[0].legend()
    if has_accuracy:
        axes[1].plot(epochs, accuracy, color="tab:orange")
        axes[1].set(xlabel="epoch", ylabel="accuracy", title=f"{title}: validation accuracy")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return _files.atomic_write(path, buffer.getvalue())
