"""im2col and its adjoint col2im, and the padding of a convolution, in NumPy float64: the pieces
:mod:`jaxbp.manual.layers` writes convolution and pooling with.

im2col turns every window of the (padded) input into one row of ``patches``, so a convolution is
one matrix product; col2im adds each entry of ``dpatches`` back where im2col read it, so it gives
the gradient of the input.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

Matrix = np.ndarray


def conv_pads(layer: Any, spatial: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """Explicit ``(low, high)`` zero padding per spatial axis.

    ``"SAME"``: the output has ``ceil(length / stride)`` positions; the padding that needs,
    ``(out - 1) * stride + kernel - length``, is split with the extra one at the end.
    """
    if layer.padding == "VALID":
        return ((0, 0),) * len(spatial)
    if layer.padding == "SAME":
        pads = []
        for length, kernel, stride in zip(spatial, layer.kernel_size, layer.stride, strict=True):
            out = -(-length // stride)
            total = max((out - 1) * stride + kernel - length, 0)
            pads.append((total // 2, total - total // 2))
        return tuple(pads)
    return tuple(tuple(pad) for pad in layer.padding)


# --- im2col and col2im ------------------------------------------------------------------------
def _window_slices(offset: tuple[int, ...], stride: tuple[int, ...], out: tuple[int, ...]) -> Any:
    """Index of ``x[:, offset + i * stride, :]`` for every output position ``i``."""
    return (
        slice(None),
        *(slice(o, o + s * (n - 1) + 1, s) for o, s, n in zip(offset, stride, out, strict=True)),
        slice(None),
    )


def im2col(x: Matrix, window: tuple[int, ...], stride: tuple[int, ...]) -> Matrix:
    """Every window of ``x`` (batch, *spatial, C) as ``(batch, *out, prod(window), C)``.

    ``patches[n, *i, k, c] = x[n, *(i * stride + offset_k), c]``, offsets in row-major order.
    """
    out = tuple(
        (length - size) // step + 1
        for length, size, step in zip(x.shape[1:-1], window, stride, strict=True)
    )
    offsets = itertools.product(*(range(size) for size in window))
    return np.stack([x[_window_slices(o, stride, out)] for o in offsets], axis=-2)


def col2im(
    dpatches: Matrix, x_shape: tuple[int, ...], window: tuple[int, ...], stride: tuple[int, ...]
) -> Matrix:
    """The adjoint of :func:`im2col`: add each ``dpatches[n, *i, k, c]`` back where it was read."""
    out = dpatches.shape[1:-2]
    dx = np.zeros(x_shape)
    for k, offset in enumerate(itertools.product(*(range(size) for size in window))):
        dx[_window_slices(offset, stride, out)] += dpatches[..., k, :]  # scatter-add
    return dx
