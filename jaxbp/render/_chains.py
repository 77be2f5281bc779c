"""The chain rule written out for one weight per layer and for one hidden output, with its numbers.

For the first weight ``w_v1u1`` of layer ``l`` (one example, element-wise activation)::

    ∂Loss/∂w_v1u1 = ∂Loss/∂u1_out · ∂u1_out/∂u1_in · ∂u1_in/∂w_v1u1 = (dL_da) · (da_dz) · (v1_out)

A softmax output couples its units, so the first factor becomes ``Σ_k ∂Loss/∂uk_out ·
∂uk_out/∂u1_in``; a batch sums ``∂Loss/∂u1_in · v1_out`` over its examples. For a hidden layer the
gradient reaching ``u1_out`` sums over every unit ``k`` above it: ``Σ_k ∂Loss/∂k_in · w_u1k``
(the step that documents 000, 002 and 004 get wrong).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jaxbp.render._items import Chain, Math
from jaxbp.render._notation import Units, latex_number, number, partial, partial_latex

if TYPE_CHECKING:
    from jaxbp.trace import LayerTrace, Trace


def _products(pairs: list[tuple[float, float]], digits: int, latex: bool) -> str:
    fmt = latex_number if latex else number
    times = " \\cdot " if latex else "·"
    return " + ".join(f"({fmt(a, digits)}){times}({fmt(b, digits)})" for a, b in pairs)


def _sum_of_products(pairs: list[tuple[float, float]], result: float, digits: int) -> Math:
    """``= (a)·(b) + (c)·(d) = result`` in text and LaTeX."""
    return Math(
        f"= {_products(pairs, digits, False)} = {number(result, digits)}",
        f"= {_products(pairs, digits, True)} = {latex_number(result, digits)}",
    )


def weight_chain(trace: Trace, layer: LayerTrace, units: Units, digits: int) -> Chain:
    """The chain rule for ``dW{l}[0, 0]``."""
    n, below = layer.index, layer.index - 1
    w, w_l = units.weight(n, 0, 0), units.weight_latex(n, 0, 0)
    out, out_l = units.out(n, 0), units.out_latex(n, 0)
    into, into_l = units.in_(n, 0), units.in_latex(n, 0)
    prev, prev_l = units.out(below, 0), units.out_latex(below, 0)
    result = layer.dloss_dweights[0, 0]
    lhs, lhs_l = partial("Loss", w), partial_latex("L", w_l)
    if trace.x.shape[0] > 1:
        symbolic = f"{lhs} = Σ_n ∂Loss/∂{into}[n] · {prev}[n]"
        symbolic_l = f"{lhs_l} = \\sum_n {partial_latex('L', into_l)}[n] \\, {prev_l}[n]"
        pairs = list(zip(layer.deltas[:, 0], layer.inputs[:, 0], strict=True))
        return Chain(
            f"dW{n}-chain", Math(symbolic, symbolic_l), _sum_of_products(pairs, result, digits)
        )
    a_prev = layer.inputs[0, 0]
    if layer.activation == "softmax":
        size = trace.sizes[n]
        terms = [
            f"{partial('Loss', units.out(n, k))} · {partial(units.out(n, k), into)}"
            for k in range(size)
        ]
        terms_l = [
            f"{partial_latex('L', units.out_latex(n, k))} {partial_latex(units.out_latex(n, k), into_l)}"
            for k in range(size)
        ]
        symbolic = f"{lhs} = ({' + '.join(terms)}) · {partial(into, w)}"
        symbolic_l = f"{lhs_l} = \\Big({' + '.join(terms_l)}\\Big) {partial_latex(into_l, w_l)}"
        pairs = list(
            zip(layer.dloss_dactivations[0], layer.activation_derivatives[0][:, 0], strict=True)
        )
        numbers = f"= ({_products(pairs, digits, False)})·({number(a_prev, digits)})"
        numbers_l = f"= \\big({_products(pairs, digits, True)}\\big) \\cdot ({latex_number(a_prev, digits)})"
    else:
        symbolic = f"{lhs} = {partial('Loss', out)} · {partial(out, into)} · {partial(into, w)}"
        symbolic_l = (
            f"{lhs_l} = {partial_latex('L', out_l)} \\cdot {partial_latex(out_l, into_l)} "
            f"\\cdot {partial_latex(into_l, w_l)}"
        )
        factors = (layer.dloss_dactivations[0, 0], layer.activation_derivatives[0, 0], a_prev)
        numbers = "= " + "·".join(f"({number(f, digits)})" for f in factors)
        numbers_l = "= " + " \\cdot ".join(f"({latex_number(f, digits)})" for f in factors)
    return Chain(
        f"dW{n}-chain",
        Math(symbolic, symbolic_l),
        Math(
            f"{numbers} = {number(result, digits)}", f"{numbers_l} = {latex_number(result, digits)}"
        ),
    )


def hidden_chain(trace: Trace, layer: LayerTrace, units: Units, digits: int) -> Chain:
    """The chain rule for ``dL_da{l}[0, 0]`` of a hidden layer: a sum over the units above."""
    n = layer.index
    above = trace.layers[n]  # layer n + 1
    out, out_l = units.out(n, 0), units.out_latex(n, 0)
    size = trace.sizes[n + 1]
    terms = [
        f"{partial('Loss', units.in_(n + 1, k))} · {units.weight(n + 1, 0, k)}" for k in range(size)
    ]
    terms_l = [
        f"{partial_latex('L', units.in_latex(n + 1, k))} \\, {units.weight_latex(n + 1, 0, k)}"
        for k in range(size)
    ]
    symbolic = f"{partial('Loss', out)} = {' + '.join(terms)}"
    symbolic_l = f"{partial_latex('L', out_l)} = {' + '.join(terms_l)}"
    pairs = list(zip(above.deltas[0], above.weights[0], strict=True))
    result = layer.dloss_dactivations[0, 0]
    example = " (first example)" if trace.x.shape[0] > 1 else ""
    return Chain(
        f"dL_da{n}-chain",
        Math(symbolic + example, symbolic_l),
        _sum_of_products(pairs, result, digits),
    )
