"""A Trace as a renderer-neutral document: sections of quantities, chain-rule lines and notes.

The order is the seeds' order: the network and its initial parameters; the forward pass from the
input to the output; the loss; the backward pass from the output to the input, each layer followed
by its SGD update (as document 000 does); the forward pass with the updated parameters; the check
against ``jax.grad``. Every quantity carries its jaxbp name (``z1``, ``dW2``: the names of
:mod:`jaxbp.worked._records`), the seeds' symbol, its formula and its value.
"""

from __future__ import annotations

import numpy as np

from jaxbp.render._backward import LOSS_FORMULA, backward_section, sup
from jaxbp.render._items import Item, Note, Quantity, Section
from jaxbp.render._notation import Units
from jaxbp.trace import LayerTrace, Trace


def build(trace: Trace, digits: int) -> list[Section]:
    """The sections of the worked example, in the seeds' order."""
    units = Units(trace.units, trace.sizes)
    sections = [_network(trace, units)]
    sections += [_forward(trace, layer, units) for layer in trace.layers]
    sections.append(_loss(trace))
    sections += [backward_section(trace, layer, units, digits) for layer in reversed(trace.layers)]
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
                sup("W", n),
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
                    sup("b", n),
                    "initial",
                    "",
                    layer.bias,
                )
            )
    return Section("Network", tuple(items))


def _forward(trace: Trace, layer: LayerTrace, units: Units) -> Section:
    n, below = layer.index, layer.index - 1
    title = f"Forward, layer {n}: {units.letters[below]} → {units.letters[n]} ({layer.activation})"
    product, product_latex = f"a{below} W{n}", f"{sup('a', below)} {sup('W', n)}"
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
        formula, formula_latex = f"{product} + b{n}", f"{product_latex} + {sup('b', n)}"
    else:
        formula, formula_latex = product, product_latex
    items += [
        Quantity(
            f"z{n}",
            "pre-activation",
            units.layer_symbol(n, "in"),
            units.layer_symbol_latex(n, "in"),
            sup("z", n),
            formula,
            formula_latex,
            layer.pre_activations,
        ),
        Quantity(
            f"a{n}",
            "activation",
            units.layer_symbol(n, "out"),
            units.layer_symbol_latex(n, "out"),
            sup("a", n),
            f"{layer.activation}(z{n})",
            f"\\operatorname{{{layer.activation}}}({sup('z', n)})",
            layer.activations,
        ),
    ]
    return Section(title, tuple(items))


def _loss(trace: Trace) -> Section:
    text, latex = LOSS_FORMULA[trace.loss_name]
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
