"""The JAX forward pass and initial values of the layers of :mod:`jaxbp.layers.modern`.

Random keys and running state come in as arguments and go out as results: Dropout draws its mask
from the key it is given (and passes its input through without one, or outside training);
BatchNorm normalises with the batch's statistics in training and returns running ones moved
towards them, ``running = momentum * running + (1 - momentum) * batch``, and with the running
ones otherwise. :class:`jaxbp.Sequential` threads keys and state through a network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp

from jaxbp.layers import ops
from jaxbp.layers.modern import (
    INIT,
    BatchNorm,
    Dropout,
    Embedding,
    LayerNorm,
    PositionalEmbedding,
    SelfAttention,
)

if TYPE_CHECKING:
    from jaxbp._types import Array

_INITIALIZERS = {
    "normal": jax.nn.initializers.normal(stddev=1.0),
    "glorot": jax.nn.initializers.glorot_normal(),
    "ones": lambda key, shape, dtype: jnp.ones(shape, dtype),
    "zeros": lambda key, shape, dtype: jnp.zeros(shape, dtype),
}


def layer_keys(key: Array | None, count: int) -> list[Any]:
    """One key per layer, ``jax.random.split(key, count)`` (``None`` each without a key): the one
    rule the forward pass and :meth:`jaxbp.Sequential.dropout_masks` both follow."""
    return [None] * count if key is None else list(jax.random.split(key, count))


def run(
    layer: Any, params: Any, state: Any, x: Array, key: Any, training: bool
) -> tuple[Array, Any]:
    """One of these layers on a batch ``x``: ``(output, new state)``."""
    if isinstance(layer, Embedding):
        return ops.embed(x, params["table"]), state
    if isinstance(layer, PositionalEmbedding):
        return x + params["positions"][: x.shape[1]], state  # (batch, length, f) + (length, f)
    if isinstance(layer, LayerNorm):
        return ops.layer_norm(x, params["scale"], params["bias"], layer.epsilon), state
    if isinstance(layer, SelfAttention):
        return ops.self_attention(x, params, heads=layer.heads, causal=layer.causal), state
    if isinstance(layer, Dropout):
        if key is None or not training or layer.rate == 0:
            return x, state
        return ops.dropout(key, x, layer.rate), state
    if isinstance(layer, BatchNorm):
        if state is None:
            raise TypeError("BatchNorm keeps running statistics; pass its state.")
        if training:  # this batch's statistics; the running ones move towards them
            mean, var = ops.batch_moments(x)
            m = layer.momentum
            new = {
                "mean": m * state["mean"] + (1 - m) * mean,
                "var": m * state["var"] + (1 - m) * var,
            }
        else:
            mean, var, new = state["mean"], state["var"], state
        return ops.normalize(x, mean, var, params["scale"], params["bias"], layer.epsilon), new
    raise TypeError(f"{type(layer).__name__} is not one of the layers of jaxbp.layers.modern.")


def mask(layer: Any, key: Array, shape: tuple[int, ...]) -> Array | None:
    """The entries a Dropout keeps on inputs of ``shape`` with ``key``; ``None`` for other layers."""
    return ops.dropout_mask(key, layer.rate, shape) if isinstance(layer, Dropout) else None


def init(shapes: dict[str, Any], key: Array, dtype: Any) -> dict[str, Array]:
    """Initial parameters of one of these layers from their shapes (:data:`INIT` says how)."""
    keys = jax.random.split(key, max(len(shapes), 1))
    return {
        name: _INITIALIZERS[INIT[name]](name_key, shape, dtype)
        for (name, shape), name_key in zip(shapes.items(), keys, strict=False)
    }


def init_state(shapes: Any, dtype: Any) -> Any:
    """Initial running state from a tree of shapes: means at zero, variances at one."""
    if isinstance(shapes, list):
        return [init_state(entry, dtype) for entry in shapes]
    if isinstance(shapes.get("layers"), list):  # a residual block
        return {"layers": init_state(shapes["layers"], dtype)}
    return {
        name: (jnp.ones if name == "var" else jnp.zeros)(s, dtype) for name, s in shapes.items()
    }
