"""The numbers of the conv worked example, layer by layer, in NumPy float64.

:func:`forward_backward` records every quantity of one forward and backward pass through a
Sequential of Conv1D, MaxPool1D/AvgPool1D, Flatten and Dense layers (a convolution as im2col,
:func:`jaxbp.manual.layers.im2col`, its input gradient as col2im); :class:`LayerStep` holds one
layer's quantities under the names of :mod:`jaxbp.worked.conv_trace`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from jaxbp import manual
from jaxbp.layers import specs
from jaxbp.layers.sequential import Sequential
from jaxbp.manual import layers as manual_layers

KINDS = {
    specs.Conv1D: "conv1d",
    specs.MaxPool1D: "maxpool1d",
    specs.AvgPool1D: "avgpool1d",
    specs.Flatten: "flatten",
    specs.Dense: "dense",
}


@dataclasses.dataclass
class LayerStep:
    """Layer ``l``: its kind, a one-line description and its quantities under jaxbp names.

    ``quantities`` holds, by kind (``l`` the index; shapes for a batch of ``B``):
    conv1d: ``a{l-1}_pad`` (padded input, only with padding), ``patches{l}`` (B*P, k*C_in),
    ``W{l}`` (k, C_in, C_out), ``K{l}`` (k*C_in, C_out), ``b{l}``, ``xw{l}``/``z{l}``/``a{l}``
    (B, P, C_out), ``dL_da{l}``, ``da_dz{l}``, ``delta{l}`` (B, P, C_out), ``dK{l}``, ``dW{l}``,
    ``db{l}``, ``dpatches{l}`` (B*P, k*C_in), ``dL_da{l-1}``; dense: as in :class:`jaxbp.Trace`;
    pooling: ``a{l}``, ``argmax{l}`` (max: the winning offset per window), ``dL_da{l}``,
    ``dL_da{l-1}``; flatten: ``a{l}``, ``dL_da{l}``, ``dL_da{l-1}``. Updated parameters are
    ``W{l}_new``/``b{l}_new``; ``a{l}_new`` (and ``z{l}_new``) the forward pass after the step.
    ``activation`` (conv, dense), ``window`` (kernel or pooling window) and ``stride`` (conv,
    pooling) are ``None`` where the layer has none.
    """

    index: int
    kind: str
    description: str
    activation: str | None
    window: int | None
    stride: int | None
    quantities: dict[str, np.ndarray]


def describe(layer: Any) -> str:
    """A layer in words: ``Conv1D: 2 filters of width 3, stride 1, relu``."""
    if isinstance(layer, specs.Conv1D):
        filters = "filter" if layer.features == 1 else "filters"
        pads = "" if layer.padding == "VALID" else f", padding {layer.padding}"
        return (
            f"Conv1D: {layer.features} {filters} of width {layer.kernel_size[0]}, stride "
            f"{layer.stride[0]}{pads}, {layer.activation}{'' if layer.bias else ', no bias'}"
        )
    if isinstance(layer, specs.MaxPool1D | specs.AvgPool1D):
        kind = "max" if layer.kind == "max" else "average"
        return f"{type(layer).__name__}: {kind} over windows of {layer.window[0]}, stride {layer.stride[0]}"
    if isinstance(layer, specs.Flatten):
        return "Flatten: (positions, channels) to one row, channels fastest"
    units = "unit" if layer.features == 1 else "units"
    return f"Dense: {layer.features} {units}, {layer.activation}{'' if layer.bias else ', no bias'}"


def param_name(key: str, n: int) -> str:
    """The jaxbp name of parameter ``key`` (``"w"``, ``"b"``) of layer ``n``: ``W1``, ``b2``."""
    return f"{'W' if key == 'w' else key}{n}"


def sgd(params: Sequence[dict[str, np.ndarray]], grads: Any, lr: float) -> list[dict[str, Any]]:
    """``p - lr * dL/dp`` for every parameter, a new list."""
    return [{k: p[k] - lr * g[k] for k in p} for p, g in zip(params, grads, strict=True)]


def _activate(name: str, z: np.ndarray) -> np.ndarray:
    return manual.ACTIVATIONS[name](z.reshape(-1, z.shape[-1])).reshape(z.shape)


def _forward_layer(layer: Any, p: dict[str, np.ndarray], a_prev: np.ndarray, n: int) -> dict:
    """Layer ``n``'s forward quantities from its input ``a_prev = a{n-1}``."""
    q: dict[str, np.ndarray] = {}
    if isinstance(layer, specs.Conv1D):
        pads = specs.conv_pads(layer, a_prev.shape[1:-1])
        padded = np.pad(a_prev, ((0, 0), *pads, (0, 0)))
        if pads != ((0, 0),):
            q[f"a{n - 1}_pad"] = padded
        windows = manual_layers.im2col(padded, layer.kernel_size, layer.stride)  # (B, P, k, C)
        batch, positions = windows.shape[:2]
        q[f"patches{n}"] = windows.reshape(batch * positions, -1)  # (B*P, k*C_in)
        q[f"W{n}"] = p["w"]
        q[f"K{n}"] = p["w"].reshape(-1, layer.features)  # (k*C_in, C_out)
        product = q[f"patches{n}"] @ q[f"K{n}"]  # (B*P, k*C_in) @ (k*C_in, C_out)
        q[f"xw{n}"] = product.reshape(batch, positions, layer.features)
    elif isinstance(layer, specs.Dense):
        q[f"W{n}"] = p["w"]
        q[f"xw{n}"] = a_prev @ p["w"]  # (B, fan_in) @ (fan_in, n)
    elif isinstance(layer, specs.Flatten):
        q[f"a{n}"] = a_prev.reshape(len(a_prev), -1)  # row-major: channels vary fastest
        return q
    else:  # pooling
        windows = manual_layers.im2col(a_prev, layer.window, layer.stride)  # (B, P, w, C)
        if layer.kind == "max":
            q[f"argmax{n}"] = windows.argmax(axis=-2).astype(np.float64)  # (B, P, C)
            q[f"a{n}"] = windows.max(axis=-2)
        else:
            q[f"a{n}"] = windows.mean(axis=-2)
        return q
    if "b" in p:
        q[f"b{n}"] = p["b"]
    q[f"z{n}"] = q[f"xw{n}"] + p.get("b", 0.0)
    q[f"a{n}"] = _activate(layer.activation, q[f"z{n}"])
    return q


def _backward_layer(layer: Any, q: dict, upstream: np.ndarray, n: int) -> np.ndarray:
    """Layer ``n``'s backward quantities into ``q``; returns ``dL/da{n-1}``."""
    q[f"dL_da{n}"] = upstream
    if isinstance(layer, specs.Flatten):
        shape = (len(upstream), *q["_input_shape"])
        downstream = upstream.reshape(shape)
    elif isinstance(layer, specs.MaxPool1D | specs.AvgPool1D):
        windows_shape = (*upstream.shape[:2], layer.window[0], upstream.shape[-1])
        if layer.kind == "max":  # the window's maximum alone received the output
            dwindows = np.zeros(windows_shape)
            winner = q[f"argmax{n}"].astype(int)[:, :, None, :]
            np.put_along_axis(dwindows, winner, upstream[:, :, None, :], axis=-2)
        else:  # every entry weighs 1 / window in the mean
            dwindows = np.broadcast_to(upstream[:, :, None, :] / layer.window[0], windows_shape)
        downstream = manual_layers.col2im(dwindows, q["_input_shape_b"], layer.window, layer.stride)
    else:
        z = q[f"z{n}"]
        if layer.activation == "softmax":  # dense only: dL/dz = J^T dL/da
            jacobian = manual.softmax_jacobian(z)  # (B, n, n)
            q[f"da_dz{n}"] = jacobian
            q[f"delta{n}"] = np.einsum("bij,bi->bj", jacobian, upstream)
        else:
            q[f"da_dz{n}"] = manual.DERIVATIVES[layer.activation](z)  # f'(z)
            q[f"delta{n}"] = upstream * q[f"da_dz{n}"]  # dL/da ⊙ f'(z)
        delta = q[f"delta{n}"]
        if isinstance(layer, specs.Dense):
            q[f"dW{n}"] = q["_input"].T @ delta  # (fan_in, B) @ (B, n)
            downstream = delta @ q[f"W{n}"].T  # (B, n) @ (n, fan_in)
        else:
            rows = delta.reshape(-1, delta.shape[-1])  # (B*P, C_out)
            q[f"dK{n}"] = q[f"patches{n}"].T @ rows  # (k*C_in, B*P) @ (B*P, C_out)
            q[f"dW{n}"] = q[f"dK{n}"].reshape(q[f"W{n}"].shape)
            q[f"dpatches{n}"] = rows @ q[f"K{n}"].T  # (B*P, C_out) @ (C_out, k*C_in)
            padded_shape = q.get(f"a{n - 1}_pad", q["_input"]).shape
            windows = q[f"dpatches{n}"].reshape(
                *delta.shape[:2], layer.kernel_size[0], padded_shape[-1]
            )
            dpadded = manual_layers.col2im(windows, padded_shape, layer.kernel_size, layer.stride)
            (low, high), length = (
                specs.conv_pads(layer, q["_input"].shape[1:-1])[0],
                padded_shape[1],
            )
            if f"a{n - 1}_pad" in q:
                q[f"dL_da{n - 1}_pad"] = dpadded
            downstream = dpadded[:, low : length - high, :]  # the padding's gradient is dropped
        if f"b{n}" in q:
            q[f"db{n}"] = delta.reshape(-1, delta.shape[-1]).sum(axis=0)  # sum over rows
    q[f"dL_da{n - 1}"] = downstream
    return downstream


def forward_backward(
    spec: Sequential, loss: str, params: list[dict[str, np.ndarray]], x: np.ndarray, y: np.ndarray
) -> tuple[list[LayerStep], float]:
    """Every layer's forward and backward quantities, and the batch-mean loss (float64)."""
    records: list[dict[str, Any]] = []
    a = x
    for index, (layer, p) in enumerate(zip(spec.layers, params, strict=True)):
        q = _forward_layer(layer, p, a, index + 1)
        q |= {"_input": a, "_input_shape": a.shape[1:], "_input_shape_b": a.shape}
        records.append(q)
        a = q[f"a{index + 1}"]
    value = manual.loss_value(loss, a, y)
    upstream = manual.loss_derivative(loss, a, y)  # dL/d(prediction), 1/batch included
    for index in reversed(range(len(spec.layers))):
        upstream = _backward_layer(spec.layers[index], records[index], upstream, index + 1)
    steps = [
        LayerStep(
            index=index + 1,
            kind=KINDS[type(layer)],
            description=describe(layer),
            activation=getattr(layer, "activation", None),
            window=_first(getattr(layer, "kernel_size", getattr(layer, "window", None))),
            stride=_first(getattr(layer, "stride", None)),
            quantities={k: v for k, v in q.items() if not k.startswith("_")},
        )
        for index, (layer, q) in enumerate(zip(spec.layers, records, strict=True))
    ]
    return steps, value


def _first(value: tuple[int, ...] | None) -> int | None:
    return None if value is None else value[0]


def after_step(
    spec: Sequential, loss: str, params: list[dict[str, Any]], x: np.ndarray, y: np.ndarray
) -> tuple[list[dict[str, np.ndarray]], float]:
    after, a = [], x
    for index, (layer, p) in enumerate(zip(spec.layers, params, strict=True)):
        n = index + 1
        q = _forward_layer(layer, p, a, n)
        a = q[f"a{n}"]
        after.append({f"{k}_new": q[k] for k in (f"z{n}", f"a{n}") if k in q})
    return after, manual.loss_value(loss, a, y)


def history(
    spec: Sequential,
    loss: str,
    params: list[dict[str, Any]],
    x: np.ndarray,
    y: np.ndarray,
    lr: float,
    steps: int,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """The loss before each of ``steps`` SGD steps and after the last one; ``on_step(step,
    loss)`` is called after each step (progress of a long run)."""
    losses = []
    for step in range(1, steps + 1):
        value, grads = manual_layers.backprop(spec, loss, params, x, y)
        losses.append(value)
        params = sgd(params, grads, lr)
        if on_step is not None:
            on_step(step, value)
    losses.append(after_step(spec, loss, params, x, y)[1])
    return losses


#: The layers the conv worked example shows.
SUPPORTED = (specs.Conv1D, specs.MaxPool1D, specs.AvgPool1D, specs.Flatten, specs.Dense)


def check_network(where: str, spec: Any) -> None:
    """Refuse a network the conv worked example cannot show, naming the layer and what fits."""
    if not isinstance(spec, Sequential):
        raise TypeError(
            f"{where}: spec must be a jaxbp.Sequential of Conv1D, MaxPool1D, AvgPool1D, Flatten "
            f"and Dense layers, got {type(spec).__name__}; for an MLP use jaxbp.worked."
        )
    for index, layer in enumerate(spec.layers):
        if not isinstance(layer, SUPPORTED):
            raise ValueError(
                f"{where}: layer {index} is {type(layer).__name__}; the worked example shows "
                f"{', '.join(t.__name__ for t in SUPPORTED)} layers."
            )
        if isinstance(layer, specs.Conv1D) and layer.activation == "softmax":
            raise ValueError(
                f"{where}: layer {index} (Conv1D) has a softmax activation; use softmax on the "
                "Dense output layer only."
            )
    if len(spec.output_shape) != 1:
        raise ValueError(
            f"{where}: the network's output has shape {spec.output_shape} per example; the losses "
            "take (batch, outputs), so end it with Flatten() or Dense."
        )
