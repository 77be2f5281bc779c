"""Convolution and pooling on arrays, in JAX; ``jax.grad`` differentiates these definitions.

These take arrays and plain settings (no layer specs), so a model of one's own can use them
(they are public as :mod:`jaxbp.ops`): ``conv(x, w, b, stride=2, padding=1)`` and
``pool(x, window=2)``. Their arguments are checked on shapes alone, which are static under
``jit``, so a mistake raises while tracing with a message naming the argument.

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
_SPATIAL = ("W", "HW", "DHW")  # lax's names of 1, 2 and 3 spatial axes
Shape = tuple[int, ...]
Padding = str | tuple[tuple[int, int], ...]


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


def positive_ints(where: str, name: str, value: Any, ndim: int) -> tuple[int, ...]:
    """``value`` as ``ndim`` positive ints (one int stands for every axis), else a ValueError."""
    values = (value,) * ndim if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(values, tuple | list)
        or len(values) != ndim
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values)
    ):
        raise ValueError(
            f"{where}: {name} must be a positive int or {ndim} positive ints, got {value!r}."
        )
    return tuple(values)


def padding_pairs(where: str, value: Any, ndim: int) -> Padding:
    """``"VALID"``, ``"SAME"``, or one ``(low, high)`` pair per spatial axis, else a ValueError.

    An int pads every side by that much; ``ndim`` ints pad both sides of each axis; with one
    spatial axis a single ``(low, high)`` pair is accepted as it is.
    """
    if isinstance(value, str):
        if value.upper() not in ("VALID", "SAME"):
            raise ValueError(f'{where}: padding must be "VALID", "SAME" or ints, got {value!r}.')
        return value.upper()
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,) * ndim
    if ndim == 1 and isinstance(value, tuple | list) and len(value) == 2:
        value = (tuple(value),)  # one spatial axis: (low, high)
    if isinstance(value, tuple | list) and len(value) == ndim:
        pairs = tuple((v, v) if isinstance(v, int) else v for v in value)
        if all(
            isinstance(p, tuple | list)
            and len(p) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in p)
            for p in pairs
        ):
            return tuple((int(p[0]), int(p[1])) for p in pairs)
    raise ValueError(
        f'{where}: padding must be "VALID", "SAME", an int >= 0, {ndim} ints or {ndim} '
        f"(low, high) pairs, got {value!r}."
    )


def _spatial_axes(where: str, x: Any) -> int:
    """The number of spatial axes of ``x (batch, *spatial, channels)``: 1 to 3."""
    shape = tuple(jnp.shape(x))
    if not 3 <= len(shape) <= 2 + len(_SPATIAL):
        raise ValueError(
            f"{where}: x has shape {shape} but must be (batch, *spatial, channels) with 1 to "
            f"{len(_SPATIAL)} spatial axes, e.g. (batch, length, channels); add a channel axis "
            f"with x[..., None]."
        )
    return len(shape) - 2


def _check_fits(
    where: str, what: str, spatial: Shape, window: Shape, stride: Shape, pads: Any
) -> None:
    if min(window_output(spatial, window, stride, pads)) < 1:
        padded = f" with padding {tuple(pads)}" if what == "kernel" else ""
        fixes = "more padding, " if what == "kernel" else ""
        raise ValueError(
            f"{where}: the {what} {window} is larger than the input's spatial shape "
            f"{spatial}{padded}; use a smaller {what}, {fixes}or a larger input."
        )


def _check_conv(
    where: str, x: Any, w: Any, b: Any, stride: Any, padding: Any, impl: Any
) -> tuple[Shape, tuple[tuple[int, int], ...]]:
    """Every argument of :func:`conv`, on shapes alone; returns the stride and explicit padding."""
    ndim = _spatial_axes(where, x)
    x_shape, w_shape = tuple(jnp.shape(x)), tuple(jnp.shape(w))
    if len(w_shape) != ndim + 2:
        raise ValueError(
            f"{where}: w has shape {w_shape} but x {x_shape} has {ndim} spatial axes; pass w of "
            f"shape (*kernel ({ndim} axes), in_channels, out_channels)."
        )
    if w_shape[-2] != x_shape[-1]:
        raise ValueError(
            f"{where}: x has {x_shape[-1]} channels (its last axis, shape {x_shape}) but w "
            f"{w_shape} expects {w_shape[-2]} (its second-to-last axis); pass w of shape "
            f"(*kernel, {x_shape[-1]}, out_channels)."
        )
    if b is not None and tuple(jnp.shape(b)) != (w_shape[-1],):
        raise ValueError(
            f"{where}: b has shape {tuple(jnp.shape(b))} but w {w_shape} has {w_shape[-1]} "
            f"output channels; pass b of shape ({w_shape[-1]},) or b=None."
        )
    if impl not in CONV_IMPLS:
        raise ValueError(
            f"{where}: unknown impl {impl!r}; valid names are {', '.join(CONV_IMPLS)}."
        )
    kernel, spatial = w_shape[:-2], x_shape[1:-1]
    stride = positive_ints(where, "stride", 1 if stride is None else stride, ndim)
    pads = conv_pads(padding_pairs(where, padding, ndim), kernel, stride, spatial)
    _check_fits(where, "kernel", spatial, kernel, stride, pads)
    return stride, pads


def conv(
    x: Array,
    w: Array,
    b: Array | None = None,
    *,
    stride: int | Shape | None = None,
    padding: Any = "VALID",
    impl: str = "auto",
) -> Array:
    """``conv(x, w) + b``, channels last: ``x (batch, *spatial, in)``, ``w (*kernel, in, out)``.

    A cross-correlation, as in every framework: with one spatial axis,
    ``out[n, i, o] = sum_{k, c} x_pad[n, i * stride + k, c] * w[k, c, o] + b[o]``.

    Args:
        x: float array ``(batch, *spatial, in_channels)``, 1 to 3 spatial axes.
        w: float array ``(*kernel, in_channels, out_channels)``, one kernel axis per spatial axis.
        b: ``(out_channels,)`` or ``None``.
        stride: an int for every spatial axis or one per axis (default 1).
        padding: ``"VALID"`` (none), ``"SAME"`` (output ``ceil(length / stride)``), an int
            (every side), one int per axis (both sides) or ``((low, high), ...)`` per axis.
        impl: ``"im2col"`` (windows gathered, one matrix product), ``"lax"``
            (``lax.conv_general_dilated``) or ``"auto"``: the faster one on this backend
            (:data:`CONV_IMPL_BY_BACKEND`).

    Returns:
        ``(batch, *out_spatial, out_channels)``, ``out = (length + low + high - kernel) // stride + 1``
        per axis.

    Raises:
        ValueError: a rank, a channel count or ``b``'s shape that does not match, a stride or
            padding that is not one of the forms above, a kernel larger than the padded input,
            or an unknown ``impl``.
    """
    strides, pads = _check_conv("jaxbp.ops.conv", x, w, b, stride, padding, impl)
    kernel_size = tuple(w.shape[:-2])
    if resolve_conv_impl(impl) == "im2col":
        x_pad = jnp.pad(x, ((0, 0), *pads, (0, 0)))
        rows = patches(x_pad, kernel_size, strides)  # (batch, *out, kvol, in)
        rows = rows.reshape(*rows.shape[:-2], -1)  # (batch, *out, kvol * in)
        z = rows @ w.reshape(-1, w.shape[-1])  # (..., kvol * in) @ (kvol * in, features)
    else:
        spatial = _SPATIAL[len(kernel_size) - 1]
        numbers = (f"N{spatial}C", f"{spatial}IO", f"N{spatial}C")
        z = lax.conv_general_dilated(x, w, strides, pads, dimension_numbers=numbers)
    return z if b is None else z + b


def pool(
    x: Array, *, window: int | Shape, stride: int | Shape | None = None, kind: str = "max"
) -> Array:
    """Max (``kind="max"``) or mean (``"avg"``) over each window, per channel, no padding.

    Args:
        x: float array ``(batch, *spatial, channels)``, 1 to 3 spatial axes.
        window: an int for every spatial axis or one per axis.
        stride: likewise; defaults to the window (windows side by side).
        kind: ``"max"`` or ``"avg"``.

    Returns:
        ``(batch, *out_spatial, channels)``, ``out = (length - window) // stride + 1`` per axis.

    Raises:
        ValueError: a rank that does not match, a window or stride that is not positive ints,
            a window larger than the input, or an unknown ``kind``.
    """
    where = "jaxbp.ops.pool"
    ndim = _spatial_axes(where, x)
    window = positive_ints(where, "window", window, ndim)
    stride = window if stride is None else positive_ints(where, "stride", stride, ndim)
    if kind not in POOL_KINDS:
        raise ValueError(
            f"{where}: unknown kind {kind!r}; valid names are {', '.join(POOL_KINDS)}."
        )
    _check_fits(where, "window", tuple(jnp.shape(x))[1:-1], window, stride, ((0, 0),) * ndim)
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
