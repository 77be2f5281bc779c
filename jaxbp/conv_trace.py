"""One SGD step of a small 1-D CNN, number by number: ``explain_sequential(...) -> SequentialTrace``.

The network is a :class:`jaxbp.Sequential` of ``Conv1D``, ``MaxPool1D``/``AvgPool1D``, ``Flatten``
and ``Dense`` layers. Every number comes from the chain rule written out here in NumPy float64,
with a convolution as im2col (:func:`jaxbp.manual_layers.im2col`); then each quantity is
recomputed by JAX (:mod:`jaxbp._conv_verify`: ``lax.conv_general_dilated`` forward, ``jax.grad``
backward) and the trace is *verified* when every difference is within float64 round-off. Layers
are numbered ``l = 1..L`` and ``a0 = x``; the names follow :class:`jaxbp.Trace` (``z1``, ``dW2``,
``delta1``, ``W1_new``, ``loss_new``) plus those of the convolution::

    patches_l = im2col(a_{l-1})       # (B * positions, kernel * C_in): one window per row
    K_l       = W_l.reshape(kernel * C_in, C_out)
    z_l       = patches_l @ K_l + b_l,      a_l = f(z_l)
    delta_l   = dL/da_l * f'(z_l)          # (B * positions, C_out)
    dK_l      = patches_l^T @ delta_l,     db_l = sum over rows of delta_l
    dpatches_l = delta_l @ K_l^T,          dL/da_{l-1} = col2im(dpatches_l)  # scatter-add
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxbp import _checks, manual, manual_layers
from jaxbp._types import ArrayLike
from jaxbp._verify import Check
from jaxbp.layers import specs
from jaxbp.layers.sequential import Sequential, check_params
from jaxbp.losses import LOSSES

SUPPORTED = (specs.Conv1D, specs.MaxPool1D, specs.AvgPool1D, specs.Flatten, specs.Dense)
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


@dataclasses.dataclass
class SequentialTrace:
    """One forward pass, loss, backward pass and SGD update of a Sequential network.

    Attributes:
        shapes: per-example shapes, the input then each layer's output.
        loss_name, learning_rate: the loss (a name in ``jaxbp.LOSSES``) and the SGD step size.
        x, y: the batch, ``(B, *input_shape)`` and ``(B, outputs)``.
        loss, loss_after: the batch-mean loss before and after the update.
        layers: ``layers[l - 1]`` is layer ``l``.
        checks: manual chain rule against JAX, one per quantity.
        history: the loss before each of ``steps`` SGD steps and after the last one.
    """

    shapes: tuple[tuple[int, ...], ...]
    loss_name: str
    learning_rate: float
    x: np.ndarray
    y: np.ndarray
    loss: float
    loss_after: float
    layers: list[LayerStep]
    checks: list[Check]
    history: list[float]

    @property
    def verified(self) -> bool:
        """True when every quantity agrees with JAX within float64 round-off."""
        return all(check.verified for check in self.checks)

    def names(self) -> dict[str, Any]:
        """Every quantity under its jaxbp name (``x``, ``patches1``, ``dK1``, ``loss_new``, ...)."""
        names: dict[str, Any] = {"x": self.x, "y": self.y, "a0": self.x}
        names |= {"loss": self.loss, "loss_new": self.loss_after}
        for layer in self.layers:
            names |= layer.quantities
        return names

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: arrays become nested lists."""
        return _plain(dataclasses.asdict(self))

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_markdown(self, title: str = "A 1-D CNN, one SGD step", digits: int = 4) -> str:
        """The worked example as Markdown (:mod:`jaxbp.render._conv`), ``digits`` significant."""
        from jaxbp.render._conv import markdown

        return markdown(self, title, digits)

    def _repr_markdown_(self) -> str:
        """Jupyter: the worked example as Markdown."""
        return self.to_markdown()


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, np.floating | np.integer):
        return value.item()
    return value


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


def check_network(where: str, spec: Any) -> None:
    """Refuse a network the conv worked example cannot show, naming the layer and what fits."""
    if not isinstance(spec, Sequential):
        raise TypeError(
            f"{where}: spec must be a jaxbp.Sequential of Conv1D, MaxPool1D, AvgPool1D, Flatten "
            f"and Dense layers, got {type(spec).__name__}; for an MLP use jaxbp.explain."
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


def _check_data(where: str, spec: Sequential, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(_checks.as_float_array(where, "x", x), np.float64)
    if x.shape == spec.input_shape:
        x = x[None]
    if x.shape[1:] != spec.input_shape or x.shape[0] == 0:
        raise ValueError(
            f"{where}: x has shape {x.shape} but the network takes examples of shape "
            f"{spec.input_shape}; pass x of shape {spec.input_shape} or (batch, "
            f"{', '.join(map(str, spec.input_shape))})."
        )
    y = np.asarray(_checks.as_float_array(where, "y", y), np.float64)
    y = y[None] if y.shape == spec.output_shape else y
    if y.shape != (len(x), *spec.output_shape):
        raise ValueError(
            f"{where}: y has shape {y.shape} but the network gives predictions of shape "
            f"{(len(x), *spec.output_shape)} for {len(x)} examples; pass y of that shape."
        )
    return x, y


def explain_sequential(
    spec: Sequential,
    loss: str,
    params: Any,
    x: ArrayLike,
    y: ArrayLike,
    lr: float,
    *,
    steps: int = 1,
) -> SequentialTrace:
    """One SGD step of a 1-D CNN by the manual chain rule (im2col), checked against ``jax.grad``.

    Args:
        spec: a Sequential of Conv1D, MaxPool1D, AvgPool1D, Flatten and Dense layers whose output
            is ``(outputs,)`` per example.
        loss: a name in ``jaxbp.LOSSES``.
        params: the layout of ``spec.init`` (any float dtype; the arithmetic is float64).
        x: ``(batch, *spec.input_shape)`` or one example ``spec.input_shape``.
        y: ``(batch, outputs)`` or ``(outputs,)``.
        lr: the SGD learning rate, finite and > 0.
        steps: how many SGD steps ``history`` records (the trace details the first).

    Returns:
        A :class:`SequentialTrace`.

    Raises:
        ValueError, TypeError: on an unsupported layer or a bad params/x/y/loss/lr/steps.

    Example:
        >>> import jaxbp
        >>> from jaxbp.layers import Conv1D, Dense, Flatten
        >>> net = jaxbp.Sequential((Conv1D(1, 2), Flatten(), Dense(1)), input_shape=(3, 1))
        >>> params = [{"w": [[[1.0]], [[-1.0]]], "b": [0.0]}, {}, {"w": [[1.0], [2.0]], "b": [0.0]}]
        >>> trace = jaxbp.explain_sequential(net, "half_se", params, [[1.0], [3.0], [2.0]], [0.0], 0.1)
        >>> trace.names()["patches1"].tolist(), trace.loss, trace.verified
        ([[1.0, 3.0], [3.0, 2.0]], 0.0, True)
    """
    where = "explain_sequential"
    check_network(where, spec)
    check_params(where, spec, params)
    _checks.check_name(where, "loss", loss, LOSSES)
    _checks.check_learning_rate(where, lr)
    steps = _checks.check_positive_int(where, "steps", steps)
    x64, y64 = _check_data(where, spec, x, y)
    params64 = [{k: np.asarray(v, np.float64) for k, v in layer.items()} for layer in params]
    from jaxbp._conv_verify import jax_checks  # JAX is imported only for the check

    with np.errstate(all="ignore"):
        layers, value = forward_backward(spec, loss, params64, x64, y64)
        grads = [
            {k: layers[i].quantities[f"d{k.upper() if k == 'w' else k}{i + 1}"] for k in p}
            for i, p in enumerate(params64)
        ]
        new_params = sgd(params64, grads, float(lr))
        after, loss_after = _after(spec, loss, new_params, x64, y64)
        history = _history(spec, loss, params64, x64, y64, float(lr), steps)
    for index, layer in enumerate(layers):
        for key, new in new_params[index].items():
            layer.quantities[f"{key.upper() if key == 'w' else key}{index + 1}_new"] = new
        layer.quantities |= after[index]
    return SequentialTrace(
        shapes=spec.shapes,
        loss_name=loss,
        learning_rate=float(lr),
        x=x64,
        y=y64,
        loss=value,
        loss_after=loss_after,
        layers=layers,
        checks=jax_checks(spec, loss, params64, x64, y64, layers, value),
        history=history,
    )


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


def _after(
    spec: Sequential, loss: str, params: list[dict[str, Any]], x: np.ndarray, y: np.ndarray
) -> tuple[list[dict[str, np.ndarray]], float]:
    after, a = [], x
    for index, (layer, p) in enumerate(zip(spec.layers, params, strict=True)):
        n = index + 1
        q = _forward_layer(layer, p, a, n)
        a = q[f"a{n}"]
        after.append({f"{k}_new": q[k] for k in (f"z{n}", f"a{n}") if k in q})
    return after, manual.loss_value(loss, a, y)


def _history(
    spec: Sequential,
    loss: str,
    params: list[dict[str, Any]],
    x: np.ndarray,
    y: np.ndarray,
    lr: float,
    steps: int,
) -> list[float]:
    history = []
    for _ in range(steps):
        value, grads = manual_layers.backprop(spec, loss, params, x, y)
        history.append(value)
        params = sgd(params, grads, lr)
    history.append(_after(spec, loss, params, x, y)[1])
    return history
