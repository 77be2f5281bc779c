"""A Trace in the terminal with rich: a rule per step, a table of quantities, matrices as aligned
grids, published numbers marked green or red."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from rich import box
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.table import Table

from jaxbp.worked.render._items import Chain, Note, Quantity, Section
from jaxbp.worked.render._notation import number

if TYPE_CHECKING:
    from jaxbp.worked.render import _tables


def _grid(value: np.ndarray, digits: int) -> RenderableType:
    value = np.asarray(value)
    if value.ndim == 0:
        return number(float(value), digits)
    blocks = value if value.ndim == 3 else [np.atleast_2d(value)]
    grid = Table.grid(padding=(0, 1))
    for _ in range(blocks[0].shape[1]):
        grid.add_column(justify="right", no_wrap=True)
    for position, block in enumerate(blocks):
        if position:
            grid.add_row(*[""] * block.shape[1])
        for row in block:
            grid.add_row(*(number(v, digits) for v in row))
    return grid


def _simple_table(expand: bool = False) -> Table:
    return Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=expand)


def _quantity_table() -> Table:
    table = _simple_table()
    table.add_column("quantity", max_width=24)
    table.add_column("symbol", max_width=16)
    table.add_column("formula", max_width=22)
    table.add_column("value", justify="right", no_wrap=True)
    return table


def print_sections(console: Console, sections: list[Section], digits: int) -> None:
    for section in sections:
        console.rule(f"[bold]{section.title}", align="left")
        table: Table | None = None
        for item in section.items:
            if isinstance(item, Quantity):
                table = table or _quantity_table()
                table.add_row(
                    f"{item.key}\n[dim]{item.title}",
                    item.symbol.text,
                    item.formula.text,
                    _grid(item.value, digits),
                )
                continue
            if table is not None:
                console.print(table)
                table = None
            if isinstance(item, Chain):
                console.print(f"[bold]chain rule[/bold] {item.symbolic.text}", highlight=False)
                console.print(f"    {item.numbers.text}", highlight=False)
            elif isinstance(item, Note):
                style = "red" if "NOT verified" in item.text else ""
                console.print(item.text, style=style, highlight=False)
        if table is not None:
            console.print(table)
        console.print()


def _cell(cell: _tables.Cell) -> str:
    if isinstance(cell, str):
        return escape(cell)
    colour = "green" if cell.ok else "red"
    detail = "" if cell.detail is None else f" {escape(cell.detail)}"
    return f"[{colour}]{escape(cell.text)}[/{colour}]{detail}"


def print_table(console: Console, table: _tables.Table) -> None:
    """A :class:`jaxbp.worked.render._tables.Table` under a rule; each group of rows opens with a bold
    row of its own, so the reasons get every column the numbers leave free."""
    console.rule(f"[bold]{escape(table.title)}", align="left")
    for line in table.intro:
        console.print(escape(line), highlight=False)
    grid = _simple_table(expand=table.fill)
    for column in table.columns:
        grid.add_column(
            column.short or column.title,
            justify="right" if column.right else "left",
            no_wrap=column.right,
            max_width=column.max_width,
            overflow="fold" if column.max_width or column.fill else "ellipsis",
            ratio=1 if column.fill else None,
        )
    group = ""
    for row in table.rows:
        if table.group_column is not None and row.group and row.group != group:
            grid.add_row(f"[bold]{escape(row.group)}", *[""] * (len(table.columns) - 1))
            group = row.group
        grid.add_row(*map(_cell, row.cells))
    console.print(grid)
    for warning in table.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)
    if table.all_clear and not table.warnings:
        console.print(table.all_clear)
    console.print()


def print_history(console: Console, history: list[float], plot: str) -> None:
    console.rule(f"[bold]Loss over {len(history) - 1} SGD steps", align="left")
    console.print(
        "  ".join(f"{step}: {loss:.4g}" for step, loss in enumerate(history)), highlight=False
    )
    console.print(plot, highlight=False, markup=False)
    console.print()
