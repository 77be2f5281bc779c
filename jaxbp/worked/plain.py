"""A trace as JSON-ready data (:func:`to_plain`) and its numbers read back (:func:`read_numbers`).

JSON has no infinity or NaN (``json.dumps`` would write ``Infinity`` and ``NaN``, which strict
readers such as a browser's ``JSON.parse`` refuse), and a network whose numbers overflow float64
has them; such a number is written as the string ``"inf"``, ``"-inf"`` or ``"nan"``, which
``np.asarray(value, np.float64)`` and ``float`` read back.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from jaxbp.worked.checks import Check


def to_plain(value: Any) -> Any:
    """``value`` with arrays as nested lists, NumPy scalars as Python ones and every float that
    is not finite as ``"inf"``, ``"-inf"`` or ``"nan"``; dicts, lists and tuples walked."""
    if isinstance(value, np.ndarray):
        return to_plain(value.tolist())
    if isinstance(value, dict):
        return {key: to_plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(item) for item in value]
    if isinstance(value, np.floating | np.integer | np.bool_):
        return to_plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "inf", "-inf" or "nan"
    return value


def read_numbers(fields: dict[str, Any]) -> dict[str, Any]:
    """A trace dict's losses, loss history and checks as numbers and :class:`Check` records
    (a number written ``"inf"`` or ``"nan"`` read back as one)."""
    return {
        "loss": float(fields["loss"]),
        "loss_after": float(fields["loss_after"]),
        "history": [float(value) for value in fields["history"]],
        "checks": [
            Check(str(c["quantity"]), float(c["max_abs_diff"]), float(c["tolerance"]))
            for c in fields["checks"]
        ],
    }
