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

from jaxbp.worked.render._items import Chain, Math
from jaxbp.worked.render._notation import LOSS, Units, latex_number, number, partial_math

if TYPE_CHECKING:
    from jaxbp.worked.trace import LayerTrace, Trace


def _products(pairs: list[tuple[float, float]], digits: int) -> Math:
    """``(a)·(b) + (c)·(d)``."""
    return Math(
        " + ".join(f"({number(a, digits)})·({number(b, digits)})" for a, b in pairs),
        " + ".join(
            f"({latex_number(a, digits)}) \\cdot ({latex_number(b, digits)})" for a, b in pairs
        ),
    )


def _equals(numbers: Math, result: float, digits: int) -> Math:
    """``numbers = result``."""
    return Math(
        f"{numbers.text} = {number(result, digits)}",
        f"{numbers.latex} = {latex_number(result, digits)}",
    )


def _sum_of_products(pairs: list[tuple[float, float]], result: float, digits: int) -> Math:
    """``= (a)·(b) + (c)·(d) = result``."""
    products = _products(pairs, digits)
    return _equals(Math(f"= {products.text}", f"= {products.latex}"), result, digits)


def _sum(terms: list[tuple[Math, Math]], latex_times: str) -> Math:
    """``a · b + c · d``: products of two factors, LaTeX's product sign being ``latex_times``."""
    return Math(
        " + ".join(f"{a.text} · {b.text}" for a, b in terms),
        " + ".join(f"{a.latex}{latex_times}{b.latex}" for a, b in terms),
    )


def weight_chain(trace: Trace, layer: LayerTrace, units: Units, digits: int) -> Chain:
    """The chain rule for ``dW{l}[0, 0]``."""
    n, below = layer.index, layer.index - 1
    w, out, into, prev = (
        units.weight(n, 0, 0),
        units.out(n, 0),
        units.in_(n, 0),
        units.out(below, 0),
    )
    result = layer.dloss_dweights[0, 0]
    lhs = partial_math(LOSS, w)
    if trace.x.shape[0] > 1:
        symbolic = Math(
            f"{lhs.text} = Σ_n ∂Loss/∂{into.text}[n] · {prev.text}[n]",
            f"{lhs.latex} = \\sum_n {partial_math(LOSS, into).latex}[n] \\, {prev.latex}[n]",
        )
        pairs = list(zip(layer.deltas[:, 0], layer.inputs[:, 0], strict=True))
        return Chain(f"dW{n}-chain", symbolic, _sum_of_products(pairs, result, digits))
    a_prev = layer.inputs[0, 0]
    if layer.activation == "softmax":
        terms = [
            (partial_math(LOSS, units.out(n, k)), partial_math(units.out(n, k), into))
            for k in range(trace.sizes[n])
        ]
        total, last = _sum(terms, " "), partial_math(into, w)
        symbolic = Math(
            f"{lhs.text} = ({total.text}) · {last.text}",
            f"{lhs.latex} = \\Big({total.latex}\\Big) {last.latex}",
        )
        pairs = list(
            zip(layer.dloss_dactivations[0], layer.activation_derivatives[0][:, 0], strict=True)
        )
        products = _products(pairs, digits)
        numbers = Math(
            f"= ({products.text})·({number(a_prev, digits)})",
            f"= \\big({products.latex}\\big) \\cdot ({latex_number(a_prev, digits)})",
        )
    else:
        factors = [partial_math(LOSS, out), partial_math(out, into), partial_math(into, w)]
        symbolic = Math(
            f"{lhs.text} = " + " · ".join(factor.text for factor in factors),
            f"{lhs.latex} = " + " \\cdot ".join(factor.latex for factor in factors),
        )
        values = (layer.dloss_dactivations[0, 0], layer.activation_derivatives[0, 0], a_prev)
        numbers = Math(
            "= " + "·".join(f"({number(v, digits)})" for v in values),
            "= " + " \\cdot ".join(f"({latex_number(v, digits)})" for v in values),
        )
    return Chain(f"dW{n}-chain", symbolic, _equals(numbers, result, digits))


def hidden_chain(trace: Trace, layer: LayerTrace, units: Units, digits: int) -> Chain:
    """The chain rule for ``dL_da{l}[0, 0]`` of a hidden layer: a sum over the units above."""
    n = layer.index
    above = trace.layers[n]  # layer n + 1
    lhs = partial_math(LOSS, units.out(n, 0))
    terms = [
        (partial_math(LOSS, units.in_(n + 1, k)), units.weight(n + 1, 0, k))
        for k in range(trace.sizes[n + 1])
    ]
    example = " (first example)" if trace.x.shape[0] > 1 else ""
    total = _sum(terms, " \\, ")
    symbolic = Math(f"{lhs.text} = {total.text}{example}", f"{lhs.latex} = {total.latex}")
    pairs = list(zip(above.deltas[0], above.weights[0], strict=True))
    return Chain(
        f"dL_da{n}-chain",
        symbolic,
        _sum_of_products(pairs, layer.dloss_dactivations[0, 0], digits),
    )
