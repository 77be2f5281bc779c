"""HTML pieces of the interactive page: numbers, matrices as small tables, quantities, chain rules.

A computed number is ``<td|span data-q="z1[0,2]" data-value="repr(float)">rounded</...>``; an
initial value is ``<input data-q="W1[0,1]" value="...">``. Rows and columns of a matrix are labelled
with the seeds' unit names (``j1``, ``k2``) and, for a batch, the example (``#1``).
"""

from __future__ import annotations

import re
from html import escape
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxbp.worked.render._notation import Units, number

if TYPE_CHECKING:
    from jaxbp.worked.render._items import Chain
    from jaxbp.worked.trace import Trace

_LAYERED = re.compile(r"^(xw|z|a|dL_da|da_dz|delta|dW|db|W|b)(\d+)(_new)?$")
_UPDATE = re.compile(r"^(W|b)\d+_new$")
_CHAIN = re.compile(r"^(dW|dL_da)(\d+)-chain$")


def _q(name: str, index: tuple[int, ...]) -> str:
    return name + ("[" + ",".join(map(str, index)) + "]" if index else "")


def _attributes(q: str, value: float, digits: int) -> tuple[str, str]:
    return f'data-q="{q}" data-value="{float(value)!r}"', escape(number(value, digits))


def scalar(q: str, value: float, digits: int, big: bool = False) -> str:
    """One computed number as a ``<span>``."""
    attributes, text = _attributes(q, value, digits)
    css = "jaxbp-num jaxbp-big" if big else "jaxbp-num"
    return f'<span class="{css}" {attributes}>{text}</span>'


def _input(q: str, value: float) -> str:
    text = repr(float(value))
    text = text[:-2] if text.endswith(".0") else text
    return (
        f'<input data-q="{q}" value="{text}" aria-label="{q}" inputmode="decimal" '
        'spellcheck="false" autocomplete="off">'
    )


def _axes(key: str, shape: tuple[int, ...], units: Units) -> tuple[list[str], list[str]]:
    """Row and column labels: examples or units below, units of the layer."""
    last = len(units.sizes) - 1
    examples = [f"#{n + 1}" for n in range(shape[0])] if len(shape) > 1 and shape[0] > 1 else [""]
    match = _LAYERED.match(key)
    if key in ("x", "y") or match is None:
        layer = last if key == "y" else 0
        return examples, [units.unit(layer, j) for j in range(shape[-1])]
    kind, layer = match[1], int(match[2])
    columns = [units.unit(layer, j) for j in range(shape[-1])]
    if kind in ("W", "dW"):
        return [units.unit(layer - 1, i) for i in range(shape[0])], columns
    if kind in ("b", "db"):
        return [""], columns
    return examples, columns


def _table(
    name: str, value: np.ndarray, prefix: tuple[int, ...], rows: list[str], columns: list[str],
    digits: int, editable: bool, corner: str = "",
) -> str:  # fmt: skip
    grid = np.atleast_2d(value)
    show_rows = any(rows)
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    lines = [f"<tr>{'<th>' + escape(corner) + '</th>' if show_rows else ''}{head}</tr>"]
    for i, row in enumerate(grid):
        cells = []
        for j, v in enumerate(row):
            index = (*prefix, j) if value.ndim == 1 else (*prefix, i, j)
            q = _q(name, index)
            if editable:
                cells.append(f"<td>{_input(q, v)}</td>")
            else:
                attributes, text = _attributes(q, v, digits)
                cells.append(f"<td {attributes}>{text}</td>")
        label = f'<th scope="row">{escape(rows[i])}</th>' if show_rows else ""
        lines.append(f"<tr>{label}{''.join(cells)}</tr>")
    css = "jaxbp-m jaxbp-edit" if editable else "jaxbp-m"
    return f'<table class="{css}">{"".join(lines)}</table>'


def matrix(name: str, value: np.ndarray, units: Units, digits: int, editable: bool) -> str:
    """A 1-D, 2-D or 3-D array (softmax Jacobians: one table per example) as tables."""
    value = np.asarray(value, np.float64)
    rows, columns = _axes(name, value.shape, units)
    if value.ndim < 3:
        return _table(name, value, (), rows, columns, digits, editable)
    blocks = []
    match = _LAYERED.match(name)
    layer = int(match[2]) if match else 0
    outs = [f"{units.unit(layer, i)}_out" for i in range(value.shape[1])]
    ins = [f"{units.unit(layer, j)}_in" for j in range(value.shape[2])]
    for n, block in enumerate(value):
        caption = f'<div class="jaxbp-caption">example #{n + 1}</div>' if len(value) > 1 else ""
        table = _table(name, block, (n,), outs, ins, digits, editable, "∂out/∂in")
        blocks.append(f'<div class="jaxbp-block">{caption}{table}</div>')
    return f'<div class="jaxbp-blocks">{"".join(blocks)}</div>'


def quantity_block(key: str, title_html: str, symbol: str, formula_html: str, body: str) -> str:
    """One named quantity: its jaxbp name, the seeds' symbol, what it is, its formula, its value."""
    return (
        f'<div class="{"jaxbp-q jaxbp-update" if _UPDATE.match(key) else "jaxbp-q"}" '
        f'data-key="{escape(key)}"><div class="jaxbp-qhead">'
        f'<code class="jaxbp-key">{escape(key)}</code><span class="jaxbp-sym">{escape(symbol)}</span>'
        f'</div><div class="jaxbp-title">{title_html}</div>'
        f'<div class="jaxbp-formula">{formula_html}</div>{body}</div>'
    )


def _value(values: dict[str, Any], q: str) -> float:
    match = re.fullmatch(r"(\w+)(?:\[([\d,]+)\])?", q)
    if match is None:
        raise KeyError(q)
    value = np.asarray(values[match[1]])
    index = tuple(int(i) for i in match[2].split(",")) if match[2] else ()
    return float(value[index])


def _products(pairs: list[tuple[str, str]], values: dict[str, Any], digits: int) -> str:
    return " + ".join(
        f"({scalar(a, _value(values, a), digits)})·({scalar(b, _value(values, b), digits)})"
        for a, b in pairs
    )


def chain_block(trace: Trace, chain: Chain, values: dict[str, Any], digits: int) -> str:
    """The chain rule of one weight (``dW{l}-chain``) or one hidden output (``dL_da{l}-chain``)
    with live numbers: each factor is the element of the quantity it comes from."""
    match = _CHAIN.match(chain.key)
    if match is None:  # a chain this page does not know: its static text
        numbers = escape(chain.numbers.text)
    else:
        kind, n = match[1], int(match[2])
        batch = trace.x.shape[0]
        if kind == "dL_da":
            size = trace.sizes[n + 1]
            pairs = [(f"delta{n + 1}[0,{k}]", f"W{n + 1}[0,{k}]") for k in range(size)]
            numbers = f"= {_products(pairs, values, digits)}"
            result = f"dL_da{n}[0,0]"
        elif batch > 1:
            pairs = [(f"delta{n}[{b},0]", f"a{n - 1}[{b},0]") for b in range(batch)]
            numbers = f"= {_products(pairs, values, digits)}"
            result = f"dW{n}[0,0]"
        else:
            prev = f"a{n - 1}[0,0]"
            prev_html = f"({scalar(prev, _value(values, prev), digits)})"
            if trace.activations[n - 1] == "softmax":
                size = trace.sizes[n]
                pairs = [(f"dL_da{n}[0,{k}]", f"da_dz{n}[0,{k},0]") for k in range(size)]
                numbers = f"= ({_products(pairs, values, digits)})·{prev_html}"
            else:
                factors = (f"dL_da{n}[0,0]", f"da_dz{n}[0,0]")
                numbers = "= " + "·".join(
                    f"({scalar(q, _value(values, q), digits)})" for q in factors
                )
                numbers += f"·{prev_html}"
            result = f"dW{n}[0,0]"
        numbers += f" = <b>{scalar(result, _value(values, result), digits)}</b>"
    label = (
        "Chain rule for one weight"
        if chain.key.startswith("dW")
        else "Chain rule for one hidden output"
    )
    return (
        f'<div class="jaxbp-chain"><div class="jaxbp-chain-label">{label}</div>'
        f'<div class="jaxbp-chain-sym">{escape(chain.symbolic.text)}</div>'
        f'<div class="jaxbp-chain-num">{numbers}</div></div>'
    )


def diagram(trace: Trace) -> str:
    """The network as an SVG: one column of units per layer, every weight a line, each layer's
    activation (and bias) under its column."""
    sizes, units = trace.sizes, Units(trace.units, trace.sizes)
    gap, step, radius, top = 120, 38, 14, 18
    height = top + max(sizes) * step + 14
    width = 100 + (len(sizes) - 1) * gap

    def at(layer: int, j: int) -> tuple[float, float]:
        middle = top + max(sizes) * step / 2
        return 50 + layer * gap, middle + (j - (sizes[layer] - 1) / 2) * step

    parts = []
    for layer in range(1, len(sizes)):
        for i in range(sizes[layer - 1]):
            for j in range(sizes[layer]):
                (x1, y1), (x2, y2) = at(layer - 1, i), at(layer, j)
                parts.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}"/>')
    for layer, size in enumerate(sizes):
        kind = "in" if layer == 0 else "out" if layer == len(sizes) - 1 else "hidden"
        for j in range(size):
            x, y = at(layer, j)
            parts.append(
                f'<circle class="jaxbp-{kind}" cx="{x}" cy="{y}" r="{radius}"/>'
                f'<text x="{x}" y="{y + 4}">{escape(units.unit(layer, j))}</text>'
            )
        label = "input" if layer == 0 else trace.activations[layer - 1]
        label += " + b" if layer and trace.bias[layer - 1] else ""
        parts.append(
            f'<text class="jaxbp-label" x="{at(layer, 0)[0]}" y="{height - 3}">{label}</text>'
        )
    return (
        f'<svg class="jaxbp-diagram" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="the network">{"".join(parts)}</svg>'
    )
