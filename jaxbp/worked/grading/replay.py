"""One SGD step of a worked example recomputed with a slip: the replays behind a diagnosis.

:func:`run` does one forward pass, loss, backward pass and update in NumPy float64, as
:mod:`jaxbp.manual` does, with knobs that reproduce the usual slips of a hand calculation:

- ``rounding``: every intermediate rounded where it is used further (a student who writes 4
  decimals carries them on);
- ``skip_derivative``: a layer ``l`` whose ``delta_l`` is taken as ``dL/da_l`` (no ``f'(z_l)``);
- ``factor``: the factor on the gradient in the update, ``W - factor * dW`` (the learning rate
  applied twice, left out, with the wrong sign, or no step at all);
- ``overrides``: a student's own numbers, put in place of the computed entries as soon as each is
  computed, so everything after them is computed from them. The value each entry had *before*
  its own override (computed from the student's earlier numbers) is returned as ``implied``: a
  number that equals its implied value is right given the student's earlier numbers.

With no knob it gives the numbers of the Trace itself (the tests check it), under the names of
:meth:`jaxbp.worked.trace.Trace.names`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxbp.manual import elementwise as manual  # the oracle's pieces, one import deep

if TYPE_CHECKING:
    from jaxbp.model.mlp import MLP
    from jaxbp.worked.trace import Trace

Rounding = Callable[[np.ndarray], np.ndarray]
#: name -> {index tuple: value}: a student's numbers, entry by entry.
Overrides = Mapping[str, Mapping[tuple[int, ...], float]]


def exact(values: np.ndarray) -> np.ndarray:
    """No rounding."""
    return values


def round_decimals(decimals: int) -> Rounding:
    """Round to ``decimals`` places, as a student who writes 4 decimals carries them on."""

    def rounding(values: np.ndarray) -> np.ndarray:
        return np.round(values, decimals)

    return rounding


def round_significant(digits: int) -> Rounding:
    """Round to ``digits`` significant digits."""

    def rounding(values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, np.float64)
        with np.errstate(all="ignore"):
            magnitude = np.floor(np.log10(np.abs(np.where(values == 0, 1.0, values))))
            scale = 10.0 ** (magnitude - digits + 1)
            return np.where(np.isfinite(values), np.round(values / scale) * scale, values)

    return rounding


@dataclasses.dataclass(frozen=True)
class Step:
    """What one SGD step needs: the network, its parameters, the batch, the loss and ``lr``."""

    spec: MLP
    loss: str
    params: tuple[dict[str, np.ndarray], ...]
    x: np.ndarray
    y: np.ndarray
    learning_rate: float
    frozen: tuple[str, ...] = ()


def step_of(trace: Trace) -> Step:
    """The step a Trace details."""
    params = tuple(
        {"w": layer.weights} | ({} if layer.bias is None else {"b": layer.bias})
        for layer in trace.layers
    )
    return Step(
        trace.spec, trace.loss_name, params, trace.x, trace.y, trace.learning_rate, trace.frozen
    )


def perturbed(step: Step, salt: int) -> Step:
    """The same network with other parameters and another batch, drawn deterministically.

    Two expressions that agree on a step and on two of its perturbations are the same
    quantity written two ways (``-lr*dW1[1, 0]`` and ``W1_new[1, 0] - W1[1, 0]``).
    """
    seed = int.from_bytes(hashlib.sha256(f"perturbed {salt}".encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)

    def shake(values: np.ndarray) -> np.ndarray:
        return values * rng.uniform(0.6, 1.4, np.shape(values)) + rng.normal(
            0.0, 0.1, np.shape(values)
        )

    params = tuple({key: shake(value) for key, value in layer.items()} for layer in step.params)
    return dataclasses.replace(step, params=params, x=shake(step.x), y=shake(step.y))


def run(
    step: Step,
    rounding: Rounding = exact,
    skip_derivative: int | None = None,
    factor: float | None = None,
    overrides: Overrides | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The step with a slip (see the module docstring).

    Args:
        step: the network, parameters and batch.
        rounding: applied to every intermediate result where it is used further (the stored
            result itself is exact from rounded inputs, as a student carries rounded numbers on
            but writes the last result to any precision).
        skip_derivative: a layer ``l`` whose ``delta_l`` is taken as ``dL/da_l``.
        factor: ``W_new = W - factor * dW``; default the learning rate.
        overrides: a student's numbers, used in place of the computed entries.

    Returns:
        ``(names, implied)``: every quantity as used further (with the overrides), and every
        computed quantity as computed from what came before it (before its own override).
    """
    r, spec = rounding, step.spec
    names: dict[str, Any] = {"x": step.x, "y": step.y, "a0": step.x}
    implied: dict[str, Any] = dict(names)
    take = _taker(names, implied, overrides or {})
    params = [dict(layer) for layer in step.params]
    with np.errstate(all="ignore"):
        inputs = _forward(spec, params, step.x, r, take, "")
        output = r(names[f"a{spec.num_layers}"])
        take("loss", manual.loss_value(step.loss, output, step.y))
        upstream = manual.loss_derivative(step.loss, output, step.y)
        grads: list[dict[str, np.ndarray]] = [{} for _ in params]
        for l in reversed(range(spec.num_layers)):  # noqa: E741  (layer index of the equations)
            n = l + 1
            upstream = take(f"dL_da{n}", upstream)
            derivative = take(
                f"da_dz{n}", manual.activation_derivative(spec.activations[l], r(names[f"z{n}"]))
            )
            if skip_derivative == n:
                delta = upstream
            elif derivative.ndim == 3:  # softmax: J^T dL/da per example
                delta = np.einsum("nij,ni->nj", r(derivative), r(upstream))
            else:
                delta = r(upstream) * r(derivative)
            delta = take(f"delta{n}", delta)
            grads[l]["w"] = take(f"dW{n}", r(inputs[l]).T @ r(delta))
            if "b" in params[l]:
                grads[l]["b"] = take(f"db{n}", r(delta).sum(axis=0))
            upstream = r(delta) @ params[l]["w"].T
        take("dL_da0", upstream)
        factor = step.learning_rate if factor is None else factor
        new = [
            {key: value - factor * r(grads[l][key]) for key, value in layer.items()}
            for l, layer in enumerate(params)  # noqa: E741
        ]
        for name in step.frozen:
            new[int(name[1:]) - 1][name[0].lower()] = params[int(name[1:]) - 1][name[0].lower()]
        for n, (old, layer) in enumerate(zip(params, new, strict=True), start=1):
            for key, symbol in (("w", "W"), ("b", "b")):
                if key in layer:
                    names[f"{symbol}{n}"] = implied[f"{symbol}{n}"] = old[key]
                    layer[key] = take(f"{symbol}{n}_new", layer[key])
        rounded_new = [{key: r(value) for key, value in layer.items()} for layer in new]
        _forward(spec, rounded_new, step.x, r, take, "_new")
        output = r(names[f"a{spec.num_layers}_new"])
        take("loss_new", manual.loss_value(step.loss, output, step.y))
    return names, implied


def _taker(
    names: dict[str, Any], implied: dict[str, Any], overrides: Overrides
) -> Callable[[str, Any], Any]:
    def take(name: str, value: Any) -> Any:
        implied[name] = value
        entries = overrides.get(name)
        if entries:
            value = np.array(value, np.float64)
            for index, number in entries.items():
                value[index] = number
        names[name] = value
        return value

    return take


def _forward(
    spec: MLP,
    params: list[dict[str, np.ndarray]],
    a: np.ndarray,
    r: Rounding,
    take: Callable[[str, Any], Any],
    tail: str,
) -> list[np.ndarray]:
    """The forward pass, each step computed exactly from the rounded results of the step before."""
    inputs = []
    for n, (layer, activation) in enumerate(zip(params, spec.activations, strict=True), start=1):
        inputs.append(a)
        product = take(f"xw{n}{tail}", r(a) @ layer["w"])
        z = take(f"z{n}{tail}", r(product) + layer["b"] if "b" in layer else product)
        a = take(f"a{n}{tail}", manual.ACTIVATIONS[activation](r(z)))
    return inputs
