"""A Trace in the terminal with rich: a rule per step, a table of quantities, matrices as aligned
grids, published numbers marked green or red."""

from __future__ import annotations

import numpy as np
from rich import box
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.table import Table

from jaxbp.diagnostics import Diagnostics
from jaxbp.render._items import Chain, Note, Quantity, Section
from jaxbp.render._notation import number
from jaxbp.render.compare import Row, count_line, heading, source_line


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


def _quantity_table() -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
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
                    item.symbol,
                    item.formula,
                    _grid(item.value, digits),
                )
                continue
            if table is not None:
                console.print(table)
                table = None
            if isinstance(item, Chain):
                console.print(f"[bold]chain rule[/bold] {item.symbolic}", highlight=False)
                console.print(f"    {item.numbers}", highlight=False)
            elif isinstance(item, Note):
                style = "red" if "NOT verified" in item.text else ""
                console.print(item.text, style=style, highlight=False)
        if table is not None:
            console.print(table)
        console.print()


def print_diagnostics(console: Console, diagnostics: Diagnostics) -> None:
    console.rule("[bold]Diagnostics", align="left")
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in ("layer", "activation", "‖dL/dW‖", "ratio to above", "da/dz range", "dead ReLUs"):
        table.add_column(column)
    for layer in diagnostics.layers:
        ratio = "" if layer.ratio_to_above is None else f"{layer.ratio_to_above:.3g}"
        dead = ", ".join(str(j + 1) for j in layer.dead_units) or "none"
        table.add_row(
            str(layer.index),
            layer.activation,
            f"{layer.grad_norm:.3g}",
            ratio,
            f"{layer.derivative_min:.3g} to {layer.derivative_max:.3g}",
            dead,
        )
    console.print(table)
    for warning in diagnostics.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    if not diagnostics.warnings:
        console.print(
            "No warning: no saturated layer, no vanishing or exploding gradient, no dead ReLU."
        )
    console.print()


def print_comparison(console: Console, rows: list[Row]) -> None:
    for document in dict.fromkeys(row.document for row in rows):
        mine = [row for row in rows if row.document == document]
        wrong = sum(not row.matches for row in mine)
        console.rule(f"[bold]{heading(document)}", align="left")
        if source_line(document):
            console.print(source_line(document), highlight=False)
        rule = (
            " ✓: within one unit of the last written digit (the documents round and carry rounded "
            "values)."
        )
        console.print(count_line(document, len(mine), wrong) + (rule if document.isdigit() else ""))
        # The step is a row of its own, so the reasons get every column the numbers leave free.
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=True)
        table.add_column("symbol", max_width=24, overflow="fold")
        table.add_column("written", justify="right", no_wrap=True)
        table.add_column("computed", justify="right", no_wrap=True)
        table.add_column("", ratio=1, overflow="fold")
        step = None
        for row in mine:
            if row.step and row.step != step:
                table.add_row(f"[bold]{escape(row.step)}", "", "", "")
                step = row.step
            mark = (
                "[green]✓"
                if row.matches
                else f"[red]✗ should be {row.correct_text}:[/red] {escape(row.explanation)}"
            )
            table.add_row(escape(row.symbol), row.published, row.computed_text, mark)
        console.print(table)
        console.print()


def print_history(console: Console, history: list[float], plot: str) -> None:
    console.rule(f"[bold]Loss over {len(history) - 1} SGD steps", align="left")
    console.print(
        "  ".join(f"{step}: {loss:.4g}" for step, loss in enumerate(history)), highlight=False
    )
    console.print(plot, highlight=False, markup=False)
    console.print()
