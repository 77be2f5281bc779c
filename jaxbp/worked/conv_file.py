"""A 1-D CNN as a network file for ``jaxbp explain --network FILE``, and the built-in ``conv1d``.

A conv network file is a network file (:mod:`jaxbp.worked.network_file`) with ``input_shape`` and
``layers`` in place of ``sizes``, ``activations`` and ``bias``::

    {
      "input_shape": [6, 1],                  # one example: (length, channels)
      "layers": [
        {"type": "conv1d", "features": 2, "kernel_size": 3, "activation": "relu"},
        {"type": "flatten"},
        {"type": "dense", "features": 1}
      ],
      "params": [{"w": (kernel, C_in, C_out), "b": (C_out,)}, {}, {"w": ..., "b": ...}],
      "x": (batch, length, channels) or (length, channels),
      "y": (batch, outputs) or (outputs,),
      "loss": "half_se", "lr": 0.1, "name": "my CNN"
    }

Layer types and their keys (defaults in brackets): ``conv1d``: ``features``, ``kernel_size``,
``stride`` [1], ``padding`` ["VALID"; "SAME", an int or [low, high]], ``activation``
["linear"], ``bias`` [true]; ``maxpool1d``/``avgpool1d``: ``window``, ``stride`` [window];
``flatten``; ``dense``: ``features``, ``activation`` ["linear"], ``bias`` [true]. ``params`` has
one object per layer, ``{}`` for a layer without parameters, in the layout of
``jaxbp.Sequential.init``. Every problem raises :class:`NetworkFileError` naming the file and the
key, before anything is computed.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from jaxbp.layers import specs
from jaxbp.layers.sequential import Sequential, check_params
from jaxbp.model import checks as _checks
from jaxbp.model.losses import LOSSES
from jaxbp.worked.conv_steps import check_network
from jaxbp.worked.network_file import (
    MAX_LAYERS,
    NetworkFileError,
    _check_example_counts,
    _check_keys,
    _numeric,
    _short,
    title_of,
)

REQUIRED = {
    "input_shape": "one example's (length, channels), e.g. [6, 1]",
    "layers": 'the layers, e.g. [{"type": "conv1d", "features": 2, "kernel_size": 3}, ...]',
    "params": "one object per layer, {} for a layer without parameters",
    "x": "the input, (batch, length, channels)",
    "y": "the target, e.g. [[1]]",
    "loss": 'a loss name, e.g. "half_se"',
    "lr": "the SGD learning rate, e.g. 0.1",
}
OPTIONAL = ("name",)
LAYER_KEYS = {
    "conv1d": ("features", "kernel_size", "stride", "padding", "activation", "bias"),
    "maxpool1d": ("window", "stride"),
    "avgpool1d": ("window", "stride"),
    "flatten": (),
    "dense": ("features", "activation", "bias"),
}
LAYER_REQUIRED = {"conv1d": ("features", "kernel_size"), "dense": ("features",)}
LAYER_REQUIRED |= {"maxpool1d": ("window",), "avgpool1d": ("window",)}
_CLASSES = {
    "conv1d": specs.Conv1D,
    "maxpool1d": specs.MaxPool1D,
    "avgpool1d": specs.AvgPool1D,
    "flatten": specs.Flatten,
    "dense": specs.Dense,
}
#: At most this many numbers in one example at any layer (every one of them is printed).
MAX_VALUES = 64

#: The built-in conv example: a network file, as ``--write-network`` writes it.
CONV1D: dict[str, Any] = {
    "name": "conv1d",
    "input_shape": [6, 1],
    "layers": [
        {"type": "conv1d", "features": 2, "kernel_size": 3, "stride": 1, "activation": "relu"},
        {"type": "flatten"},
        {"type": "dense", "features": 1, "activation": "linear"},
    ],
    "params": [
        {"w": [[[1.0, 0.5]], [[0.5, 1.0]], [[-1.0, 0.5]]], "b": [0.1, -0.5]},
        {},
        {"w": [[0.5], [-0.5], [0.25], [0.5], [-0.25], [0.5], [0.25], [-0.5]], "b": [0.2]},
    ],
    "x": [[[1.0], [2.0], [-1.0], [0.0], [3.0], [1.0]]],
    "y": [[1.0]],
    "loss": "half_se",
    "lr": 0.02,
}
CONV_EXAMPLES = {"conv1d": CONV1D}
CONV_TITLES = {
    "conv1d": "1-D CNN: input length 6, 2 filters of width 3, ReLU, flatten, dense to 1 output, "
    "half squared error, lr 0.02",
}


@dataclasses.dataclass(frozen=True)
class ConvNetworkFile:
    """A validated conv network file, ready for :func:`jaxbp.worked.conv_trace.explain_sequential`."""

    name: str
    spec: Sequential
    params: list[dict[str, np.ndarray]]
    x: np.ndarray
    y: np.ndarray
    loss: str
    learning_rate: float


def is_conv(data: Any) -> bool:
    """Whether decoded network-file JSON describes layers (a conv network) rather than sizes."""
    return isinstance(data, dict) and "layers" in data and "sizes" not in data


def parse(data: Any, where: str = "network") -> ConvNetworkFile:
    """Validate the decoded JSON object of a conv network file (see the module docstring)."""
    _check_keys(data, where, REQUIRED, OPTIONAL, "conv network file", " in a conv network file")
    spec = _spec(data, where)
    _check_example_counts(data, where)
    params = _params(data["params"], spec, where)
    x = _numeric(data["x"], "x", where)
    y = _numeric(data["y"], "y", where)
    x = x[None] if x.shape == spec.input_shape else x
    if x.shape[1:] != spec.input_shape or len(x) == 0:
        raise NetworkFileError(
            f"{where}: x has shape {x.shape} but the network takes examples of shape "
            f"{spec.input_shape}; pass x of shape (batch, {', '.join(map(str, spec.input_shape))})."
        )
    y = y[None] if y.shape == spec.output_shape else y
    if y.shape != (len(x), *spec.output_shape):
        raise NetworkFileError(
            f"{where}: y has shape {y.shape} but the network gives {(len(x), *spec.output_shape)} "
            f"for {len(x)} examples; pass y of that shape."
        )
    try:
        loss = _checks.check_name(where, "loss", data["loss"], LOSSES)
        if isinstance(data["lr"], bool) or not isinstance(data["lr"], int | float):
            raise ValueError(f"{where}: lr must be a number like 0.1, got {_short(data['lr'])}.")
        _checks.check_learning_rate(where, data["lr"])
    except (ValueError, TypeError) as error:
        raise NetworkFileError(str(error)) from None
    name = title_of(data, where)
    return ConvNetworkFile(name, spec, params, x, y, loss, float(data["lr"]))


def _spec(data: dict[str, Any], where: str) -> Sequential:
    shape, layers = data["input_shape"], data["layers"]
    if not (
        isinstance(shape, list)
        and len(shape) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape)
    ):
        raise NetworkFileError(
            f"{where}: input_shape must be [length, channels], two positive integers like "
            f"[6, 1], got {_short(shape)}."
        )
    if not isinstance(layers, list) or not 1 <= len(layers) <= MAX_LAYERS:
        raise NetworkFileError(
            f"{where}: layers must be a list of 1 to {MAX_LAYERS} layer objects like "
            f'{{"type": "conv1d", "features": 2, "kernel_size": 3}}, got {_short(layers)}.'
        )
    built = tuple(_layer(layer, index, where) for index, layer in enumerate(layers))
    try:
        spec = Sequential(built, input_shape=tuple(shape))
        check_network(where, spec)
    except (ValueError, TypeError) as error:
        message = str(error).removeprefix(f"{where}: ").removeprefix("Sequential: ")
        raise NetworkFileError(f"{where}: {message}") from None
    for index, layer_shape in enumerate(spec.shapes):
        if math.prod(layer_shape) > MAX_VALUES:
            what = "input" if index == 0 else f"layer {index - 1}'s output"
            raise NetworkFileError(
                f"{where}: the {what} has shape {layer_shape}, {math.prod(layer_shape)} numbers "
                f"per example; jaxbp explain prints every number for at most {MAX_VALUES}."
            )
    return spec


def _layer(value: Any, index: int, where: str) -> Any:
    label = f"layers[{index}]"
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in LAYER_KEYS:
        got = f"type {_short(kind)}" if isinstance(value, dict) else _short(value)
        raise NetworkFileError(
            f'{where}: {label} must be an object with "type" one of {", ".join(LAYER_KEYS)}, '
            f"got {got}."
        )
    fields = {key: entry for key, entry in value.items() if key != "type"}
    for key in fields:
        if key not in LAYER_KEYS[kind]:
            raise NetworkFileError(
                f"{where}: {label} ({kind}) has unknown key {_short(key)}; its keys are "
                f"{', '.join(LAYER_KEYS[kind]) or 'none'}."
            )
    for key in LAYER_REQUIRED.get(kind, ()):
        if key not in fields:
            raise NetworkFileError(f"{where}: {label} ({kind}) needs {key!r}.")
    if "bias" in fields and not isinstance(fields["bias"], bool):
        raise NetworkFileError(
            f"{where}: {label} ({kind}): bias must be true or false, got {_short(fields['bias'])}."
        )
    if isinstance(fields.get("padding"), list):
        fields["padding"] = tuple(fields["padding"])
    if isinstance(fields.get("features"), int) and fields["features"] > 16:
        raise NetworkFileError(
            f"{where}: {label} ({kind}) has {fields['features']} features; jaxbp explain prints "
            "every number for at most 16."
        )
    try:
        return _CLASSES[kind](**fields)
    except (ValueError, TypeError) as error:
        message = str(error).split(": ", 1)[-1]
        raise NetworkFileError(f"{where}: {label} ({kind}): {message}") from None


def _params(value: Any, spec: Sequential, where: str) -> list[dict[str, np.ndarray]]:
    if not isinstance(value, list) or not all(isinstance(layer, dict) for layer in value):
        raise NetworkFileError(
            f"{where}: params must be a list with one object per layer ({{}} for a layer "
            f"without parameters), got {_short(value)}."
        )
    params = [
        {key: _numeric(entry, f'params[{index}]["{key}"]', where) for key, entry in layer.items()}
        for index, layer in enumerate(value)
    ]
    try:
        check_params(where, spec, params)
    except (ValueError, TypeError) as error:
        raise NetworkFileError(str(error)) from None
    return params
