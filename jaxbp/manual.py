"""The chain rule by hand, in NumPy float64: the teaching tool and the test oracle.

Nothing here uses JAX. The forward pass records, for every layer ``l = 1..L`` (list index
``l - 1``), the pre-activation and the activation::

    z_l = a_{l-1} @ W_l + b_l      # (batch, fan_in) @ (fan_in, fan_out) + (fan_out,)
    a_l = f_l(z_l)                 # a_0 = x

The backward pass walks from the loss to the input, one layer at a time::

    dL/da_L = loss'(a_L, y)                          # derivative of the batch-mean loss
    delta_l = dL/dz_l = dL/da_l * f_l'(z_l)          # element-wise activations
            = J_l^T dL/da_l                          # softmax: full Jacobian per example
    dL/dW_l = a_{l-1}^T @ delta_l                    # (fan_in, batch) @ (batch, fan_out)
    dL/db_l = sum over the batch of delta_l          # (fan_out,)
    dL/da_{l-1} = delta_l @ W_l^T                    # (batch, fan_out) @ (fan_out, fan_in)

Every derivative is written out below, next to its function, so a reader can follow a worked
example line by line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from jaxbp.mlp import MLP

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


#: f(z) for each activation.
ACTIVATIONS: dict[str, Callable[[Matrix], Matrix]] = {
    "linear": lambda z: z,
    "relu": lambda z: np.maximum(z, 0.0),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "softmax": _softmax,
}

#: f'(z) for the element-wise activations, written with a = f(z) where that is the usual form.
DERIVATIVES: dict[str, Callable[[Matrix], Matrix]] = {
    "linear": lambda z: np.ones_like(z),  # d z / d z = 1
    "relu": lambda z: (z > 0).astype(z.dtype),  # 1 if z > 0 else 0 (0 at z = 0)
    "sigmoid": lambda z: _sigmoid(z) * (1.0 - _sigmoid(z)),  # a (1 - a)
    "tanh": lambda z: 1.0 - np.tanh(z) ** 2,  # 1 - a^2
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


def softmax_cross_entropy_delta(probabilities: Matrix, target: Matrix) -> Matrix:
    """The simplified ``dL/dz = (p - t) / batch`` of cross-entropy on a softmax output.

    Equals ``J^T (-t / p) / batch`` (the full-Jacobian route) when every target row sums to one.
    """
    return (probabilities - target) / probabilities.shape[0]


# --- the network ----------------------------------------------------------------------------
@dataclasses.dataclass
class Forward:
    """Everything the forward pass computed, per layer (list index ``l - 1`` for layer ``l``).

    Attributes:
        inputs: ``a_{l-1}``, the input of each layer; ``inputs[0]`` is ``x``.
        products: ``a_{l-1} @ W_l`` before the bias.
        pre_activations: ``z_l``.
        activations: ``a_l``; ``activations[-1]`` is the network output.
    """

    inputs: list[Matrix]
    products: list[Matrix]
    pre_activations: list[Matrix]
    activations: list[Matrix]


@dataclasses.dataclass
class Backward:
    """Everything the backward pass computed, per layer (list index ``l - 1`` for layer ``l``).

    Attributes:
        loss: the batch-mean loss.
        forward: the recorded forward pass.
        dloss_dactivations: ``dL/da_l``, ``(batch, n_l)``.
        activation_derivatives: ``da_l/dz_l``, ``(batch, n_l)`` or ``(batch, n_l, n_l)`` (softmax).
        deltas: ``dL/dz_l``, ``(batch, n_l)``.
        dloss_dinputs: ``dL/da_{l-1}``, ``(batch, n_{l-1})``.
        grads: ``[{"w": dL/dW_l, "b": dL/db_l}, ...]``, the layout of params.
    """

    loss: float
    forward: Forward
    dloss_dactivations: list[Matrix]
    activation_derivatives: list[Matrix]
    deltas: list[Matrix]
    dloss_dinputs: list[Matrix]
    grads: list[dict[str, Matrix]]


def _as_float64(params: Any) -> list[dict[str, Matrix]]:
    return [
        {key: np.asarray(value, np.float64) for key, value in layer.items()} for layer in params
    ]


def _as_batch(value: Any) -> Matrix:
    return np.atleast_2d(np.asarray(value, np.float64))


def check_params(where: str, spec: MLP, params: Any) -> None:
    """Refuse params that do not match the spec exactly: the oracle is the strictest check of all.

    Every layer needs ``"w"`` of shape ``(fan_in, fan_out)`` and, exactly when the spec gives it a
    bias, ``"b"`` of shape ``(fan_out,)``; nothing is filled in (no zero bias for a missing one).
    """
    if not isinstance(params, list | tuple) or len(params) != spec.num_layers:
        count = len(params) if isinstance(params, list | tuple) else type(params).__name__
        raise ValueError(
            f"{where}: params must be a list of {spec.num_layers} layer dicts for the spec "
            f"{spec.sizes}, got {count}."
        )
    for i, (layer, (fan_in, fan_out), has_bias) in enumerate(
        zip(params, spec.layer_shapes, spec.layer_bias, strict=True)
    ):
        expected = {"w", "b"} if has_bias else {"w"}
        if not hasattr(layer, "keys") or set(layer.keys()) != expected:
            keys = sorted(layer.keys()) if hasattr(layer, "keys") else type(layer).__name__
            raise ValueError(
                f"{where}: params[{i}] has keys {keys} but layer {i} expects {sorted(expected)} "
                f"(bias={has_bias}); the manual chain rule never assumes a zero bias."
            )
        shapes = {"w": (fan_in, fan_out), "b": (fan_out,)}
        for name in sorted(expected):
            if np.shape(layer[name]) != shapes[name]:
                raise ValueError(
                    f'{where}: params[{i}]["{name}"] has shape {np.shape(layer[name])} but the '
                    f"spec expects {shapes[name]}."
                )


def _check_rows(where: str, name: str, value: Matrix, width: int, what: str) -> None:
    if value.ndim != 2 or value.shape[1] != width or value.shape[0] == 0:
        raise ValueError(
            f"{where}: {name} has shape {value.shape} but the network has {width} {what}; pass "
            f"{name} of shape ({width},) or (batch, {width})."
        )


def forward(spec: MLP, params: Any, x: Any) -> Forward:
    """The forward pass in float64, recording every layer.

    Args:
        spec: the architecture.
        params: parameters in the layout of ``MLP.init`` (any array type).
        x: ``(batch, sizes[0])`` or ``(sizes[0],)``.

    Raises:
        ValueError: when params or x do not match the spec exactly.
    """
    check_params("manual.forward", spec, params)
    params = _as_float64(params)
    a = _as_batch(x)
    _check_rows("manual.forward", "x", a, spec.sizes[0], "input features")
    record = Forward(inputs=[], products=[], pre_activations=[], activations=[])
    for layer, name in zip(params, spec.activations, strict=True):
        record.inputs.append(a)
        product = a @ layer["w"]  # (batch, fan_in) @ (fan_in, fan_out)
        z = product + layer["b"] if "b" in layer else product  # + (fan_out,)
        a = ACTIVATIONS[name](z)
        record.products.append(product)
        record.pre_activations.append(z)
        record.activations.append(a)
    return record


def backward(spec: MLP, loss: str, params: Any, x: Any, y: Any) -> Backward:
    """The forward pass, the loss, and the backward pass layer by layer, all recorded.

    Args:
        spec: the architecture.
        loss: a name in ``PER_EXAMPLE_LOSSES``.
        params: parameters in the layout of ``MLP.init``.
        x: ``(batch, sizes[0])`` or ``(sizes[0],)``.
        y: ``(batch, sizes[-1])`` or ``(sizes[-1],)``.
    """
    if loss not in PER_EXAMPLE_LOSSES:
        raise ValueError(
            f"manual.backward: unknown loss {loss!r}; valid names are "
            f"{', '.join(sorted(PER_EXAMPLE_LOSSES))}."
        )
    params = _as_float64(params)
    y = _as_batch(y)
    fwd = forward(spec, params, x)
    _check_rows("manual.backward", "y", y, spec.sizes[-1], "outputs")
    if y.shape[0] != fwd.inputs[0].shape[0]:
        raise ValueError(
            f"manual.backward: y has {y.shape[0]} rows but x has {fwd.inputs[0].shape[0]}."
        )
    output = fwd.activations[-1]
    num_layers = len(params)
    dloss_da: list[Matrix] = [np.empty(0)] * num_layers
    da_dz: list[Matrix] = [np.empty(0)] * num_layers
    deltas: list[Matrix] = [np.empty(0)] * num_layers
    dloss_dinputs: list[Matrix] = [np.empty(0)] * num_layers
    grads: list[dict[str, Matrix]] = [{} for _ in params]

    upstream = loss_derivative(loss, output, y)  # dL/da_L, (batch, n_L)
    for l in reversed(range(num_layers)):  # noqa: E741  (l is the layer index of the equations)
        name, z = spec.activations[l], fwd.pre_activations[l]
        derivative = activation_derivative(name, z)
        if name == "softmax":
            delta = np.einsum("nij,ni->nj", derivative, upstream)  # J^T dL/da, per example
        else:
            delta = upstream * derivative  # dL/da * f'(z), element-wise
        dloss_da[l], da_dz[l], deltas[l] = upstream, derivative, delta
        grads[l]["w"] = fwd.inputs[l].T @ delta  # (fan_in, batch) @ (batch, fan_out)
        if "b" in params[l]:
            grads[l]["b"] = delta.sum(axis=0)  # (fan_out,)
        upstream = delta @ params[l]["w"].T  # dL/da_{l-1}: (batch, fan_out) @ (fan_out, fan_in)
        dloss_dinputs[l] = upstream
    return Backward(
        loss=loss_value(loss, output, y),
        forward=fwd,
        dloss_dactivations=dloss_da,
        activation_derivatives=da_dz,
        deltas=deltas,
        dloss_dinputs=dloss_dinputs,
        grads=grads,
    )


def backprop(
    spec: MLP, loss: str, params: Any, x: Any, y: Any
) -> tuple[float, list[dict[str, Matrix]]]:
    """``(loss, grads)`` by the explicit chain rule, float64; ``grads`` has the layout of params."""
    record = backward(spec, loss, params, x, y)
    return record.loss, record.grads


def sgd(params: Any, grads: Any, lr: float) -> list[dict[str, Matrix]]:
    """``p - lr * g`` for every parameter, in float64."""
    return [
        {key: np.asarray(layer[key], np.float64) - lr * grad[key] for key in layer}
        for layer, grad in zip(params, grads, strict=True)
    ]
