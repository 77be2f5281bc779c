"""The MLP's forward and backward pass by the explicit chain rule, in NumPy float64."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxbp.manual.elementwise import (
    ACTIVATIONS,
    PER_EXAMPLE_LOSSES,
    Matrix,
    activation_derivative,
    loss_derivative,
    loss_value,
)

if TYPE_CHECKING:
    from jaxbp.model.mlp import MLP


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
