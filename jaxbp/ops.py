"""Convolution and pooling on arrays, for models of one's own: the functions jaxbp's layers use.

``conv(x, w, b, stride=, padding=, impl=)`` and ``pool(x, window=, stride=, kind=)`` work on
channels-last arrays, ``x (batch, *spatial, channels)`` with 1 to 3 spatial axes, and
``jax.grad`` differentiates them. ``impl="auto"`` (the default) picks the faster convolution for
the backend, :data:`CONV_IMPL_BY_BACKEND`: gathered windows and one matrix product
(``"im2col"``) on the CPU, where ``lax.conv_general_dilated`` is several times slower on small
1-D convolutions, and ``"lax"`` on GPUs and TPUs. Defined in :mod:`jaxbp.layers.ops`.

>>> import jax.numpy as jnp
>>> from jaxbp import ops
>>> x = jnp.arange(5.0).reshape(1, 5, 1)      # one example, length 5, one channel
>>> w = jnp.array([1.0, -1.0]).reshape(2, 1, 1)  # kernel 2: x[i] - x[i + 1]
>>> ops.conv(x, w, padding="VALID")[0, :, 0].tolist()
[-1.0, -1.0, -1.0, -1.0]
>>> ops.pool(x, window=2)[0, :, 0].tolist()
[1.0, 3.0]
"""

from __future__ import annotations

from jaxbp.layers.ops import (
    CONV_IMPL_BY_BACKEND,
    CONV_IMPLS,
    POOL_KINDS,
    conv,
    conv_pads,
    patches,
    pool,
    resolve_conv_impl,
)

__all__ = (
    "CONV_IMPLS",
    "CONV_IMPL_BY_BACKEND",
    "POOL_KINDS",
    "conv",
    "conv_pads",
    "patches",
    "pool",
    "resolve_conv_impl",
)
