"""Numbers to text, and the documents' notation for units, weights and derivatives (plain and LaTeX).

Unit ``j`` (0-based) of a layer whose letter is ``u`` is ``u{j+1}`` (just ``u`` in a one-unit
layer); its pre-activation is ``u1_in``, its activation ``u1_out``; the weight from unit ``v1`` to
``u1`` is ``w_v1u1`` and the input units have no in/out: ``i1``. Documents 000/002/004 write
exactly ``j1_in``, ``k2_out``, ``w_j1k1``, ``w_k1o``; 003 writes ``h_in1`` for ``h1_in``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxbp.worked.render._items import Math


def number(value: float, digits: int) -> str:
    """``value`` to ``digits`` significant digits, without a trailing ``.0`` or a ``-0``."""
    text = f"{float(value):.{digits}g}"
    return "0" if text in ("-0", "0", "-0e+00") else text


def matrix_text(value: np.ndarray, digits: int) -> str:
    """``[1 2]`` for one row, ``[1 2; 3 4]`` for several, ``[..], [..]`` per example when 3-D."""
    value = np.asarray(value)
    if value.ndim == 0:
        return number(float(value), digits)
    if value.ndim == 1:
        return "[" + " ".join(number(v, digits) for v in value) + "]"
    if value.ndim == 2:
        return "[" + "; ".join(" ".join(number(v, digits) for v in row) for row in value) + "]"
    return ", ".join(matrix_text(block, digits) for block in value)


def latex_number(value: float, digits: int) -> str:
    """A number for LaTeX math: ``1e-05`` becomes ``1 \\times 10^{-5}``."""
    text = number(value, digits)
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa} \\times 10^{{{int(exponent)}}}"
    return text


def bmatrix(value: np.ndarray, digits: int) -> str:
    """A ``bmatrix`` of a 1-D or 2-D array; a 3-D array is one ``bmatrix`` per example."""
    value = np.asarray(value)
    if value.ndim == 0:
        return latex_number(float(value), digits)
    if value.ndim == 3:
        return ",\\; ".join(bmatrix(block, digits) for block in value)
    rows = np.atleast_2d(value)
    body = " \\\\ ".join(" & ".join(latex_number(v, digits) for v in row) for row in rows)
    return f"\\begin{{bmatrix}} {body} \\end{{bmatrix}}"


class Units:
    """Symbols of the units of one network, given one letter per layer of units (input first)."""

    def __init__(self, letters: tuple[str, ...], sizes: tuple[int, ...]) -> None:
        self.letters, self.sizes = letters, sizes

    def unit(self, layer: int, j: int) -> str:
        """``j1`` for unit 0 of layer 1 with letter ``j``; ``o`` in a one-unit layer."""
        return self.unit_math(layer, j).text

    def unit_math(self, layer: int, j: int) -> Math:
        """:meth:`unit` as text and LaTeX (``j_{1}``)."""
        letter = self.letters[layer]
        if self.sizes[layer] == 1:
            return Math(letter, letter)
        return Math(f"{letter}{j + 1}", f"{letter}_{{{j + 1}}}")

    def out(self, layer: int, j: int) -> Math:
        """The output of a unit: ``j1_out``, or the input unit itself (``i1``) for layer 0."""
        unit = self.unit_math(layer, j)
        return unit if layer == 0 else Math(f"{unit.text}_out", f"{unit.latex}^{{\\mathrm{{out}}}}")

    def in_(self, layer: int, j: int) -> Math:
        """The input of a unit: ``j1_in``."""
        unit = self.unit_math(layer, j)
        return Math(f"{unit.text}_in", f"{unit.latex}^{{\\mathrm{{in}}}}")

    def weight(self, layer: int, i: int, j: int) -> Math:
        """``w_j1k1``: the weight of layer ``layer`` from unit ``i`` below to unit ``j``."""
        source, target = self.unit_math(layer - 1, i), self.unit_math(layer, j)
        return Math(f"w_{source.text}{target.text}", f"w_{{{source.latex}\\,{target.latex}}}")

    def layer_symbol(self, layer: int, kind: str) -> str:
        """Generic symbols of a whole layer: ``j_in``, ``j_out``, ``w_ij``, ``b_j``."""
        return self.layer_math(layer, kind).text

    def layer_math(self, layer: int, kind: str) -> Math:
        """:meth:`layer_symbol` as text and LaTeX; ``kind`` is ``in``, ``out``, ``w`` or ``b``."""
        letter, below = self.letters[layer], self.letters[layer - 1]
        if kind == "in":
            return Math(f"{letter}_in", f"{letter}^{{\\mathrm{{in}}}}")
        if kind == "out":
            return Math(f"{letter}_out", f"{letter}^{{\\mathrm{{out}}}}")
        if kind == "w":
            return Math(f"w_{below}{letter}", f"w_{{{below}{letter}}}")
        return Math(f"b_{letter}", f"b_{{{letter}}}")


def partial(numerator: str, denominator: str) -> str:
    """``∂num/∂den`` in plain text."""
    return f"∂{numerator}/∂{denominator}"


def partial_latex(numerator: str, denominator: str) -> str:
    return f"\\frac{{\\partial {numerator}}}{{\\partial {denominator}}}"


#: The loss in the documents' notation: ``Loss`` in text, ``L`` in LaTeX.
LOSS = Math("Loss", "L")


def partial_math(numerator: Math, denominator: Math) -> Math:
    """:func:`partial` and :func:`partial_latex` together."""
    return Math(
        partial(numerator.text, denominator.text), partial_latex(numerator.latex, denominator.latex)
    )


def verification_summary(trace: Any, method: str = "") -> str:
    """One line: how many quantities JAX recomputed, the largest difference, the verdict;
    ``method`` says how the manual chain rule computed (e.g. ``", the convolution as im2col"``)."""
    worst = float(np.max([check.max_abs_diff for check in trace.checks]))  # nan wins
    verdict = "verified" if trace.verified else "NOT verified"
    return (
        f"Every number computed by the manual chain rule in float64{method}; "
        f"{len(trace.checks)} quantities recomputed by JAX (jax.grad), largest difference "
        f"{worst:.1e}: {verdict}."
    )
