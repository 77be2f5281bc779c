"""A Trace as Markdown: one section per step, a table of quantities per section.

Each table row gives the quantity's jaxbp name (``z1``, ``dW2``: the names of
:mod:`jaxbp.worked.grading._records`), the documents' symbol, the formula and the value, a matrix written
``[row; row]``; the chain rule for one weight per layer follows the table.
"""

from __future__ import annotations

from jaxbp.worked.render._items import Chain, Note, Quantity, Section
from jaxbp.worked.render._notation import matrix_text
from jaxbp.worked.render._tables import Table, plain
from jaxbp.worked.shown import markdown_text as text


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def code(value: str) -> str:
    """A code span around ``value``, fenced by more backticks than ``value`` holds in a row."""
    if "`" not in value:
        return f"`{value}`"
    longest = max(len(run) for run in "".join(c if c == "`" else " " for c in value).split())
    fence = "`" * (longest + 1)
    return f"{fence} {value} {fence}"


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
                    f"| `{item.key}` {item.title} | `{_cell(item.symbol.text)}` | {_cell(item.formula.text)} "
                    f"| `{matrix_text(item.value, digits)}` |"
                )
                continue
            if in_table:
                lines.append("")
                in_table = False
            if isinstance(item, Chain):
                lines += [
                    f"Chain rule `{item.key}`: `{item.symbolic.text}`",
                    "",
                    f"`{item.numbers.text}`",
                    "",
                ]
            elif isinstance(item, Note):
                lines += [item.text, ""]
        if in_table:
            lines.append("")
    return lines


def table_markdown(table: Table) -> list[str]:
    """A :class:`Table` as a Markdown section; each group of rows gets its own sub-heading."""
    lines = [f"## {text(table.title)}", ""]
    for line in table.intro:
        lines += [text(line), ""]
    header = [
        "|" + "".join(f" {column.title} |" if column.title else " |" for column in table.columns),
        "| " + " | ".join("---" for _ in table.columns) + " |",
    ]
    if table.group_column is None:
        lines += header
    group: str | None = None
    for row in table.rows:
        if table.group_column is not None and row.group != group:
            group = row.group
            lines += [*(["", f"### {text(group)}", ""] if group else []), *header]
        cells = (
            code(_cell(plain(cell))) if column.code else _cell(text(plain(cell)))
            for column, cell in zip(table.columns, row.cells, strict=True)
        )
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if table.warnings or table.all_clear:
        warnings = [f"- **Warning.** {warning}" for warning in table.warnings]
        lines += [*(warnings or [table.all_clear]), ""]
    return lines


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
