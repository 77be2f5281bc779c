"""A Trace as a LaTeX document (``amsmath`` ``bmatrix`` equations), ready to compile or paste.

Each quantity is one ``equation*``: a comment line with its jaxbp name (``% z1``), then the
seeds' symbol, the formula and the numbers. The chain rule is written symbolically for one weight
per layer, in the seeds' notation (``\\partial L / \\partial w_{i\\,j_1}``), then with the numbers.
"""

from __future__ import annotations

from jaxbp.diagnostics import Diagnostics
from jaxbp.render._items import Chain, Note, Quantity, Section
from jaxbp.render._notation import bmatrix
from jaxbp.render.compare import Row, count_line, heading, source_line

_SPECIAL = {
    "\\": "\\textbackslash{}",
    "&": "\\&",
    "%": "\\%",
    "$": "\\$",
    "#": "\\#",
    "_": "\\_",
    "{": "\\{",
    "}": "\\}",
    "~": "\\textasciitilde{}",
    "^": "\\textasciicircum{}",
}
_UNICODE = {
    "“": "``",
    "”": "''",
    "−": "-",
    "→": "$\\to$",
    "Σ": "$\\Sigma$",
    "·": "$\\cdot$",
    "ᵀ": "$^{\\top}$",
    "∂": "$\\partial$",
    "⊙": "$\\odot$",
    "½": "1/2",
    "²": "$^2$",
    "δ": "$\\delta$",
    "σ": "$\\sigma$",
    "≤": "$\\le$",
    "≈": "$\\approx$",
    "×": "$\\times$",
    "‖": "$\\|$",
    "✓": "$\\checkmark$",
    "✗": "$\\times$",
    "|": "$|$",
    "<": "$<$",
    ">": "$>$",
}

PREAMBLE = (
    "\\documentclass{article}",
    "\\usepackage{amsmath,amssymb}",
    "\\usepackage{longtable}",
    "\\setcounter{MaxMatrixCols}{64}",
    "\\allowdisplaybreaks",
)


def text(value: str) -> str:
    """Plain text made safe for LaTeX: specials escaped, the few Unicode symbols used as math."""
    escaped = "".join(_SPECIAL.get(char, char) for char in value)
    return "".join(_UNICODE.get(char, char) for char in escaped)


def sections_latex(sections: list[Section], digits: int) -> list[str]:
    lines: list[str] = []
    for section in sections:
        lines += [f"\\subsection*{{{text(section.title)}}}", ""]
        for item in section.items:
            if isinstance(item, Quantity):
                symbol = f"{item.symbol_latex}:\\quad " if item.symbol_latex else ""
                formula = f" = {item.formula_latex}" if item.formula_latex else ""
                lines += [
                    f"% {item.key}",
                    "\\begin{equation*}",
                    f"\\text{{{text(item.title)}}}\\;\\; {symbol}{item.lhs_latex}{formula}"
                    f" = {bmatrix(item.value, digits)}",
                    "\\end{equation*}",
                ]
            elif isinstance(item, Chain):
                lines += [
                    f"% {item.key}",
                    "\\begin{align*}",
                    f"& {item.symbolic_latex} \\\\",
                    f"& \\quad {item.numbers_latex}",
                    "\\end{align*}",
                ]
            elif isinstance(item, Note):
                lines += ["", text(item.text), ""]
        lines.append("")
    return lines


def diagnostics_latex(diagnostics: Diagnostics) -> list[str]:
    lines = [
        "\\subsection*{Diagnostics}",
        "",
        "\\begin{tabular}{rlrrll}",
        "layer & activation & $\\|\\partial L/\\partial W\\|$ & ratio to layer above "
        "& derivative range & dead ReLU units \\\\ \\hline",
    ]
    for layer in diagnostics.layers:
        ratio = "" if layer.ratio_to_above is None else f"{layer.ratio_to_above:.3g}"
        dead = ", ".join(str(j + 1) for j in layer.dead_units) or "none"
        lines.append(
            f"{layer.index} & {layer.activation} & {layer.grad_norm:.3g} & {ratio} & "
            f"{layer.derivative_min:.3g} to {layer.derivative_max:.3g} & {dead} \\\\"
        )
    lines += ["\\end{tabular}", ""]
    lines += [f"\\paragraph{{Warning.}} {text(warning)}" for warning in diagnostics.warnings]
    return [*lines, ""]


def comparison_latex(rows: list[Row]) -> list[str]:
    lines: list[str] = []
    for document in dict.fromkeys(row.document for row in rows):
        mine = [row for row in rows if row.document == document]
        wrong = sum(not row.matches for row in mine)
        lines += [
            f"\\subsection*{{{text(heading(document))}}}",
            text(source_line(document)),
            "",
            text(count_line(document, len(mine), wrong)).replace("✗", "$\\times$"),
            "",
            "\\begin{longtable}{p{0.17\\textwidth}p{0.2\\textwidth}rrp{0.33\\textwidth}}",
            "step & symbol & published & computed & \\\\ \\hline",
        ]
        for row in mine:
            mark = (
                "$\\checkmark$"
                if row.matches
                else f"$\\times$ should be {text(row.correct_text)}: {text(row.explanation)}"
            )
            lines.append(
                f"{text(row.step)} & {text(row.symbol)} & {text(row.published)} & "
                f"{text(row.computed_text)} & {mark} \\\\"
            )
        lines += ["\\end{longtable}", ""]
    return lines


def history_latex(history: list[float]) -> list[str]:
    rows = " \\\\ ".join(f"{step} & {loss:.6g}" for step, loss in enumerate(history))
    return [
        f"\\subsection*{{Loss over {len(history) - 1} SGD steps}}",
        "",
        "\\begin{longtable}{rr}",
        f"steps taken & loss \\\\ \\hline {rows}",
        "\\end{longtable}",
        "",
    ]
