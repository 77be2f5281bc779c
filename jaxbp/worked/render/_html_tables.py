"""The comparison tables (:mod:`jaxbp.worked.render._tables`) as HTML sections of the page.

A table is static: it grades the numbers of the initial values, so the page fades it (and says
so) once a value is edited, as it does every other static part. Every cell is HTML-escaped.
"""

from __future__ import annotations

from html import escape

from jaxbp.worked.render._tables import Mark, Table, plain


def table_html(table: Table) -> str:
    """One :class:`Table` as a ``<section>``: its title, its intro lines, then the rows, each
    group of rows under a row of its own."""
    columns = len(table.columns)
    head = "".join(f"<th>{escape(column.title)}</th>" for column in table.columns)
    rows, group = [], ""
    for row in table.rows:
        if table.group_column is not None and row.group and row.group != group:
            group = row.group
            rows.append(f'<tr><th colspan="{columns}" scope="rowgroup">{escape(group)}</th></tr>')
        rows.append("<tr>" + "".join(_cell(cell) for cell in row.cells) + "</tr>")
    intro = "".join(f'<p class="jaxbp-note">{escape(line)}</p>' for line in table.intro)
    return (
        f'<section class="jaxbp-section jaxbp-grades"><h2>{escape(table.title)}</h2>{intro}\n'
        f'<table class="jaxbp-static"><thead><tr>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(rows)
        + "\n</tbody></table></section>"
    )


def _cell(cell: Mark | str) -> str:
    if isinstance(cell, Mark):
        kind = "jaxbp-right" if cell.ok else "jaxbp-wrong"
        return f'<td class="{kind}">{escape(plain(cell))}</td>'
    return f"<td>{escape(cell)}</td>"
