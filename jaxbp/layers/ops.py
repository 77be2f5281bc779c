"""The forward pass of every layer in JAX; ``jax.grad`` differentiates these definitions.

A convolution runs one of two ways, the same function of its inputs:

- ``"im2col"``: gather every window into a row of ``patches`` and multiply,
  ``out = patches @ K`` with ``patches (batch * positions, kernel_volume * in_channels)`` and
  ``K = w.reshape(kernel_volume * in_channels, features)``. The rows are cut with strided
  ``lax.slice``, one per kernel offset, so the backward pass is pads and adds.
- ``"lax"``: ``lax.conv_general_dilated`` in the channels-last layout.

``"auto"`` picks per backend (:data:`CONV_IMPL_BY_BACKEND`), from measurements recorded in
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from jaxbp._types import Array
from jaxbp.activations import ACTIVATIONS
from jaxbp.layers import specs

#: The faster convolution per ``jax.default_backend()`` (measured: benchmarks/RESULTS.md).
CONV_IMPL_BY_BACKEND = {"cpu": "im2col", "gpu": "lax", "tpu": "lax"}
CONV_IMPLS = ("auto", "im2col", "lax")


def resolve_conv_impl(impl: str) -> str:
    """``"im2col"`` or ``"lax"``; ``"auto"`` becomes the faster one on the default backend."""
    if impl == "auto":
        return CONV_IMPL_BY_BACKEND.get(jax.default_backend(), "lax")
    return impl


def patches(x: Array, window: tuple[int, ...], stride: tuple[int, ...]) -> Array:
    """Every window of ``x`` (already padded), ``(batch, *out, prod(window), channels)``.

    ``patches[n, *i, k, c] = x[n, *(i * stride + offset_k), c]`` with the kernel offsets
    ``offset_k`` in row-major order, the order of ``w.reshape(-1, in_channels, features)``.
    """
    batch, *spatial, channels = x.shape
    out = specs.window_output(tuple(spatial), window, stride, ((0, 0),) * len(window))
    slices = []
    for offset in itertools.product(*(range(size) for size in window)):
        limit = [o + s * (n - 1) + 1 for o, s, n in zip(offset, stride, out, strict=True)]
        slices.append(lax.slice(x, (0, *offset, 0), (batch, *limit, channels), (1, *stride, 1)))
    return jnp.stack(slices, axis=-2)


def conv(layer: Any, params: dict[str, Array], x: Array, impl: str) -> Array:
    """``f(conv(x, w) + b)`` for a Conv1D/Conv2D layer; x is ``(batch, *spatial, in_channels)``."""
    w = params["w"]  # (*kernel, in_channels, features)
    pads = specs.conv_pads(layer, tuple(x.shape[1:-1]))
    if resolve_conv_impl(impl) == "im2col":
        x_pad = jnp.pad(x, ((0, 0), *pads, (0, 0)))
        rows = patches(x_pad, layer.kernel_size, layer.stride)  # (batch, *out, kvol, in)
        rows = rows.reshape(*rows.shape[:-2], -1)  # (batch, *out, kvol * in)
        z = rows @ w.reshape(-1, w.shape[-1])  # (..., kvol * in) @ (kvol * in, features)
    else:
        spatial = "W" if layer.ndim == 1 else "HW"
        numbers = (f"N{spatial}C", f"{spatial}IO", f"N{spatial}C")
        z = lax.conv_general_dilated(x, w, layer.stride, pads, dimension_numbers=numbers)
    if "b" in params:
        z = z + params["b"]
    return ACTIVATIONS[layer.activation](z)


def pool(layer: Any, x: Array) -> Array:
    """Max or mean over each window, per channel; x is ``(batch, *spatial, channels)``."""
    dims, strides = (1, *layer.window, 1), (1, *layer.stride, 1)
    if layer.kind == "max":
        return lax.reduce_window(x, -jnp.inf, lax.max, dims, strides, "VALID")
    total = lax.reduce_window(x, 0.0, lax.add, dims, strides, "VALID")
    return total / math.prod(layer.window)


def apply_layer(layer: Any, params: Any, x: Array, impl: str) -> Array:
    """One layer's forward pass on a batch ``x`` of shape ``(batch, *input_shape)``."""
    if isinstance(layer, specs.Dense):
        z = x @ params["w"]  # (batch, fan_in) @ (fan_in, features)
        if "b" in params:
            z = z + params["b"]
        return ACTIVATIONS[layer.activation](z)
    if isinstance(layer, specs.CONV_TYPES):
        return conv(layer, params, x, impl)
    if isinstance(layer, specs.POOL_TYPES):
        return pool(layer, x)
    if isinstance(layer, specs.Flatten):
        return x.reshape(x.shape[0], -1)
    if isinstance(layer, specs.Reshape):
        return x.reshape(x.shape[0], *layer.shape)
    if isinstance(layer, specs.Activation):
        return ACTIVATIONS[layer.name](x)
    if isinstance(layer, specs.Residual):
        return x + apply_layers(layer.layers, params["layers"], x, impl)
    raise TypeError(f"{type(layer).__name__} is not a jaxbp layer.")


def apply_layers(layers: tuple[Any, ...], params: Any, x: Array, impl: str) -> Array:
    """The layers in order, without validation (for already-checked, traced code)."""
    for layer, layer_params in zip(layers, params, strict=True):
        x = apply_layer(layer, layer_params, x, impl)
    return x
