"""Activation functions by name, in JAX.

Each maps pre-activations ``z`` of shape ``(..., n)`` to activations of the same shape. The
derivatives used by the manual chain rule are written out separately in :mod:`jaxbp.manual`; here
``jax.grad`` differentiates these definitions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

if TYPE_CHECKING:
    from jaxbp._types import Array


def linear(z: Array) -> Array:
    """Identity: ``f(z) = z``."""
    return z


def relu(z: Array) -> Array:
    """``f(z) = max(0, z)``; its derivative at 0 is taken as 0."""
    return jax.nn.relu(z)


def sigmoid(z: Array) -> Array:
    """``f(z) = 1 / (1 + exp(-z))``."""
    return jax.nn.sigmoid(z)


def tanh(z: Array) -> Array:
    """``f(z) = tanh(z)``."""
    return jnp.tanh(z)


def softmax(z: Array) -> Array:
    """``f(z)_i = exp(z_i) / sum_j exp(z_j)`` over the last axis (numerically stable)."""
    return jax.nn.softmax(z, axis=-1)


def gelu(z: Array) -> Array:
    """The exact GELU, ``f(z) = z Phi(z) = z (1 + erf(z / sqrt(2))) / 2`` (``Phi`` the standard
    normal CDF), not the tanh approximation."""
    return jax.nn.gelu(z, approximate=False)


ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "linear": linear,
    "relu": relu,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "softmax": softmax,
    "gelu": gelu,
}
