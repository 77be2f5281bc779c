"""The names a worked example gives its parts: unit names and the parameters that can be frozen."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jaxbp.model.mlp import MLP

#: A unit's name in a network file: a letter, then up to 7 letters, digits or underscores.
UNIT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,7}")


def check_frozen(where: str, spec: MLP, frozen: Sequence[str]) -> tuple[str, ...]:
    """``frozen`` as a tuple of parameter names of ``spec`` (``"W1"``, ``"b2"``, ...).

    Raises:
        ValueError, TypeError: on a name that is not a parameter of ``spec``.
    """
    if isinstance(frozen, str) or not all(isinstance(name, str) for name in frozen):
        raise TypeError(
            f'{where}: frozen must be a list of names like ["b1", "b2"], got {str(frozen)[:60]}.'
        )
    valid = [f"W{n}" for n in range(1, spec.num_layers + 1)]
    valid += [f"b{n}" for n, has in enumerate(spec.layer_bias, start=1) if has]
    for name in frozen:
        if name not in valid:
            raise ValueError(
                f"{where}: frozen names {name[:40]!r}, which is not a parameter of this network; "
                f"its parameters are {', '.join(valid)}."
            )
    return tuple(dict.fromkeys(frozen))
