"""The backward section of one layer: dL/da, da/dz, dL/dz, the gradients, the chain rule for one
weight, the SGD update and the check against jax.grad, with formulas in text and LaTeX."""

from __future__ import annotations

import numpy as np

from jaxbp.render._chains import hidden_chain, weight_chain
from jaxbp.render._items import Item, Note, Quantity, Section
from jaxbp.render._notation import Units
from jaxbp.trace import LayerTrace, Trace

_ACTIVATION_DERIVATIVE = {
    "relu": ("1 if z > 0 else 0", "\\mathbb{1}[z^{(L)} > 0]"),
    "sigmoid": ("a (1 − a)", "a^{(L)} \\odot (1 - a^{(L)})"),
    "tanh": ("1 − a²", "1 - (a^{(L)})^{2}"),
    "linear": ("1", "1"),
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


def backward_section(trace: Trace, layer: LayerTrace, units: Units, digits: int) -> Section:
    n, below, L = layer.index, layer.index - 1, len(trace.layers)
    kind = "output layer" if n == L else f"hidden layer {n}"
    batch = " / B" if trace.x.shape[0] > 1 else ""
    if n == L:
        upstream, upstream_latex = _LOSS_DERIVATIVE[trace.loss_name]
        upstream, upstream_latex = (
            upstream.replace("a", f"a{L}") + batch,
            upstream_latex.replace("(L)", f"({L})"),
        )
    else:
        upstream, upstream_latex = (
            f"delta{n + 1} W{n + 1}ᵀ",
            f"\\delta^{{({n + 1})}} (W^{{({n + 1})}})^{{\\top}}",
        )
    derivative, derivative_latex = _ACTIVATION_DERIVATIVE[layer.activation]
    derivative_latex = derivative_latex.replace("(L)", f"({n})")
    if layer.activation == "softmax":
        delta, delta_latex = (
            f"J{n}ᵀ dL_da{n}",
            f"J^{{({n})\\top}} \\frac{{\\partial L}}{{\\partial a^{{({n})}}}}",
        )
    else:
        delta, delta_latex = (
            f"dL_da{n} ⊙ da_dz{n}",
            (
                f"\\frac{{\\partial L}}{{\\partial a^{{({n})}}}} \\odot \\frac{{\\partial a^{{({n})}}}}{{\\partial z^{{({n})}}}}"
            ),
        )
    out, into, w, b = (units.layer_symbol(n, k) for k in ("out", "in", "w", "b"))
    out_l, in_l, w_l, b_l = (units.layer_symbol_latex(n, k) for k in ("out", "in", "w", "b"))
    items: list[Item] = [
        Quantity(
            f"dL_da{n}",
            "dLoss/d(activation)",
            f"∂Loss/∂{out}",
            f"\\frac{{\\partial L}}{{\\partial {out_l}}}",
            f"\\frac{{\\partial L}}{{\\partial a^{{({n})}}}}",
            upstream,
            upstream_latex,
            layer.dloss_dactivations,
        ),
        Quantity(
            f"da_dz{n}",
            "activation derivative",
            f"∂{out}/∂{into}",
            f"\\frac{{\\partial {out_l}}}{{\\partial {in_l}}}",
            f"\\frac{{\\partial a^{{({n})}}}}{{\\partial z^{{({n})}}}}",
            derivative,
            derivative_latex,
            layer.activation_derivatives,
        ),
        Quantity(
            f"delta{n}",
            "dLoss/d(pre-activation)",
            f"∂Loss/∂{into}",
            f"\\frac{{\\partial L}}{{\\partial {in_l}}}",
            f"\\delta^{{({n})}}",
            delta,
            delta_latex,
            layer.deltas,
        ),
        Quantity(
            f"dW{n}",
            "weight gradient",
            f"∂Loss/∂{w}",
            f"\\frac{{\\partial L}}{{\\partial {w_l}}}",
            f"\\frac{{\\partial L}}{{\\partial W^{{({n})}}}}",
            f"a{below}ᵀ delta{n}",
            f"(a^{{({below})}})^{{\\top}} \\delta^{{({n})}}",
            layer.dloss_dweights,
        ),
    ]
    if layer.dloss_dbias is not None:
        items.append(
            Quantity(
                f"db{n}",
                "bias gradient",
                f"∂Loss/∂{b}",
                f"\\frac{{\\partial L}}{{\\partial {b_l}}}",
                f"\\frac{{\\partial L}}{{\\partial b^{{({n})}}}}",
                f"Σ_batch delta{n}",
                f"\\sum_n \\delta^{{({n})}}_n",
                layer.dloss_dbias,
            )
        )
    items.append(weight_chain(trace, layer, units, digits))
    if n < L:
        items.append(hidden_chain(trace, layer, units, digits))
    lr = f"{trace.learning_rate:g}"
    frozen_w, frozen_b = f"W{n}" in trace.frozen, f"b{n}" in trace.frozen
    items.append(
        Quantity(
            f"W{n}_new",
            "weights, frozen: no update" if frozen_w else "updated weights",
            f"{w}'",
            f"{w_l}'",
            f"W^{{({n})\\prime}}",
            f"W{n} (frozen)" if frozen_w else f"W{n} − {lr} dW{n}",
            f"W^{{({n})}} \\text{{ (frozen)}}"
            if frozen_w
            else f"W^{{({n})}} - {lr} \\frac{{\\partial L}}{{\\partial W^{{({n})}}}}",
            layer.new_weights,
        )
    )
    if layer.new_bias is not None:
        items.append(
            Quantity(
                f"b{n}_new",
                "biases, frozen: no update" if frozen_b else "updated biases",
                f"{b}'",
                f"{b_l}'",
                f"b^{{({n})\\prime}}",
                f"b{n} (frozen)" if frozen_b else f"b{n} − {lr} db{n}",
                f"b^{{({n})}} \\text{{ (frozen)}}"
                if frozen_b
                else f"b^{{({n})}} - {lr} \\frac{{\\partial L}}{{\\partial b^{{({n})}}}}",
                layer.new_bias,
            )
        )
    frozen_here = [name for name in (f"W{n}", f"b{n}") if name in trace.frozen]
    if frozen_here:
        items.append(
            Note(
                f"{' and '.join(frozen_here)} frozen: the gradient above is computed but not "
                "applied, so the parameter keeps its value."
            )
        )
    if n == 1:
        items.append(
            Quantity(
                "dL_da0",
                "dLoss/d(input)",
                f"∂Loss/∂{units.letters[0]}",
                f"\\frac{{\\partial L}}{{\\partial {units.letters[0]}}}",
                "\\frac{\\partial L}{\\partial a^{(0)}}",
                "delta1 W1ᵀ",
                "\\delta^{(1)} (W^{(1)})^{\\top}",
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
