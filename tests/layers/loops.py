"""Convolution and pooling by their definitions, one output position at a time, in NumPy float64,
and their gradients the same way: the oracles of the layer and ``jaxbp.ops`` tests.

No im2col and no ``lax``: each output position reads its window of the (padded) input directly.
"""

from __future__ import annotations

import itertools

import numpy as np


def loop_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride, pads) -> np.ndarray:
    """Cross-correlation by its definition, one output position at a time (any spatial rank)."""
    x = np.pad(x, ((0, 0), *pads, (0, 0)))
    kernel = w.shape[:-2]
    out_shape = [(n - k) // s + 1 for n, k, s in zip(x.shape[1:-1], kernel, stride, strict=True)]
    out = np.zeros((x.shape[0], *out_shape, w.shape[-1]))
    for position in itertools.product(*(range(n) for n in out_shape)):
        window = tuple(
            slice(i * s, i * s + k) for i, s, k in zip(position, stride, kernel, strict=True)
        )
        patch = x[(slice(None), *window, slice(None))]  # (batch, *kernel, C_in)
        out[(slice(None), *position, slice(None))] = (
            np.tensordot(patch, w, axes=(list(range(1, patch.ndim)), list(range(w.ndim - 1)))) + b
        )
    return out


def loop_pool(x: np.ndarray, window, stride, reduce) -> np.ndarray:
    out_shape = [(n - k) // s + 1 for n, k, s in zip(x.shape[1:-1], window, stride, strict=True)]
    out = np.zeros((x.shape[0], *out_shape, x.shape[-1]))
    for position in itertools.product(*(range(n) for n in out_shape)):
        cells = tuple(
            slice(i * s, i * s + k) for i, s, k in zip(position, stride, window, strict=True)
        )
        patch = x[(slice(None), *cells, slice(None))]
        out[(slice(None), *position, slice(None))] = reduce(
            patch.reshape(x.shape[0], -1, x.shape[-1]), axis=1
        )
    return out


def _windows(out_shape, stride, window):
    """Every output position and the slices of its window in the (padded) input."""
    for position in itertools.product(*(range(n) for n in out_shape)):
        yield (
            position,
            tuple(
                slice(i * s, i * s + k) for i, s, k in zip(position, stride, window, strict=True)
            ),
        )


def loop_conv_grads(x, w, g, stride, pads):
    """Gradients of ``sum(conv(x, w, b) * g)`` with respect to x, w and b, by the chain rule.

    Each output ``out[n, p, o] = sum_{k, c} x_pad[n, p * s + k, c] w[k, c, o] + b[o]`` sends
    ``g[n, p, o] * w[k, c, o]`` back to ``x_pad[n, p * s + k, c]``, ``g[n, p, o] * x_pad[...]``
    to ``w[k, c, o]`` and ``g[n, p, o]`` to ``b[o]``; the padding's share is dropped.
    """
    x_pad = np.pad(x, ((0, 0), *pads, (0, 0)))
    kernel = w.shape[:-2]
    dx_pad, dw = np.zeros_like(x_pad), np.zeros_like(w)
    for position, window in _windows(g.shape[1:-1], stride, kernel):
        g_here = g[(slice(None), *position, slice(None))]  # (batch, out)
        patch = x_pad[(slice(None), *window, slice(None))]  # (batch, *kernel, in)
        dw += np.tensordot(patch, g_here, axes=([0], [0]))  # (*kernel, in, out)
        dx_pad[(slice(None), *window, slice(None))] += np.tensordot(g_here, w, axes=([1], [-1]))
    crop = tuple(slice(low, low + n) for (low, _), n in zip(pads, x.shape[1:-1], strict=True))
    dx = dx_pad[(slice(None), *crop, slice(None))]
    return dx, dw, g.reshape(-1, g.shape[-1]).sum(axis=0)


def loop_pool_grad(x, g, window, stride, kind):
    """Gradient of ``sum(pool(x) * g)`` with respect to x: each window's ``g`` goes to its
    largest element (``"max"``, values assumed distinct) or, divided by its size, to every
    element (``"avg"``)."""
    dx = np.zeros_like(x)
    size = int(np.prod(window))
    for position, cells in _windows(g.shape[1:-1], stride, window):
        g_here = g[(slice(None), *position, slice(None))]  # (batch, channels)
        region = (slice(None), *cells, slice(None))
        if kind == "avg":
            dx[region] += g_here.reshape(g.shape[0], *(1,) * len(window), -1) / size
            continue
        patch = x[region].reshape(x.shape[0], size, x.shape[-1])
        for n, c in itertools.product(range(x.shape[0]), range(x.shape[-1])):
            offset = np.unravel_index(int(np.argmax(patch[n, :, c])), window)
            index = tuple(sl.start + o for sl, o in zip(cells, offset, strict=True))
            dx[(n, *index, c)] += g_here[n, c]
    return dx
