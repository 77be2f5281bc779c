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
