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

#: An epoch whose step losses reach this many times the run's first loss counts as diverged.
BLOWUP_FACTOR = 1e6


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
    bad_step = int(np.asarray(fit_history.get("nonfinite_step", -1)))
    finite_params = all(bool(np.isfinite(leaf).all()) for leaf in jax.tree.leaves(new_params))
    where = _places(fit_history.get("nonfinite_leaves", fit_history.get("nonfinite_layers")))
    if bad_step >= 0:
        reason = fit_history.get("divergence_reason") or "non-finite loss or gradient"
        places = f" in {', '.join(map(str, where))}" if where else ""
        found = {"step": bad_step, "reason": f"{reason}{places}", "where": where}
        return {
            **found,
            "epoch": bad_step // max(len(losses), 1) + 1,
            "new_params_finite": finite_params,
        }
    finite = losses[np.isfinite(losses)]
    worst = float(finite.max()) if finite.size else float("inf")
    if not finite_params or worst > BLOWUP_FACTOR * max(abs(float(first_loss)), 1e-12):
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


def _places(where: Any) -> list[str]:
    """The guard's report of where it found non-finite values, as ``params[...]`` paths: a bool
    per layer (``params[i]``), a tree of bools (one per leaf, by tree path), or path strings."""
    if where is None:
        return []
    if isinstance(where, list | tuple) and all(isinstance(item, str) for item in where):
        return list(where)
    array = np.asarray(where) if not isinstance(where, dict | list | tuple) else None
    if array is not None and array.ndim == 1 and array.dtype == bool:
        return [f"params[{i}]" for i in np.flatnonzero(array).tolist()]
    leaves = jax.tree_util.tree_flatten_with_path(where)[0]
    return ["params" + jax.tree_util.keystr(path) for path, leaf in leaves if bool(np.any(leaf))]


def save_last_finite(path: Path, params: Any) -> None:
    """Write ``params`` as an ``.npz`` named by tree path, unless a leaf is not finite."""
    arrays = checkpoint_format.flatten("params", params)
    if not all(np.isfinite(leaf).all() for leaf in arrays.values()):
        return
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    _files.atomic_write(path, buffer.getvalue())
