"""Convolution and pooling on arrays, in JAX; ``jax.grad`` differentiates these definitions.

These take arrays and plain settings (no layer specs), so a model of one's own can use them:
``conv(x, w, b, stride=(1,), padding="SAME")`` and ``pool(x, window=(2,), stride=(2,))``.

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
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
from jax import lax

if TYPE_CHECKING:
    from jaxbp._types import Array

#: The faster convolution per ``jax.default_backend()`` (measured: benchmarks/RESULTS.md).
CONV_IMPL_BY_BACKEND = {"cpu": "im2col", "gpu": "lax", "tpu": "lax"}
CONV_IMPLS = ("auto", "im2col", "lax")
POOL_KINDS = ("max", "avg")
Shape = tuple[int, ...]


def conv_pads(
    padding: Any, kernel_size: Shape, stride: Shape, spatial: Shape
) -> tuple[tuple[int, int], ...]:
    """Explicit ``(low, high)`` padding per spatial axis (``"SAME"`` as ``lax`` resolves it)."""
    if padding == "VALID":
        return ((0, 0),) * len(spatial)
    if padding == "SAME":
        pads = []
        for length, kernel, step in zip(spatial, kernel_size, stride, strict=True):
            total = max((-(-length // step) - 1) * step + kernel - length, 0)
            pads.append((total // 2, total - total // 2))
        return tuple(pads)
    return tuple((int(low), int(high)) for low, high in padding)


def window_output(spatial: Shape, window: Shape, stride: Shape, pads: Any) -> Shape:
    """Output size per spatial axis; a value < 1 means the window does not fit."""
    return tuple(
        (length + low + high - size) // step + 1
        for length, size, step, (low, high) in zip(spatial, window, stride, pads, strict=True)
    )


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
    out = window_output(tuple(spatial), window, stride, ((0, 0),) * len(window))
    slices = []
    for offset in itertools.product(*(range(size) for size in window)):
        limit = [o + s * (n - 1) + 1 for o, s, n in zip(offset, stride, out, strict=True)]
        slices.append(lax.slice(x, (0, *offset, 0), (batch, *limit, channels), (1, *stride, 1)))
    return jnp.stack(slices, axis=-2)


def conv(
    x: Array,
    w: Array,
    b: Array | None = None,
    *,
    stride: Shape | None = None,
    padding: Any = "VALID",
    impl: str = "auto",
) -> Array:
    """``conv(x, w) + b``, channels last: ``x (batch, *spatial, in)``, ``w (*kernel, in, out)``.

    Args:
        stride: per spatial axis (default 1 each).
        padding: ``"VALID"``, ``"SAME"`` or ``((low, high), ...)`` per spatial axis.
        impl: ``"im2col"`` (windows gathered, one matrix product), ``"lax"``
            (``lax.conv_general_dilated``) or ``"auto"``: the faster one on this backend.
    """
    kernel_size = tuple(w.shape[:-2])
    stride = (1,) * len(kernel_size) if stride is None else tuple(stride)
    pads = conv_pads(padding, kernel_size, stride, tuple(x.shape[1:-1]))
    if resolve_conv_impl(impl) == "im2col":
        x_pad = jnp.pad(x, ((0, 0), *pads, (0, 0)))
        rows = patches(x_pad, kernel_size, stride)  # (batch, *out, kvol, in)
        rows = rows.reshape(*rows.shape[:-2], -1)  # (batch, *out, kvol * in)
        z = rows @ w.reshape(-1, w.shape[-1])  # (..., kvol * in) @ (kvol * in, features)
    else:
        spatial = "W" if len(kernel_size) == 1 else "HW"
        numbers = (f"N{spatial}C", f"{spatial}IO", f"N{spatial}C")
        z = lax.conv_general_dilated(x, w, stride, pads, dimension_numbers=numbers)
    return z if b is None else z + b


def pool(x: Array, *, window: Shape, stride: Shape | None = None, kind: str = "max") -> Array:
    """Max (``kind="max"``) or mean (``"avg"``) over each window, per channel; ``x`` is
    ``(batch, *spatial, channels)``; ``stride`` defaults to the window."""
    stride = tuple(window) if stride is None else tuple(stride)
    dims, strides = (1, *window, 1), (1, *stride, 1)
    if kind == "max":
        return lax.reduce_window(x, -jnp.inf, lax.max, dims, strides, "VALID")
    total = lax.reduce_window(x, 0.0, lax.add, dims, strides, "VALID")
    return total / math.prod(window)


# --- the layers of modern networks ------------------------------------------------------------
def embed(tokens: Array, table: Array) -> Array:
    """``table[tokens]``: ``(*tokens.shape, features)``. An out-of-range token (which only a
    traced call cannot refuse beforehand) gives a row of NaN, never a silently clamped row."""
    return jnp.take(table, tokens, axis=0, mode="fill", fill_value=jnp.nan)


def normalize(
    x: Array, mean: Array, var: Array, scale: Array, bias: Array, epsilon: float
) -> Array:
    """``scale * (x - mean) / sqrt(var + epsilon) + bias``, statistics broadcast against ``x``."""
    return scale * (x - mean) / jnp.sqrt(var + epsilon) + bias


def layer_norm(x: Array, scale: Array, bias: Array, epsilon: float = 1e-5) -> Array:
    """``x`` normalised over its last axis (mean and biased variance), scaled and shifted."""
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean((x - mean) ** 2, axis=-1, keepdims=True)
    return normalize(x, mean, var, scale, bias, epsilon)


def batch_moments(x: Array) -> tuple[Array, Array]:
    """The mean and biased variance per channel (last axis) over every other axis."""
    axes = tuple(range(x.ndim - 1))
    mean = jnp.mean(x, axis=axes)
    return mean, jnp.mean((x - mean) ** 2, axis=axes)


def self_attention(x: Array, params: Any, *, heads: int, causal: bool = False) -> Array:
    """Multi-head scaled dot-product self-attention on ``x (batch, length, features)``.

    ``params`` holds ``w_q, w_k, w_v, w_o (features, features)`` and optionally ``b_q, b_k, b_v,
    b_o (features,)``. Per head ``softmax(q k^T / sqrt(d)) v`` with ``d = features / heads``;
    ``causal`` hides the keys after each query.
    """
    batch, length, features = x.shape
    depth = features // heads

    def project(name: str) -> Array:  # (batch, heads, length, depth)
        z = x @ params[f"w_{name}"] + params.get(f"b_{name}", 0.0)
        return z.reshape(batch, length, heads, depth).transpose(0, 2, 1, 3)

    q, k, v = project("q"), project("k"), project("v")
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(depth)  # (batch, heads, length, length)
    if causal:
        scores = jnp.where(jnp.tril(jnp.ones((length, length), bool)), scores, -jnp.inf)
    weights = jax.nn.softmax(scores, axis=-1)
    heads_out = (weights @ v).transpose(0, 2, 1, 3).reshape(batch, length, features)
    return heads_out @ params["w_o"] + params.get("b_o", 0.0)


def dropout_mask(key: Array, rate: float, shape: Shape) -> Array:
    """The entries dropout keeps: ``True`` with probability ``1 - rate``, independently."""
    return jax.random.bernoulli(key, 1.0 - rate, shape)


def dropout(key: Array, x: Array, rate: float) -> Array:
    """Inverted dropout, ``x * mask / (1 - rate)``, so the expected output is ``x``."""
    mask = dropout_mask(key, rate, x.shape)
    return jnp.where(mask, x / (1.0 - rate), jnp.zeros_like(x))
