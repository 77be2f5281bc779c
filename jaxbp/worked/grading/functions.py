"""The functions an expression may call, by name: the whitelist of
:mod:`jaxbp.worked.grading.expression`.

``exp log tanh sigmoid sqrt abs`` act element by element on one argument; ``sum mean`` reduce
one argument over all its entries; ``max min`` reduce one argument, or combine several element by
element (``max(z1[0, 0], 0)`` is a ReLU). Each entry is ``(function, fewest, most arguments)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def _sigmoid(values: Any) -> Any:
    return 1.0 / (1.0 + np.exp(-values))


def _extreme(reduce: Callable[[Any], Any], elementwise: Callable[..., Any]) -> Callable[..., Any]:
    def function(*values: Any) -> Any:
        if len(values) == 1:
            return reduce(values[0])
        result = values[0]
        for value in values[1:]:
            result = elementwise(result, value)
        return result

    return function


#: name -> (function, smallest and largest number of arguments).
FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int]] = {
    "exp": (np.exp, 1, 1),
    "log": (np.log, 1, 1),
    "tanh": (np.tanh, 1, 1),
    "sigmoid": (_sigmoid, 1, 1),
    "sqrt": (np.sqrt, 1, 1),
    "abs": (np.abs, 1, 1),
    "sum": (np.sum, 1, 1),
    "mean": (np.mean, 1, 1),
    "max": (_extreme(np.max, np.maximum), 1, 8),
    "min": (_extreme(np.min, np.minimum), 1, 8),
}
