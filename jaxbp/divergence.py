"""Divergence of a ``jaxbp train`` run: what counts, and the last finite parameters.

An epoch diverged when ``jaxbp.fit``'s in-program guard stopped it (a non-finite loss or
gradient, or the guard's own blow-up check), when the parameters it returns are not finite (an
update that overflowed), or when a step's loss rose above :data:`BLOWUP_FACTOR` times the run's
first loss while staying finite (Adam at ``--lr 1e6``). :func:`find` is the one place that reads
the guard's history keys.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxbp import _files, checkpoint_format
from jaxbp._train_step import BLOWUP_FACTOR  # the guard's own rule, applied across epochs


def find(
    fit_history: dict[str, Any],
    losses: np.ndarray,
    first_loss: float,
    new_params: Any,
    step: int,
    epoch: int,
) -> dict[str, Any] | None:
    """Whether this epoch diverged, from fit's guard (a non-finite loss or gradient, or the
    guard's own blow-up check), non-finite new params, or a loss ``BLOWUP_FACTOR`` times the
    first. The only place that reads the guard's history keys."""
    bad_step = int(np.asarray(fit_history.get("stop_step", -1)))
    finite_params = all(bool(np.isfinite(leaf).all()) for leaf in jax.tree.leaves(new_params))
    where = _places(fit_history.get("nonfinite_paths"))
    if bad_step >= 0:
        reason = (
            f"the loss rose over {BLOWUP_FACTOR:.0e} times its start"
            if fit_history.get("stop_reason") == "blowup"
            else "non-finite loss or gradient"
        )
        places = f" in {', '.join(map(str, where))}" if where else ""
        found = {"step": bad_step, "reason": f"{reason}{places}", "where": where}
        return {
            **found,
            "epoch": bad_step // max(len(losses), 1) + 1,
            "new_params_finite": finite_params,
        }
    finite = losses[np.isfinite(losses)]
    worst = float(finite.max()) if finite.size else float("inf")
    if not finite_params or worst > BLOWUP_FACTOR * max(abs(float(first_loss)), 1.0):
        index = int(np.argmax(~np.isfinite(losses) | (losses == worst)))
        reason = (
            "the parameters became non-finite"
            if not finite_params
            else f"the loss rose to {worst:.3g}, over {BLOWUP_FACTOR:.0e} times its start {float(first_loss):.3g}"
        )
        return {
            "step": step + index,
            "epoch": epoch + 1,
            "reason": reason,
            "where": [],
            "new_params_finite": False,
        }
    return None


def _places(paths: Any) -> list[str]:
    """The guard's tree paths of the non-finite gradient leaves (``"[0]['w']"``), as
    ``params[0]['w']``."""
    if paths is None:
        return []
    return [f"params{path}" for path in paths]


def save_last_finite(path: Path, params: Any) -> None:
    """Write ``params`` as an ``.npz`` named by tree path, unless a leaf is not finite."""
    arrays = checkpoint_format.flatten("params", params)
    if not all(np.isfinite(leaf).all() for leaf in arrays.values()):
        return
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    _files.atomic_write(path, buffer.getvalue())
