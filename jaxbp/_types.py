"""Type aliases shared by the package; no logic lives here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

#: Parameters: any pytree of float arrays. An MLP's are one dict per layer,
#: ``{"w": (fan_in, fan_out), "b": (fan_out,)}``.
Params = Any
#: Gradients: always the structure of :data:`Params`.
Grads = Any
#: A model: any callable ``(params, x) -> prediction`` (a ``jaxbp.MLP`` is one).
Model = Callable[[Any, Any], Any]
#: A loss: a name in ``jaxbp.LOSSES``, or a callable ``(prediction, y) -> (batch,)`` losses.
Loss = str | Callable[[Any, Any], Any]
