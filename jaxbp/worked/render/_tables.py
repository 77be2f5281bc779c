"""The diagnostics and comparison tables as data, which each renderer formats its own way.

A :class:`Table` holds what the tables say: a title, lines of text before the table, the columns
(header and layout hints), the rows of cells, the warnings after it. The renderers
(:mod:`jaxbp.worked.render._markdown`, :mod:`jaxbp.worked.render._latex`, :mod:`jaxbp.worked.render._terminal`) only
format it. A cell is a string, or a :class:`Mark` (a verdict: ✓ or ✗ with its reason).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from jaxbp.worked.grading._records import DOCUMENTS

if TYPE_CHECKING:
    from jaxbp.worked.diagnostics import Diagnostics
    from jaxbp.worked.render.compare import Row


@dataclasses.dataclass(frozen=True)
class Mark:
    """A verdict cell: ``text`` (``✓``, or ``✗ should be …:``) in the verdict's colour where there
    is colour, then ``detail`` (the reason; ``None`` when there is none to give)."""

    text: str
    ok: bool
    detail: str | None = None

    @property
    def plain(self) -> str:
        return self.text if self.detail is None else f"{self.text} {self.detail}"


Cell = str | Mark


def plain(cell: Cell) -> str:
    """The text of a cell, without colour."""
    return cell.plain if isinstance(cell, Mark) else cell


@dataclasses.dataclass(frozen=True)
class Column:
    """A column: ``title`` is its header; ``short``, a narrower header for the terminal; ``latex``,
    a LaTeX header where math reads better than the escaped title. Layout: ``code`` (Markdown code
    spans), ``latex_type`` (``l``, ``r`` or ``p{…}``), and in the terminal ``right`` (right-aligned
    and never wrapped), ``max_width`` (folded beyond it) and ``fill`` (takes the free width)."""

    title: str
    short: str = ""
    latex: str = ""
    code: bool = False
    latex_type: str = "l"
    right: bool = False
    max_width: int | None = None
    fill: bool = False


@dataclasses.dataclass(frozen=True)
class TableRow:
    cells: tuple[Cell, ...]
    group: str = ""


@dataclasses.dataclass(frozen=True)
class Table:
    """One table. Rows sharing a ``group`` (a step of a document) stand together: the group is a
    sub-heading in Markdown and the terminal, the ``group_column`` in LaTeX. ``warnings`` follow
    the table; ``all_clear`` is said instead when there are none (Markdown and terminal). A
    ``long`` table may run over a page (a ``longtable`` in LaTeX)."""

    title: str
    intro: tuple[str, ...]
    columns: tuple[Column, ...]
    rows: tuple[TableRow, ...]
    group_column: Column | None = None
    warnings: tuple[str, ...] = ()
    all_clear: str = ""
    long: bool = False

    @property
    def fill(self) -> bool:
        return any(column.fill for column in self.columns)


_DIAGNOSTICS_COLUMNS = (
    Column("layer", latex_type="r"),
    Column("activation"),
    Column("‖dL/dW‖", latex="$\\|\\partial L/\\partial W\\|$", latex_type="r"),
    Column(
        "ratio to the layer above",
        short="ratio to above",
        latex="ratio to layer above",
        latex_type="r",
    ),
    Column("activation derivative range", short="da/dz range", latex="derivative range"),
    Column("dead ReLU units", short="dead ReLUs"),
)

_COMPARISON_COLUMNS = (
    Column("symbol", code=True, latex_type="p{0.2\\textwidth}", max_width=24),
    Column("published", short="written", latex_type="r", right=True),
    Column("computed", latex_type="r", right=True),
    Column("", latex_type="p{0.33\\textwidth}", fill=True),
)

_ROUNDING_RULE = (
    " ✓: within one unit of the last printed digit (the documents round and carry rounded values)."
)


def diagnostics_table(diagnostics: Diagnostics) -> Table:
    """Per layer: the gradient norm, its ratio to the layer above, the derivative range, dead units."""
    rows = []
    for layer in diagnostics.layers:
        ratio = "" if layer.ratio_to_above is None else f"{layer.ratio_to_above:.3g}"
        dead = ", ".join(str(j + 1) for j in layer.dead_units) or "none"
        cells = (
            str(layer.index),
            layer.activation,
            f"{layer.grad_norm:.3g}",
            ratio,
            f"{layer.derivative_min:.3g} to {layer.derivative_max:.3g}",
            dead,
        )
        rows.append(TableRow(cells))
    return Table(
        "Diagnostics",
        (),
        _DIAGNOSTICS_COLUMNS,
        tuple(rows),
        warnings=diagnostics.warnings,
        all_clear="No warning: no saturated layer, no vanishing or exploding gradient, no dead ReLU.",
    )


def comparison_tables(rows: list[Row]) -> list[Table]:
    """One table per document: each number published (or written) beside the computed one."""
    tables = []
    for document in dict.fromkeys(row.document for row in rows):
        mine = [row for row in rows if row.document == document]
        wrong = sum(not row.matches for row in mine)
        count = count_line(document, len(mine), wrong)
        intro = (source_line(document), count + (_ROUNDING_RULE if document.isdigit() else ""))
        table_rows = tuple(
            TableRow(
                (
                    row.symbol,
                    row.published,
                    row.computed_text,
                    Mark("✓", True)
                    if row.matches
                    else Mark(f"✗ should be {row.correct_text}:", False, row.explanation),
                ),
                group=row.step,
            )
            for row in mine
        )
        tables.append(
            Table(
                heading(document),
                tuple(line for line in intro if line),
                _COMPARISON_COLUMNS,
                table_rows,
                group_column=Column("step", latex_type="p{0.17\\textwidth}"),
                long=True,
            )
        )
    return tables


def heading(document: str) -> str:
    """The title of one document's table: a seed document by number, a numbers file by name."""
    if document.isdigit():
        return f"Document {document}: published against computed"
    return f"{document or 'Your numbers'}: written against computed"


def source_line(document: str) -> str:
    """The seed document's title and origin (``""`` for anything else)."""
    known = DOCUMENTS.get(document)
    return "" if known is None else f"“{known.title}”: {known.source}."


def count_line(document: str, total: int, wrong: int) -> str:
    """``"85 published numbers, 33 wrong (marked ✗)."``, and for a numbers file the rule."""
    if document.isdigit():
        return f"{total} published numbers, {wrong} wrong (marked ✗)."
    return (
        f"{total} numbers, {wrong} wrong (marked ✗); ✓: within one unit of the last written digit "
        "and right to 2 significant digits."
    )
