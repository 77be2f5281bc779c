"""The backward section of one layer: dL/da, da/dz, dL/dz, the gradients, the chain rule for one
weight, the SGD update and the check against jax.grad, with formulas in text and LaTeX."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from jaxbp.worked.render._chains import hidden_chain, weight_chain
from jaxbp.worked.render._items import Item, Math, Note, Quantity, Section
from jaxbp.worked.render._notation import LOSS, Units, partial_latex, partial_math

if TYPE_CHECKING:
    from jaxbp.worked.trace import LayerTrace, Trace

_ACTIVATION_DERIVATIVE = {
    "relu": ("1 if z > 0 else 0", "\\mathbb{1}[z^{(L)} > 0]"),
    "sigmoid": ("a (1 − a)", "a^{(L)} \\odot (1 - a^{(L)})"),
    "tanh": ("1 − a²", "1 - (a^{(L)})^{2}"),
    "linear": ("1", "1"),
    "gelu": ("Φ(z) + z φ(z)", "\\Phi(z^{(L)}) + z^{(L)} \\odot \\varphi(z^{(L)})"),
    "softmax": ("a_i (δ_ij − a_j), the full Jacobian", "a_i (\\delta_{ij} - a_j)"),
}

LOSS_FORMULA = {
    "half_se": ("Σ_k ½ (out_k − y_k)²", "\\sum_k \\tfrac{1}{2} (a^{(L)}_k - y_k)^2"),
    "mse": ("mean_k (out_k − y_k)²", "\\tfrac{1}{n} \\sum_k (a^{(L)}_k - y_k)^2"),
    "cross_entropy": ("−Σ_k y_k ln out_k", "-\\sum_k y_k \\ln a^{(L)}_k"),
    "softmax_cross_entropy": (
        "−Σ_k y_k ln softmax(out)_k",
        "-\\sum_k y_k \\ln \\operatorname{softmax}(a^{(L)})_k",
    ),
    "binary_cross_entropy": (
        "−Σ_k y_k ln out_k + (1 − y_k) ln(1 − out_k)",
        "-\\sum_k y_k \\ln a^{(L)}_k + (1 - y_k) \\ln (1 - a^{(L)}_k)",
    ),
}

_LOSS_DERIVATIVE = {
    "half_se": ("a − y", "a^{(L)} - y"),
    "mse": ("2 (a − y) / n", "2 (a^{(L)} - y) / n"),
    "cross_entropy": ("−y / a", "-y \\oslash a^{(L)}"),
    "softmax_cross_entropy": ("softmax(a) Σ_k y_k − y", "\\operatorname{softmax}(a^{(L)}) - y"),
    "binary_cross_entropy": (
        "(a − y) / (a (1 − a))",
        "(a^{(L)} - y) \\oslash (a^{(L)}(1 - a^{(L)}))",
    ),
}


def sup(name: str, layer: int | str) -> str:
    """``W^{(2)}``."""
    return f"{name}^{{({layer})}}"


def _through_weights(above: int) -> Math:
    """The gradient reaching a layer's output from the layer above: ``delta W^T``."""
    delta, weights = sup("\\delta", above), sup("W", above)
    return Math(f"delta{above} W{above}ᵀ", f"{delta} ({weights})^{{\\top}}")


def _upstream(trace: Trace, n: int) -> Math:
    """dL/da of layer ``n``: the loss derivative at the output, else from the layer above."""
    L = len(trace.layers)
    if n < L:
        return _through_weights(n + 1)
    text, latex = _LOSS_DERIVATIVE[trace.loss_name]
    batch = " / B" if trace.x.shape[0] > 1 else ""
    return Math(text.replace("a", f"a{L}") + batch, latex.replace("(L)", f"({L})"))


def _delta(layer: LayerTrace) -> Math:
    """dL/dz of a layer: through the softmax Jacobian, or element-wise."""
    n = layer.index
    dloss_da, da_dz = partial_latex("L", sup("a", n)), partial_latex(sup("a", n), sup("z", n))
    if layer.activation == "softmax":
        return Math(f"J{n}ᵀ dL_da{n}", f"J^{{({n})\\top}} {dloss_da}")
    return Math(f"dL_da{n} ⊙ da_dz{n}", f"{dloss_da} \\odot {da_dz}")


def _gradients(layer: LayerTrace, units: Units) -> list[Quantity]:
    """dL/dW and dL/db of a layer."""
    n, delta = layer.index, sup("\\delta", layer.index)
    weights_formula = Math(f"a{n - 1}ᵀ delta{n}", f"({sup('a', n - 1)})^{{\\top}} {delta}")
    bias_formula = Math(f"Σ_batch delta{n}", f"\\sum_n {delta}_n")
    return [
        Quantity(
            f"d{name}{n}",
            f"{what} gradient",
            partial_math(LOSS, units.layer_math(n, name.lower())),
            partial_latex("L", sup(name, n)),
            formula,
            value,
        )
        for name, what, formula, value in (
            ("W", "weight", weights_formula, layer.dloss_dweights),
            ("b", "bias", bias_formula, layer.dloss_dbias),
        )
        if value is not None
    ]


def _updated(trace: Trace, layer: LayerTrace, units: Units) -> list[Quantity]:
    """The weights and biases after the SGD step (or kept, when frozen)."""
    n, lr = layer.index, f"{trace.learning_rate:g}"
    quantities = []
    for name, what, value in (("W", "weights", layer.new_weights), ("b", "biases", layer.new_bias)):
        if value is None:
            continue
        frozen = f"{name}{n}" in trace.frozen
        old = sup(name, n)
        formula = (
            Math(f"{name}{n} (frozen)", f"{old} \\text{{ (frozen)}}")
            if frozen
            else Math(f"{name}{n} − {lr} d{name}{n}", f"{old} - {lr} {partial_latex('L', old)}")
        )
        symbol = units.layer_math(n, name.lower())
        quantities.append(
            Quantity(
                f"{name}{n}_new",
                f"{what}, frozen: no update" if frozen else f"updated {what}",
                Math(f"{symbol.text}'", f"{symbol.latex}'"),
                f"{name}^{{({n})\\prime}}",
                formula,
                value,
            )
        )
    return quantities


def backward_section(trace: Trace, layer: LayerTrace, units: Units, digits: int) -> Section:
    n, L = layer.index, len(trace.layers)
    kind = "output layer" if n == L else f"hidden layer {n}"
    derivative, derivative_latex = _ACTIVATION_DERIVATIVE[layer.activation]
    derivative_latex = derivative_latex.replace("(L)", f"({n})")
    out, into = units.layer_math(n, "out"), units.layer_math(n, "in")
    delta = sup("\\delta", n)
    items: list[Item] = [
        Quantity(
            f"dL_da{n}",
            "dLoss/d(activation)",
            partial_math(LOSS, out),
            partial_latex("L", sup("a", n)),
            _upstream(trace, n),
            layer.dloss_dactivations,
        ),
        Quantity(
            f"da_dz{n}",
            "activation derivative",
            partial_math(out, into),
            partial_latex(sup("a", n), sup("z", n)),
            Math(derivative, derivative_latex),
            layer.activation_derivatives,
        ),
        Quantity(
            f"delta{n}",
            "dLoss/d(pre-activation)",
            partial_math(LOSS, into),
            delta,
            _delta(layer),
            layer.deltas,
        ),
    ]
    items += _gradients(layer, units)
    items.append(weight_chain(trace, layer, units, digits))
    if n < L:
        items.append(hidden_chain(trace, layer, units, digits))
    items += _updated(trace, layer, units)
    frozen_here = [name for name in (f"W{n}", f"b{n}") if name in trace.frozen]
    if frozen_here:
        items.append(
            Note(
                f"{' and '.join(frozen_here)} frozen: the gradient above is computed but not "
                "applied, so the parameter keeps its value."
            )
        )
    if n == 1:
        inputs = Math(units.letters[0], units.letters[0])
        items.append(
            Quantity(
                "dL_da0",
                "dLoss/d(input)",
                partial_math(LOSS, inputs),
                partial_latex("L", sup("a", 0)),
                _through_weights(1),
                layer.dloss_dinputs,
            )
        )
    items += [Note(_check_line(trace, n))]
    return Section(f"Backward, layer {n} ({kind}, {layer.activation})", tuple(items))


def _check_line(trace: Trace, n: int) -> str:
    names = {f"dL_da{n}", f"da_dz{n}", f"delta{n}", f"dW{n}", f"db{n}"} | (
        {"dL_da0"} if n == 1 else set()
    )
    checks = [check for check in trace.checks if check.quantity in names]
    worst = float(np.max([check.max_abs_diff for check in checks]))  # nan wins
    verdict = "verified" if all(check.verified for check in checks) else "NOT verified"
    return (
        f"Against jax.grad: largest |manual − JAX| over {', '.join(c.quantity for c in checks)} "
        f"is {worst:.1e}: {verdict} (float64 round-off)."
    )
