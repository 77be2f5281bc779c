"""Activations and per-example losses with their derivatives, in NumPy float64: the pieces every
hand-written backward pass of :mod:`jaxbp.manual` is built from."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

Matrix = np.ndarray


# --- activations and their derivatives -------------------------------------------------------
def _sigmoid(z: Matrix) -> Matrix:
    # Split by sign so that exp never overflows.
    out = np.empty_like(z)
    positive = z >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-z[positive]))
    exp_z = np.exp(z[~positive])
    out[~positive] = exp_z / (1.0 + exp_z)
    return out


def _softmax(z: Matrix) -> Matrix:
    exp_z = np.exp(z - z.max(axis=-1, keepdims=True))
    return exp_z / exp_z.sum(axis=-1, keepdims=True)


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _normal_cdf(z: Matrix) -> Matrix:
    """``Phi(z) = (1 + erf(z / sqrt(2))) / 2``, the standard normal CDF."""
    return 0.5 * (1.0 + _erf(z / math.sqrt(2.0)))


def _normal_pdf(z: Matrix) -> Matrix:
    """``phi(z) = exp(-z^2 / 2) / sqrt(2 pi)``, the standard normal density."""
    return np.exp(-0.5 * z**2) / math.sqrt(2.0 * math.pi)


#: f(z) for each activation.
ACTIVATIONS: dict[str, Callable[[Matrix], Matrix]] = {
    "linear": lambda z: z,
    "relu": lambda z: np.maximum(z, 0.0),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "softmax": _softmax,
    "gelu": lambda z: z * _normal_cdf(z),  # z Phi(z), the exact GELU
}

#: f'(z) for the element-wise activations, written with a = f(z) where that is the usual form.
DERIVATIVES: dict[str, Callable[[Matrix], Matrix]] = {
    "linear": lambda z: np.ones_like(z),  # d z / d z = 1
    "relu": lambda z: (z > 0).astype(z.dtype),  # 1 if z > 0 else 0 (0 at z = 0)
    "sigmoid": lambda z: _sigmoid(z) * (1.0 - _sigmoid(z)),  # a (1 - a)
    "tanh": lambda z: 1.0 - np.tanh(z) ** 2,  # 1 - a^2
    "gelu": lambda z: _normal_cdf(z) + z * _normal_pdf(z),  # d/dz z Phi(z) = Phi(z) + z phi(z)
}


def softmax_jacobian(z: Matrix) -> Matrix:
    """``J[n, i, j] = d a_i / d z_j = a_i (delta_ij - a_j)`` for every example; ``(batch, k, k)``."""
    a = _softmax(z)
    return a[:, :, None] * (np.eye(z.shape[-1])[None, :, :] - a[:, None, :])


def activation_derivative(name: str, z: Matrix) -> Matrix:
    """``da/dz``: ``(batch, n)`` for element-wise activations, ``(batch, n, n)`` for softmax."""
    return softmax_jacobian(z) if name == "softmax" else DERIVATIVES[name](z)


# --- losses and their derivatives -----------------------------------------------------------
def _log_softmax(z: Matrix) -> Matrix:
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _xlogy(x: Matrix, y: Matrix) -> Matrix:
    """``x * log(y)`` with ``0 * log(0) = 0``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x == 0, 0.0, x * np.log(y))


#: Per-example losses, shape (batch,).
PER_EXAMPLE_LOSSES: dict[str, Callable[[Matrix, Matrix], Matrix]] = {
    "half_se": lambda p, t: 0.5 * np.sum((p - t) ** 2, axis=-1),
    "mse": lambda p, t: np.mean((p - t) ** 2, axis=-1),
    "cross_entropy": lambda p, t: -np.sum(_xlogy(t, p), axis=-1),
    "softmax_cross_entropy": lambda p, t: -np.sum(t * _log_softmax(p), axis=-1),
    "binary_cross_entropy": lambda p, t: -np.sum(_xlogy(t, p) + _xlogy(1 - t, 1 - p), axis=-1),
}


def _softmax_ce_from_logits_derivative(z: Matrix, t: Matrix) -> Matrix:
    # d/dz_j -sum_k t_k log softmax(z)_k = softmax(z)_j * sum_k t_k - t_j (targets need not sum to 1)
    return _softmax(z) * t.sum(axis=-1, keepdims=True) - t


#: d(per-example loss)/d(pred), shape (batch, n).
PER_EXAMPLE_DERIVATIVES: dict[str, Callable[[Matrix, Matrix], Matrix]] = {
    "half_se": lambda p, t: p - t,  # d/dp 0.5 (p - t)^2
    "mse": lambda p, t: 2.0 * (p - t) / p.shape[-1],  # d/dp mean_k (p - t)^2
    "cross_entropy": lambda p, t: -t / p,  # d/dp -t log p
    "softmax_cross_entropy": _softmax_ce_from_logits_derivative,  # softmax(z) sum_k t_k - t
    "binary_cross_entropy": lambda p, t: (p - t) / (p * (1.0 - p)),  # -t/p + (1-t)/(1-p)
}


def loss_value(name: str, pred: Matrix, target: Matrix) -> float:
    """The batch-mean loss."""
    return float(np.mean(PER_EXAMPLE_LOSSES[name](pred, target)))


def loss_derivative(name: str, pred: Matrix, target: Matrix) -> Matrix:
    """``dL/dpred`` of the batch-mean loss, shape ``(batch, n)`` (the 1/batch factor included)."""
    return PER_EXAMPLE_DERIVATIVES[name](pred, target) / pred.shape[0]


def sgd(params: Any, grads: Any, lr: float) -> list[dict[str, Matrix]]:
    """``p - lr * g`` for every parameter, in float64."""
    return [
        {key: np.asarray(layer[key], np.float64) - lr * grad[key] for key in layer}
        for layer, grad in zip(params, grads, strict=True)
    ]
