"""A student's worksheet: the network, its numbers, the rules of the step and the numbers to find,
in Markdown and in LaTeX (a complete ``article`` that ``pdflatex`` compiles), and the interactive
HTML page with its answers covered.

The worksheet shows no computed number: only the initial values (``x``, ``y``, weights,
biases, the learning rate) and the quantities to fill in, the same as the blank CSV.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from jaxbp.worked.course.roster import Student
from jaxbp.worked.course.sheet import describe
from jaxbp.worked.shown import markdown_text

LOSSES = {
    "half_se": (
        "half squared error",
        r"L = \tfrac12 \sum_k (a_k - y_k)^2",
        "L = ½ Σ_k (a_k − y_k)²",
    ),
    "mse": (
        "mean squared error",
        r"L = \tfrac1K \sum_k (a_k - y_k)^2",
        "L = (1/K) Σ_k (a_k − y_k)²",
    ),
    "cross_entropy": ("cross-entropy", r"L = -\sum_k y_k \log a_k", "L = −Σ_k y_k log a_k"),
    "softmax_cross_entropy": (
        "softmax cross-entropy of the outputs",
        r"L = -\sum_k y_k \log \operatorname{softmax}(a)_k",
        "L = −Σ_k y_k log softmax(a)_k",
    ),
    "binary_cross_entropy": (
        "binary cross-entropy",
        r"L = -\sum_k \left[y_k \log a_k + (1 - y_k)\log(1 - a_k)\right]",
        "L = −Σ_k [y_k log a_k + (1 − y_k) log(1 − a_k)]",
    ),
}
ACTIVATIONS = {
    "linear": ("f(z) = z", r"f(z) = z"),
    "relu": ("f(z) = max(0, z)", r"f(z) = \max(0, z)"),
    "sigmoid": ("f(z) = 1 / (1 + e^(−z))", r"f(z) = 1/(1 + e^{-z})"),
    "tanh": ("f(z) = tanh z", r"f(z) = \tanh z"),
    "softmax": ("f(z)_j = e^(z_j) / Σ_k e^(z_k)", r"f(z)_j = e^{z_j} / \sum_k e^{z_k}"),
}


def _initial(network: dict[str, Any]) -> list[tuple[str, list[list[float]]]]:
    """``(name, rows)`` of every initial value: x, y, then W1, b1, W2, ..."""
    values = [("x", _rows(network["x"])), ("y", _rows(network["y"]))]
    for n, layer in enumerate(network["params"], start=1):
        values.append((f"W{n}", _rows(layer["w"])))
        if "b" in layer:
            values.append((f"b{n}", _rows(layer["b"])))
    return values


def _rows(value: Any) -> list[list[float]]:
    return (
        [list(map(float, row)) for row in value]
        if isinstance(value[0], list)
        else [list(map(float, value))]
    )


def _number(value: float) -> str:
    return f"{value:g}"


def markdown(
    network: dict[str, Any], student: Student, questions: Sequence[tuple[str, str]], decimals: int
) -> str:
    """The worksheet in Markdown."""
    sizes, activations = network["sizes"], network["activations"]
    loss_name, _, loss_text = LOSSES[network["loss"]]
    lines = [
        f"# {markdown_text(str(network.get('name', 'network')))}: worksheet",
        "",
        f"**Student:** {markdown_text(student.label)}",
        "",
        "## The network",
        "",
        f"A {'-'.join(map(str, sizes))} network, learning rate lr = {_number(network['lr'])}, "
        f"{len(_rows(network['x']))} example(s); loss: {loss_name}, {loss_text}, averaged over "
        "the examples.",
        "",
    ]
    lines += [
        f"- layer {n}: {activation}, {ACTIVATIONS[activation][0]}"
        for n, activation in enumerate(activations, start=1)
    ]
    frozen = network.get("frozen") or []
    lines += [
        "",
        "Forward: a0 = x, z_l = a_(l−1) W_l + b_l, a_l = f_l(z_l). W_l[i, j] joins unit i of "
        "layer l−1 to unit j of layer l; z[n, j] is unit j for example n.",
        "Backward: delta_l = dL/da_l ⊙ f_l'(z_l) (softmax: its Jacobian), dW_l = a_(l−1)ᵀ "
        "delta_l, db_l = the sum of delta_l over the examples, dL/da_(l−1) = delta_l W_lᵀ.",
        "Update: W_l' = W_l − lr·dW_l, b_l' = b_l − lr·db_l"
        + (f"; {', '.join(frozen)} frozen (no update)." if frozen else "."),
        "",
        "## Initial values",
        "",
    ]
    for name, rows in _initial(network):
        lines += [
            f"`{name}`:",
            "",
            "| | " + " | ".join(f"[:, {j}]" for j in range(len(rows[0]))) + " |",
            "| --- |" + " --- |" * len(rows[0]),
        ]
        lines += [
            f"| [{i}, ] | " + " | ".join(map(_number, row)) + " |" for i, row in enumerate(rows)
        ]
        lines.append("")
    lines += [
        "## What to compute",
        "",
        f"Write each number to {decimals} decimals in the value column of `blank.csv` (keep at "
        "least 6 digits in the steps between). Each is marked right within one unit of its "
        "last decimal.",
        "",
    ]
    for part in dict.fromkeys(p for p, _ in questions):
        lines += [f"### {part.capitalize()}", "", "| quantity | what it is | your value |"]
        lines.append("| --- | --- | --- |")
        lines += [f"| `{q}` | {describe(q, activations)} | |" for p, q in questions if p == part]
        lines.append("")
    return "\n".join(lines)


_LATEX = {char: "\\" + char for char in "&%$#_{}"}
_LATEX |= {"\\": r"\textbackslash{}", "~": r"\textasciitilde{}", "^": r"\^{}"}
_LATEX |= {"<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}


def _tex(text: str) -> str:
    """Plain text made safe for LaTeX, one character at a time."""
    return "".join(_LATEX.get(char, char) for char in text)


def latex(
    network: dict[str, Any], student: Student, questions: Sequence[tuple[str, str]], decimals: int
) -> str:
    """The worksheet as a complete LaTeX document (``pdflatex`` it)."""
    sizes, activations = network["sizes"], network["activations"]
    loss_name, loss_math, _ = LOSSES[network["loss"]]
    frozen = network.get("frozen") or []
    out = [
        r"\documentclass[11pt]{article}",
        r"\usepackage[margin=2cm]{geometry}",
        r"\usepackage{amsmath}",
        r"\usepackage{longtable}",
        r"\begin{document}",
        rf"\section*{{{_tex(str(network.get('name', 'network')))}: worksheet}}",
        rf"\textbf{{Student:}} {_tex(student.label)}",
        r"\subsection*{The network}",
        f"A {'-'.join(map(str, sizes))} network, learning rate $\\mathrm{{lr}} = "
        f"{_number(network['lr'])}$, {len(_rows(network['x']))} example(s); loss: {loss_name}, "
        f"${loss_math}$, averaged over the examples.",
        r"\begin{itemize}",
    ]
    out += [
        rf"\item layer {n}: {activation}, ${ACTIVATIONS[activation][1]}$"
        for n, activation in enumerate(activations, start=1)
    ]
    out += [
        r"\end{itemize}",
        r"\[ a_0 = x,\quad z_l = a_{l-1} W_l + b_l,\quad a_l = f_l(z_l) \]",
        r"\[ \delta_l = \frac{\partial L}{\partial a_l} \odot f_l'(z_l),\quad "
        r"\frac{\partial L}{\partial W_l} = a_{l-1}^\top \delta_l,\quad "
        r"\frac{\partial L}{\partial b_l} = \sum_n \delta_{l,n},\quad "
        r"\frac{\partial L}{\partial a_{l-1}} = \delta_l W_l^\top \]",
        r"\[ W_l' = W_l - \mathrm{lr}\,\frac{\partial L}{\partial W_l},\quad "
        r"b_l' = b_l - \mathrm{lr}\,\frac{\partial L}{\partial b_l} \]",
        r"$W_l[i, j]$ joins unit $i$ of layer $l-1$ to unit $j$ of layer $l$; $z[n, j]$ is unit "
        r"$j$ for example $n$; a softmax layer's $f'$ is its Jacobian."
        + (f" Frozen (no update): {_tex(', '.join(frozen))}." if frozen else ""),
        r"\subsection*{Initial values}",
        r"\[",
    ]
    matrices = []
    for name, rows in _initial(network):
        body = r" \\ ".join(" & ".join(_number(v) for v in row) for row in rows)
        matrices.append(f"{name[0]}_{{{name[1:]}}} = \\begin{{bmatrix}} {body} \\end{{bmatrix}}")
    out += [",\\quad\n".join(matrices), r"\]"]
    out += [
        r"\subsection*{What to compute}",
        f"Write each number to {decimals} decimals in the value column of "
        r"\texttt{blank.csv} (keep at least 6 digits in the steps between). Each is marked right "
        "within one unit of its last decimal.",
    ]
    for part in dict.fromkeys(p for p, _ in questions):
        out += [
            rf"\subsubsection*{{{part.capitalize()}}}",
            r"\begin{longtable}{lp{9cm}p{3cm}}",
            r"quantity & what it is & your value \\ \hline",
        ]
        out += [
            rf"\texttt{{{_tex(q)}}} & {_tex(describe(q, activations))} & \\"
            for p, q in questions
            if p == part
        ]
        out.append(r"\end{longtable}")
    out.append(r"\end{document}")
    return "\n".join(out) + "\n"


_COMPUTED = re.compile(r'(<(td|span)\b[^>]*\bdata-q="[^"]*"[^>]*>)[^<]*(</\2>)')
_VALUE = re.compile(r' data-value="[^"]*"')
_STATIC_NOTE = re.compile(r'<p class="jaxbp-note jaxbp-static">.*?</p>', re.S)
_COVER = """<style>
#jaxbp-page:not(.jaxbp-answers) [data-q]:not(input):not(.jaxbp-revealed) {
  color: transparent !important; background: #d5d9e2; border-radius: 3px; cursor: pointer; }
#jaxbp-page .jaxbp-cover-note { margin: 0.4em 0; font-weight: 600; }
</style>
<script>(function () {
  const root = document.getElementById("jaxbp-page");
  root.addEventListener("click", (event) => {
    const cell = event.target.closest("[data-q]:not(input)");
    if (cell) cell.classList.toggle("jaxbp-revealed");
  });
  const button = root.querySelector(".jaxbp-answers-toggle");
  button.addEventListener("click", () => {
    const shown = root.classList.toggle("jaxbp-answers");
    button.textContent = shown ? "Cover the answers" : "Show all answers";
  });
})();</script>
"""


def covered(page: str) -> str:
    """The interactive page (:func:`jaxbp.worked.render.html.page`) with its answers covered.

    Python writes no computed number into it (each is ``?`` and has no ``data-value``, and the
    notes that quote numbers are left out); the page computes them when it opens and covers
    them, a click shows one, **Show all answers** all of them. The answers are covered, not
    secret: the page computes them, as it must to follow an edit.
    """
    page = _STATIC_NOTE.sub("", _VALUE.sub("", page))
    page = _COMPUTED.sub(lambda m: f"{m[1]}?{m[3]}", page)
    page = page.replace(
        '<button type="button" class="jaxbp-download">Download network file</button>',
        '<button type="button" class="jaxbp-download">Download network file</button>'
        '<button type="button" class="jaxbp-answers-toggle">Show all answers</button>',
        1,
    )
    page = page.replace(
        '<p class="jaxbp-status"',
        '<p class="jaxbp-cover-note">The answers are covered: work them out, then click a '
        "number to check it.</p>\n"
        '<p class="jaxbp-status"',
        1,
    )
    return page.replace("</body>", _COVER + "</body>", 1)
