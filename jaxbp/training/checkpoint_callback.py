"""The callback that saves checkpoints between compiled chunks: :class:`Checkpoints`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from jaxbp.model.mlp import MLP
from jaxbp.training import checkpoint

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
) -> Path:
    """Write one checkpoint through :mod:`jaxbp.training.checkpoint`: the single place this module calls it.

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
