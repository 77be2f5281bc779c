"""Losses by name: a per-example loss summed over output units, then the mean over the batch.

Every loss takes ``pred`` and ``target`` of shape ``(batch, n)`` (or ``(n,)`` for one example) and
returns a scalar:

- ``half_se``: ``sum_k 0.5 * (p_k - t_k)**2``
- ``mse``: ``mean_k (p_k - t_k)**2``
- ``cross_entropy``: ``-sum_k t_k log p_k`` with ``p`` probabilities (e.g. a softmax output)
- ``softmax_cross_entropy``: the same from logits, computed stably with ``log_softmax``
- ``binary_cross_entropy``: ``-sum_k t_k log p_k + (1 - t_k) log(1 - p_k)``, ``p`` in (0, 1)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import jax.numpy as jnp
import optax
from jax.scipy.special import xlogy

if TYPE_CHECKING:
    from jaxbp._types import Array


def half_se(pred: Array, target: Array) -> Array:
    """Half squared error, ``mean_batch sum_k 0.5 (p - t)^2``."""
    return jnp.mean(0.5 * jnp.sum((pred - target) ** 2, axis=-1))


def mse(pred: Array, target: Array) -> Array:
    """Mean squared error, ``mean_batch mean_k (p - t)^2``."""
    return jnp.mean(jnp.mean((pred - target) ** 2, axis=-1))


def cross_entropy(pred: Array, target: Array) -> Array:
    """Cross-entropy of probabilities, ``mean_batch -sum_k t log p`` (``0 log 0 = 0``)."""
    return jnp.mean(-jnp.sum(xlogy(target, pred), axis=-1))


def softmax_cross_entropy(pred: Array, target: Array) -> Array:
    """Cross-entropy from logits, ``mean_batch -sum_k t log softmax(z)_k``, numerically stable."""
    return jnp.mean(optax.losses.softmax_cross_entropy(pred, target))


def binary_cross_entropy(pred: Array, target: Array) -> Array:
    """Binary cross-entropy, ``mean_batch -sum_k t log p + (1 - t) log(1 - p)``."""
    per_unit = xlogy(target, pred) + xlogy(1.0 - target, 1.0 - pred)
    return jnp.mean(-jnp.sum(per_unit, axis=-1))


LOSSES: dict[str, Callable[[Array, Array], Array]] = {
    "half_se": half_se,
    "mse": mse,
    "cross_entropy": cross_entropy,
    "softmax_cross_entropy": softmax_cross_entropy,
    "binary_cross_entropy": binary_cross_entropy,
}
