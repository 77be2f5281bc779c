"""A Trace as a renderer-neutral document: sections of quantities, chain-rule lines and notes.

The order is the documents' order: the network and its initial parameters; the forward pass from the
input to the output; the loss; the backward pass from the output to the input, each layer followed
by its SGD update (as document 000 does); the forward pass with the updated parameters; the check
against ``jax.grad``. Every quantity carries its jaxbp name (``z1``, ``dW2``: the names of
:mod:`jaxbp.worked.grading._records`), the documents' symbol, its formula and its value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from jaxbp.worked.render._backward import LOSS_FORMULA, backward_section, sup
from jaxbp.worked.render._items import EMPTY, Item, Math, Note, Quantity, Section
from jaxbp.worked.render._notation import Units

if TYPE_CHECKING:
    from jaxbp.worked.trace import LayerTrace, Trace


def build(trace: Trace, digits: int) -> list[Section]:
    """The sections of the worked example, in the documents' order."""
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
    input_letter = Math(units.letters[0], units.letters[0])
    items: list[Item] = [
        Note(
            f"Sizes {'-'.join(map(str, trace.sizes))}, activations {', '.join(trace.activations)}; "
            f"loss {trace.loss_name}; learning rate {trace.learning_rate:g}; batch of {batch}."
        ),
        Note(f"Units, input first: {names}."),
        Quantity("x", "input", input_letter, "a^{(0)}", Math("x", "x"), trace.x),
        Quantity("y", "target", Math("y", "y"), "y", EMPTY, trace.y),
    ]
    initial = Math("initial", "")
    for layer in trace.layers:
        n = layer.index
        weights = units.layer_math(n, "w")
        items.append(Quantity(f"W{n}", "weights", weights, sup("W", n), initial, layer.weights))
        if layer.bias is not None:
            biases = units.layer_math(n, "b")
            items.append(Quantity(f"b{n}", "biases", biases, sup("b", n), initial, layer.bias))
    return Section("Network", tuple(items))


def _forward(trace: Trace, layer: LayerTrace, units: Units) -> Section:
    n, below = layer.index, layer.index - 1
    title = f"Forward, layer {n}: {units.letters[below]} → {units.letters[n]} ({layer.activation})"
    product = Math(f"a{below} W{n}", f"{sup('a', below)} {sup('W', n)}")
    items: list[Item] = []
    if layer.bias is not None:
        inputs = (
            units.layer_math(below, "out") if below else Math(units.letters[0], units.letters[0])
        )
        weights = units.layer_math(n, "w")
        symbol = Math(f"{inputs.text}·{weights.text}", f"{inputs.latex} \\cdot {weights.latex}")
        items.append(
            Quantity(
                f"xw{n}",
                "inputs times weights",
                symbol,
                product.latex,
                Math(product.text, ""),
                layer.products,
            )
        )
        formula = Math(f"{product.text} + b{n}", f"{product.latex} + {sup('b', n)}")
    else:
        formula = product
    activation = Math(
        f"{layer.activation}(z{n})", f"\\operatorname{{{layer.activation}}}({sup('z', n)})"
    )
    items += [
        Quantity(
            f"z{n}",
            "pre-activation",
            units.layer_math(n, "in"),
            sup("z", n),
            formula,
            layer.pre_activations,
        ),
        Quantity(
            f"a{n}",
            "activation",
            units.layer_math(n, "out"),
            sup("a", n),
            activation,
            layer.activations,
        ),
    ]
    return Section(title, tuple(items))


def _loss(trace: Trace) -> Section:
    text, latex = LOSS_FORMULA[trace.loss_name]
    L = len(trace.layers)
    batch = trace.x.shape[0]
    mean = "mean over the batch of " if batch > 1 else ""
    formula = Math(
        mean + text.replace("out_k", f"a{L}_k"),
        ("\\tfrac{1}{B} \\sum_n " if batch > 1 else "") + latex.replace("(L)", f"({L})"),
    )
    loss = Quantity(
        "loss", trace.loss_name, Math("Loss", "L"), "L", formula, np.asarray(trace.loss)
    )
    return Section("Loss", (loss,))


def _after(trace: Trace, units: Units) -> Section:
    items: list[Item] = []
    for layer in trace.layers:
        n = layer.index
        bias = f" + b{n}'" if layer.bias is not None else ""
        items += [
            Quantity(
                f"{name}{n}_new",
                title,
                units.layer_math(n, kind),
                f"{name}^{{({n})\\prime}}",
                Math(formula, ""),
                value,
            )
            for name, kind, title, formula, value in (
                (
                    "z",
                    "in",
                    "pre-activation",
                    f"a{n - 1}' W{n}'{bias}",
                    layer.pre_activations_after,
                ),
                ("a", "out", "activation", f"{layer.activation}(z{n}')", layer.activations_after),
            )
        ]
    was = Math(f"was {trace.loss:.6g}", "")
    loss = np.asarray(trace.loss_after)
    items.append(Quantity("loss_new", trace.loss_name, Math("Loss'", "L'"), "L'", was, loss))
    return Section("Forward pass with the updated parameters", tuple(items))
