"""Type aliases shared by the package; no logic lives here."""

from __future__ import annotations

from typing import Any

import jax

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

#: Parameters of an MLP: one dict per layer, ``{"w": (fan_in, fan_out), "b": (fan_out,)}``.
Params = list[dict[str, Any]]
#: Gradients: always the structure of :data:`Params`.
Grads = Params
