"""A Trace as Markdown: one section per step, a table of quantities per section.

Each table row gives the quantity's jaxbp name (``z1``, ``dW2``: the names of
:mod:`jaxbp.worked._records`), the seeds' symbol, the formula and the value, a matrix written
``[row; row]``; the chain rule for one weight per layer follows the table.
"""

from __future__ import annotations

from jaxbp.diagnostics import Diagnostics
from jaxbp.render._items import Chain, Note, Quantity, Section
from jaxbp.render._notation import matrix_text
from jaxbp.render.compare import Row, count_line, heading, source_line


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def sections_markdown(sections: list[Section], digits: int) -> list[str]:
    lines: list[str] = []
    for section in sections:
        lines += [f"## {section.title}", ""]
        in_table = False
        for item in section.items:
            if isinstance(item, Quantity):
                if not in_table:
                    lines += [
                        "| quantity | symbol | formula | value |",
                        "| --- | --- | --- | --- |",
                    ]
                    in_table = True
                lines.append(
                    f"| `{item.key}` {item.title} | `{_cell(item.symbol)}` | {_cell(item.formula)} "
                    f"| `{matrix_text(item.value, digits)}` |"
                )
                continue
            if in_table:
                lines.append("")
                in_table = False
            if isinstance(item, Chain):
                lines += [
                    f"Chain rule `{item.key}`: `{item.symbolic}`",
                    "",
                    f"`{item.numbers}`",
                    "",
                ]
            elif isinstance(item, Note):
                lines += [item.text, ""]
        if in_table:
            lines.append("")
    return lines


def diagnostics_markdown(diagnostics: Diagnostics) -> list[str]:
    lines = [
        "## Diagnostics",
        "",
        "| layer | activation | ‖dL/dW‖ | ratio to the layer above | activation derivative range | dead ReLU units |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for layer in diagnostics.layers:
        ratio = "" if layer.ratio_to_above is None else f"{layer.ratio_to_above:.3g}"
        dead = ", ".join(str(j + 1) for j in layer.dead_units) or "none"
        lines.append(
            f"| {layer.index} | {layer.activation} | {layer.grad_norm:.3g} | {ratio} "
            f"| {layer.derivative_min:.3g} to {layer.derivative_max:.3g} | {dead} |"
        )
    lines.append("")
    lines += [f"- **Warning.** {warning}" for warning in diagnostics.warnings] or [
        "No warning: no saturated layer, no vanishing or exploding gradient, no dead ReLU."
    ]
    return [*lines, ""]


def comparison_markdown(rows: list[Row]) -> list[str]:
    lines: list[str] = []
    document = step = None
    for row in rows:
        if row.document != document:
            document, step = row.document, None
            wrong = sum(not r.matches for r in rows if r.document == document)
            total = sum(r.document == document for r in rows)
            lines += [
                f"## {heading(document)}",
                "",
                *([source_line(document), ""] if source_line(document) else []),
                count_line(document, total, wrong)
                + (
                    " ✓: within one unit of the last printed digit (the documents round and carry "
                    "rounded values)."
                    if document.isdigit()
                    else ""
                ),
                "",
            ]
        if row.step != step:
            step = row.step
            lines += [
                *(["", f"### {step}", ""] if step else []),
                "| symbol | published | computed | |",
                "| --- | --- | --- | --- |",
            ]
        mark = "✓" if row.matches else f"✗ should be {row.correct_text}: {_cell(row.explanation)}"
        lines.append(f"| `{_cell(row.symbol)}` | {row.published} | {row.computed_text} | {mark} |")
    return [*lines, ""]


def history_markdown(history: list[float], plot: str) -> list[str]:
    steps = len(history) - 1
    rows = [f"| {step} | {loss:.6g} |" for step, loss in enumerate(history)]
    return [
        f"## Loss over {steps} SGD steps",
        "",
        "| steps taken | loss |",
        "| --- | --- |",
        *rows,
        "",
        "```",
        plot,
        "```",
        "",
    ]
