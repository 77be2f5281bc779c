"""A Trace as a renderer-neutral document: sections of quantities, chain-rule lines and notes.

The order is the seeds' order: the network and its initial parameters; the forward pass from the
input to the output; the loss; the backward pass from the output to the input, each layer followed
by its SGD update (as document 000 does); the forward pass with the updated parameters; the check
against ``jax.grad``. Every quantity carries its jaxbp name (``z1``, ``dW2``: the names of
:mod:`jaxbp.worked._records`), the seeds' symbol, its formula and its value.
"""

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

_LOSS_FORMULA = {
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


def _sup(name: str, layer: int | str) -> str:
    return f"{name}^{{({layer})}}"


def build(trace: Trace, digits: int) -> list[Section]:
    """The sections of the worked example, in the seeds' order."""
    units = Units(trace.units, trace.sizes)
    sections = [_network(trace, units)]
    sections += [_forward(trace, layer, units) for layer in trace.layers]
    sections.append(_loss(trace))
    sections += [_backward(trace, layer, units, digits) for layer in reversed(trace.layers)]
    sections.append(_after(trace, units))
    return sections


def _network(trace: Trace, units: Units) -> Section:
    batch = trace.x.shape[0]
    names = ", ".join(
        f"{letter} ({size})" for letter, size in zip(trace.units, trace.sizes, strict=True)
    )
    items: list[Item] = [
        Note(
            f"Sizes {'-'.join(map(str, trace.sizes))}, activations {', '.join(trace.activations)}; "
            f"loss {trace.loss_name}; learning rate {trace.learning_rate:g}; batch of {batch}."
        ),
        Note(f"Units, input first: {names}."),
        Quantity("x", "input", units.letters[0], units.letters[0], "a^{(0)}", "x", "x", trace.x),
        Quantity("y", "target", "y", "y", "y", "", "", trace.y),
    ]
    for layer in trace.layers:
        n = layer.index
        items.append(
            Quantity(
                f"W{n}",
                "weights",
                units.layer_symbol(n, "w"),
                units.layer_symbol_latex(n, "w"),
                _sup("W", n),
                "initial",
                "",
                layer.weights,
            )
        )
        if layer.bias is not None:
            items.append(
                Quantity(
                    f"b{n}",
                    "biases",
                    units.layer_symbol(n, "b"),
                    units.layer_symbol_latex(n, "b"),
                    _sup("b", n),
                    "initial",
                    "",
                    layer.bias,
                )
            )
    return Section("Network", tuple(items))


def _forward(trace: Trace, layer: LayerTrace, units: Units) -> Section:
    n, below = layer.index, layer.index - 1
    title = f"Forward, layer {n}: {units.letters[below]} → {units.letters[n]} ({layer.activation})"
    product, product_latex = f"a{below} W{n}", f"{_sup('a', below)} {_sup('W', n)}"
    items: list[Item] = []
    if layer.bias is not None:
        items.append(
            Quantity(
                f"xw{n}",
                "inputs times weights",
                f"{units.layer_symbol(below, 'out') if below else units.letters[0]}·{units.layer_symbol(n, 'w')}",
                f"{units.layer_symbol_latex(below, 'out') if below else units.letters[0]} \\cdot {units.layer_symbol_latex(n, 'w')}",
                product_latex,
                product,
                "",
                layer.products,
            )
        )
        formula, formula_latex = f"{product} + b{n}", f"{product_latex} + {_sup('b', n)}"
    else:
        formula, formula_latex = product, product_latex
    items += [
        Quantity(
            f"z{n}",
            "pre-activation",
            units.layer_symbol(n, "in"),
            units.layer_symbol_latex(n, "in"),
            _sup("z", n),
            formula,
            formula_latex,
            layer.pre_activations,
        ),
        Quantity(
            f"a{n}",
            "activation",
            units.layer_symbol(n, "out"),
            units.layer_symbol_latex(n, "out"),
            _sup("a", n),
            f"{layer.activation}(z{n})",
            f"\\operatorname{{{layer.activation}}}({_sup('z', n)})",
            layer.activations,
        ),
    ]
    return Section(title, tuple(items))


def _loss(trace: Trace) -> Section:
    text, latex = _LOSS_FORMULA[trace.loss_name]
    L = len(trace.layers)
    batch = trace.x.shape[0]
    mean = "mean over the batch of " if batch > 1 else ""
    return Section(
        "Loss",
        (
            Quantity(
                "loss",
                trace.loss_name,
                "Loss",
                "L",
                "L",
                mean + text.replace("out_k", f"a{L}_k"),
                ("\\tfrac{1}{B} \\sum_n " if batch > 1 else "") + latex.replace("(L)", f"({L})"),
                np.asarray(trace.loss),
            ),
        ),
    )


def _backward(trace: Trace, layer: LayerTrace, units: Units, digits: int) -> Section:
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
    items.append(
        Quantity(
            f"W{n}_new",
            "updated weights",
            f"{w}'",
            f"{w_l}'",
            f"W^{{({n})\\prime}}",
            f"W{n} − {lr} dW{n}",
            f"W^{{({n})}} - {lr} \\frac{{\\partial L}}{{\\partial W^{{({n})}}}}",
            layer.new_weights,
        )
    )
    if layer.new_bias is not None:
        items.append(
            Quantity(
                f"b{n}_new",
                "updated biases",
                f"{b}'",
                f"{b_l}'",
                f"b^{{({n})\\prime}}",
                f"b{n} − {lr} db{n}",
                f"b^{{({n})}} - {lr} \\frac{{\\partial L}}{{\\partial b^{{({n})}}}}",
                layer.new_bias,
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
    worst = max(check.max_abs_diff for check in checks)
    verdict = "verified" if all(check.verified for check in checks) else "NOT verified"
    return (
        f"Against jax.grad: largest |manual − JAX| over {', '.join(c.quantity for c in checks)} "
        f"is {worst:.1e}: {verdict} (float64 round-off)."
    )


def _after(trace: Trace, units: Units) -> Section:
    items: list[Item] = []
    for layer in trace.layers:
        n = layer.index
        items += [
            Quantity(
                f"z{n}_new",
                "pre-activation",
                units.layer_symbol(n, "in"),
                units.layer_symbol_latex(n, "in"),
                f"z^{{({n})\\prime}}",
                f"a{n - 1}' W{n}' + b{n}'" if layer.bias is not None else f"a{n - 1}' W{n}'",
                "",
                layer.pre_activations_after,
            ),
            Quantity(
                f"a{n}_new",
                "activation",
                units.layer_symbol(n, "out"),
                units.layer_symbol_latex(n, "out"),
                f"a^{{({n})\\prime}}",
                f"{layer.activation}(z{n}')",
                "",
                layer.activations_after,
            ),
        ]
    items.append(
        Quantity(
            "loss_new",
            trace.loss_name,
            "Loss'",
            "L'",
            "L'",
            f"was {trace.loss:.6g}",
            "",
            np.asarray(trace.loss_after),
        )
    )
    return Section("Forward pass with the updated parameters", tuple(items))
