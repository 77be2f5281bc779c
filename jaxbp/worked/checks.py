"""One quantity of a worked example, computed by the manual chain rule and by ``jax.grad``, held
against float64 round-off: :class:`Check` and :func:`check_close`."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

#: Relative and absolute round-off allowed between two float64 computations of one quantity.
RTOL, ATOL = 1e-10, 1e-12

#: The most SGD steps a worked example's ``history`` records: one float a step, held in memory and
#: written to every format (``jaxbp explain --steps`` has the same limit).
MAX_STEPS = 100_000


@dataclasses.dataclass
class Check:
    """The largest ``|manual - JAX|`` of one quantity (e.g. ``"dW2"``) and the round-off bound."""

    quantity: str
    max_abs_diff: float
    tolerance: float

    @property
    def verified(self) -> bool:
        return bool(self.max_abs_diff <= self.tolerance)


def check_close(quantity: str, manual_value: Any, jax_value: Any) -> Check:
    """``manual_value`` against ``jax_value``: the largest difference and the round-off bound."""
    manual_value = np.asarray(manual_value, np.float64)
    jax_value = np.asarray(jax_value, np.float64)
    with np.errstate(invalid="ignore"):  # inf - inf: equal infinities agree, nan never does
        difference = np.where(manual_value == jax_value, 0.0, np.abs(manual_value - jax_value))
    finite = manual_value[np.isfinite(manual_value)]
    scale = float(np.max(np.abs(finite))) if finite.size else 0.0
    return Check(quantity, float(np.max(difference, initial=0.0)), ATOL + RTOL * scale)
