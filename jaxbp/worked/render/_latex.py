"""A Trace as a LaTeX document (``amsmath`` ``bmatrix`` equations), ready to compile or paste.

Each quantity is one ``equation*``: a comment line with its jaxbp name (``% z1``), then the
documents' symbol, the formula and the numbers. The chain rule is written symbolically for one weight
per layer, in the documents' notation (``\\partial L / \\partial w_{i\\,j_1}``), then with the numbers.
"""

from __future__ import annotations

from jaxbp.worked.render._items import Chain, Note, Quantity, Section
from jaxbp.worked.render._notation import bmatrix
from jaxbp.worked.render._tables import Table, plain

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
                symbol = f"{item.symbol.latex}:\\quad " if item.symbol.latex else ""
                formula = f" = {item.formula.latex}" if item.formula.latex else ""
                lines += [
                    f"% {item.key}",
                    "\\begin{equation*}",
                    f"\\text{{{text(item.title)}}}\\;\\; {symbol}{item.lhs}{formula}"
                    f" = {bmatrix(item.value, digits)}",
                    "\\end{equation*}",
                ]
            elif isinstance(item, Chain):
                lines += [
                    f"% {item.key}",
                    "\\begin{align*}",
                    f"& {item.symbolic.latex} \\\\",
                    f"& \\quad {item.numbers.latex}",
                    "\\end{align*}",
                ]
            elif isinstance(item, Note):
                lines += ["", text(item.text), ""]
        lines.append("")
    return lines


def table_latex(table: Table) -> list[str]:
    """A :class:`Table` as a ``tabular`` (or ``longtable``) under a ``subsection*``; the group of
    each row is its first column."""
    columns = [*([table.group_column] if table.group_column else []), *table.columns]
    environment = "longtable" if table.long else "tabular"
    lines = [f"\\subsection*{{{text(table.title)}}}"]
    for line in table.intro or ("",):
        lines += [text(line), ""] if line else [""]
    lines += [
        f"\\begin{{{environment}}}{{{''.join(column.latex_type for column in columns)}}}",
        " & ".join(column.latex or text(column.title) for column in columns).rstrip()
        + " \\\\ \\hline",
    ]
    for row in table.rows:
        cells = [*([row.group] if table.group_column else []), *map(plain, row.cells)]
        lines.append(" & ".join(text(cell) for cell in cells) + " \\\\")
    lines += [f"\\end{{{environment}}}", ""]
    if table.warnings or table.all_clear:
        lines += [f"\\paragraph{{Warning.}} {text(warning)}" for warning in table.warnings]
        lines.append("")
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
