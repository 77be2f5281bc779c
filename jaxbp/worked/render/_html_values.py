"""The numbers the interactive page starts from, and the network its script reads.

:func:`values_of` gives every number of the page under its name (those of
:meth:`jaxbp.worked.trace.Trace.names`, plus ``lr``), with frozen parameters left without update;
:func:`data_json` is the JSON of the ``<script class="jaxbp-data">`` block: the architecture, the
loss, the frozen names and the initial values that ``page.js`` recomputes from.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxbp import manual

if TYPE_CHECKING:
    from jaxbp.worked.trace import Trace


def _parameter_names(trace: Trace) -> list[str]:
    names = []
    for layer in trace.layers:
        names.append(f"W{layer.index}")
        if layer.bias is not None:
            names.append(f"b{layer.index}")
    return names


def frozen_names(trace: Trace, frozen: Sequence[str] | None) -> tuple[str, ...]:
    """The checked frozen names; ``None`` means the trace's own ``frozen`` (none without one)."""
    if frozen is None:
        frozen = getattr(trace, "frozen", None) or ()
    if isinstance(frozen, str):
        raise TypeError(
            f"html.page: frozen must be a list of names such as ['b1'], got {frozen!r}."
        )
    valid = _parameter_names(trace)
    unknown = [name for name in frozen if name not in valid]
    if unknown:
        raise ValueError(
            f"html.page: frozen has unknown parameter names {unknown}; this network's parameters "
            f"are {', '.join(valid)}."
        )
    return tuple(frozen)


def values_of(trace: Trace, frozen: tuple[str, ...]) -> dict[str, Any]:
    """Every number of the page under its name; frozen parameters keep their values."""
    values: dict[str, Any] = dict(trace.names()) | {"lr": trace.learning_rate}
    new_params, changed = [], False
    for layer in trace.layers:
        updated = {}
        for kind, old in (("W", layer.weights), ("b", layer.bias)):
            if old is None:
                continue
            name = f"{kind}{layer.index}"
            if name in frozen and not np.array_equal(values[f"{name}_new"], old):
                values[f"{name}_new"], changed = old, True
            updated["w" if kind == "W" else "b"] = np.asarray(values[f"{name}_new"])
        new_params.append(updated)
    if changed:  # the trace updated a frozen parameter: redo the pass after the update
        with np.errstate(all="ignore"):
            after = manual.forward(trace.spec, new_params, trace.x)
            values["loss_new"] = manual.loss_value(trace.loss_name, after.activations[-1], trace.y)
        for n in range(1, len(trace.layers) + 1):
            values[f"xw{n}_new"] = after.products[n - 1]
            values[f"z{n}_new"] = after.pre_activations[n - 1]
            values[f"a{n}_new"] = after.activations[n - 1]
    return values


def data_json(trace: Trace, title: str, digits: int, frozen: tuple[str, ...]) -> str:
    """The network, the frozen names and the initial values, as JSON safe inside ``<script>``."""
    initial: dict[str, Any] = {
        "x": trace.x.tolist(),
        "y": trace.y.tolist(),
        "lr": trace.learning_rate,
    }
    for layer in trace.layers:
        initial[f"W{layer.index}"] = layer.weights.tolist()
        if layer.bias is not None:
            initial[f"b{layer.index}"] = layer.bias.tolist()
    data = {
        "name": title,
        "sizes": list(trace.sizes),
        "activations": list(trace.activations),
        "bias": list(trace.bias),
        "loss": trace.loss_name,
        "units": list(trace.units),
        "frozen": list(frozen),
        "digits": digits,
        "initial": initial,
    }
    # "<" escaped so that no "</script>" can end the block early
    return json.dumps(data, allow_nan=False).replace("<", "\\u003c")
