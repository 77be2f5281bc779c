"""What the documents warn about, measured on a Trace: vanishing or exploding gradients, saturated
activations and dead ReLUs, each with a plain-words warning.

Per layer ``l``: the Frobenius norm of ``dL/dW_l``, its ratio to the layer above
(``||dL/dW_l|| / ||dL/dW_{l+1}||``: below ``VANISHING_RATIO`` the gradient is shrinking on its way
to the input, above ``EXPLODING_RATIO`` it is growing), and the range of the activation
derivative over the batch (the diagonal ``a_i (1 - a_i)`` for softmax). A sigmoid, tanh or
softmax layer whose largest derivative is under ``SATURATION_FRACTION`` of its peak is saturated
(sigmoid'(6) ≈ 0.0025 in the 1-4-2-1 example, 1% of the 0.25 peak):
it passes on almost none of the gradient. A ReLU unit with ``z <= 0`` on every example of the
batch is dead for that batch: it outputs 0 and its weights get no gradient.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from jaxbp.worked.trace import Trace


VANISHING_RATIO = 0.1
EXPLODING_RATIO = 10.0
SATURATION_FRACTION = 0.1
#: The largest value each activation's derivative can take.
PEAK_DERIVATIVE = {"sigmoid": 0.25, "tanh": 1.0, "softmax": 0.25}


@dataclasses.dataclass(frozen=True)
class LayerDiagnostics:
    """One layer: ``ratio_to_above`` is ``None`` for the output layer, when the layer above has a
    zero gradient or when either norm is not finite; ``dead_units`` are 0-based ReLU unit indices dead on the whole batch."""

    index: int
    activation: str
    grad_norm: float
    ratio_to_above: float | None
    derivative_min: float
    derivative_max: float
    dead_units: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Diagnostics:
    layers: tuple[LayerDiagnostics, ...]
    warnings: tuple[str, ...]


def diagnose(trace: Trace) -> Diagnostics:
    """Gradient norms, their ratios, activation-derivative ranges and dead ReLUs, with warnings."""
    norms = [float(np.linalg.norm(layer.dloss_dweights)) for layer in trace.layers]
    layers, warnings = [], []
    for position, layer in enumerate(trace.layers):
        derivative = layer.activation_derivatives
        if derivative.ndim == 3:  # softmax Jacobian: its diagonal
            derivative = np.diagonal(derivative, axis1=1, axis2=2)
        above = norms[position + 1] if position + 1 < len(norms) else 0.0
        # only finite norms have a meaningful ratio (inf or nan is reported as not finite below)
        finite = np.isfinite(above) and np.isfinite(norms[position])
        ratio = norms[position] / above if above > 0 and finite else None
        dead: tuple[int, ...] = ()
        if layer.activation == "relu":
            dead = tuple(int(j) for j in np.flatnonzero(np.all(layer.pre_activations <= 0, axis=0)))
        info = LayerDiagnostics(
            index=layer.index,
            activation=layer.activation,
            grad_norm=norms[position],
            ratio_to_above=ratio,
            derivative_min=float(derivative.min()),
            derivative_max=float(derivative.max()),
            dead_units=dead,
        )
        layers.append(info)
        warnings += _warnings(trace, info)
    if not np.isfinite(trace.loss) or not all(np.isfinite(n) for n in norms):
        warnings.insert(
            0,
            f"The loss ({trace.loss:.4g}) or a gradient is not finite: check that the loss fits the "
            f"output layer ({trace.loss_name} on a {trace.activations[-1]} output; cross-entropy "
            f"losses need probabilities, e.g. a sigmoid or softmax output) and the scale of the inputs.",
        )
    return Diagnostics(tuple(layers), tuple(warnings))


def _unit(trace: Trace, layer: int, j: int) -> str:
    letter = trace.units[layer]
    return letter if trace.sizes[layer] == 1 else f"{letter}{j + 1}"


def _warnings(trace: Trace, info: LayerDiagnostics) -> list[str]:
    n, warnings = info.index, []
    peak = PEAK_DERIVATIVE.get(info.activation)
    if peak is not None and info.derivative_max < SATURATION_FRACTION * peak:
        warnings.append(
            f"Layer {n} ({info.activation}) is saturated: its derivative is at most "
            f"{info.derivative_max:.3g} (the peak is {peak:g}), so it passes on at most "
            f"{100 * info.derivative_max:.2g}% of the gradient to the layers below; they will learn "
            f"slowly (a vanishing gradient). Smaller weights or inputs bring it back to its slope."
        )
    if info.ratio_to_above == 0:
        warnings.append(
            f"Vanishing gradient: the weight gradient of layer {n} is exactly zero while that of "
            f"layer {n + 1} is not; layer {n} does not learn from this batch."
        )
    elif info.ratio_to_above is not None and info.ratio_to_above < VANISHING_RATIO:
        warnings.append(
            f"Vanishing gradient: the weight gradient of layer {n} is {1 / info.ratio_to_above:.3g} "
            f"times smaller than that of layer {n + 1} (norms {info.grad_norm:.3g} and "
            f"{info.grad_norm / info.ratio_to_above:.3g}); layer {n} learns far more slowly."
        )
    if info.ratio_to_above is not None and info.ratio_to_above > EXPLODING_RATIO:
        warnings.append(
            f"Exploding gradient: the weight gradient of layer {n} is {info.ratio_to_above:.3g} "
            f"times larger than that of layer {n + 1}; a large step may overshoot (try a smaller "
            f"learning rate or smaller initial weights)."
        )
    if info.dead_units:
        names = ", ".join(_unit(trace, n, j) for j in info.dead_units)
        warnings.append(
            f"Dead ReLU in layer {n}: unit(s) {names} have z <= 0 on every example, so they output "
            f"0 and their incoming weights get no gradient from this batch."
        )
    return warnings
