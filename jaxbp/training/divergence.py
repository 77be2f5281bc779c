"""Divergence of a ``jaxbp train`` run: what counts, where it happened, and the last finite params.

A run diverged at step ``s`` (counted from the run's first step) when

- ``jaxbp.fit``'s in-program guard stopped it there (a non-finite loss or gradient, or a loss
  above :data:`BLOWUP_FACTOR` times the run's first one): :func:`from_guard`, the one place that
  reads the guard's history keys;
- the update of step ``s`` made the parameters non-finite (an overflowing update: its own loss
  and gradient were finite): seen by the guard at step ``s + 1``, or by the check after a chunk
  (:func:`jaxbp.training.run_checks.all_finite`) when ``s`` was the chunk's last step;
- with ``--debug-nans`` (the guard off, JAX raises at the first NaN), a finite loss above
  :data:`BLOWUP_FACTOR` times the first: :func:`blowup`, the host's copy of the guard's rule.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from jaxbp.training import checkpoint_format
from jaxbp.training import files as _files
from jaxbp.training.guard import BLOWUP_FACTOR

NONFINITE_PARAMS = "the parameters became non-finite"


def report(step: int, steps_per_epoch: int, reason: str, where: list[str]) -> dict[str, Any]:
    """What ``metrics.json`` records under ``diverged``: the step, its epoch (from 1), why, where."""
    return {"step": step, "epoch": step // steps_per_epoch + 1, "reason": reason, "where": where}


def from_guard(
    fit_history: dict[str, Any], steps_per_epoch: int, params_finite: bool
) -> dict[str, Any] | None:
    """The guard's stop, if it stopped the run; ``params_finite``: whether the params it kept
    (those before its stop step) are finite; if not, the update before that step overflowed."""
    bad_step = int(np.asarray(fit_history.get("stop_step", -1)))
    if bad_step < 0:
        return None
    if not params_finite:
        return report(bad_step - 1, steps_per_epoch, NONFINITE_PARAMS, [])
    where = [f"params{path}" for path in fit_history.get("nonfinite_paths") or []]
    reason = (
        f"the loss rose over {BLOWUP_FACTOR:.0e} times its start"
        if fit_history.get("stop_reason") == "blowup"
        else "non-finite loss or gradient"
    )
    places = f" in {', '.join(where)}" if where else ""
    return report(bad_step, steps_per_epoch, f"{reason}{places}", where)


def blowup(losses: np.ndarray, first_loss: float, first_step: int) -> tuple[int, str] | None:
    """The first of ``losses`` (steps ``first_step``, ...) above ``BLOWUP_FACTOR`` times the run's
    first loss, as ``(step, reason)``; the guard's rule, for runs with the guard off."""
    limit = BLOWUP_FACTOR * max(abs(float(first_loss)), 1.0)
    over = np.flatnonzero(np.isfinite(losses) & (losses > limit))
    if not over.size:
        return None
    worst = float(losses[over[0]])
    return first_step + int(over[0]), (
        f"the loss rose to {worst:.3g}, over {BLOWUP_FACTOR:.0e} times its start "
        f"{float(first_loss):.3g}"
    )


def save_last_finite(path: Path, params: Any) -> None:
    """Write ``params`` as an ``.npz`` named by tree path, unless a leaf is not finite."""
    arrays = checkpoint_format.flatten("params", params)
    if not all(np.isfinite(leaf).all() for leaf in arrays.values()):
        return
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    _files.atomic_write(path, buffer.getvalue())
