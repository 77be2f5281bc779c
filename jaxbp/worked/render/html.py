"""The worked example as one self-contained HTML page whose numbers recompute in the browser.

Every initial value (``x``, ``y``, each weight and bias, the learning rate ``lr``) is an
``<input data-q="W1[0,1]">``; every computed number is an element ``data-q="z1[0,2]"`` whose
``data-value`` holds its float64 value as ``repr(float)`` writes it and whose text is rounded to
``digits`` significant digits. Names are those of :meth:`jaxbp.worked.trace.Trace.names` (``z1``,
``dW2``, ``b1_new``, ``loss_new``, ...), indices NumPy's ``[i,j]``.

Python writes every number (so the page reads without JavaScript, e.g. in an untrusted notebook);
``page.js``, plain JavaScript doing the arithmetic of :mod:`jaxbp.manual` in float64, recomputes
all of them on load and on every ``input`` event. The CSS and the script are inlined: the page
needs no network and works from ``file://``. Parameters named in ``frozen`` take no update.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from html import escape
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxbp.worked.render._document import build
from jaxbp.worked.render._html_blocks import chain_block, diagram, matrix, quantity_block, scalar
from jaxbp.worked.render._html_tables import table_html
from jaxbp.worked.render._html_values import data_json, frozen_names, values_of
from jaxbp.worked.render._items import EMPTY, Chain, Item, Math, Note, Quantity, Section
from jaxbp.worked.render._notation import Units
from jaxbp.worked.render._tables import Table

if TYPE_CHECKING:
    from jaxbp.worked.trace import Trace

__all__ = ("fragment", "page", "title_of")


def page(
    trace: Trace,
    title: str,
    digits: int = 4,
    frozen: Sequence[str] | None = None,
    tables: Sequence[Table] = (),
) -> str:
    """The worked example as a complete, self-contained HTML document.

    Args:
        trace: the worked example (:func:`jaxbp.explain`).
        title: the page title.
        digits: significant digits shown (the page's selector changes them; ``data-value`` is exact).
        frozen: parameter names (``"W1"``, ``"b2"``) that take no update; default: the trace's
            ``frozen`` attribute when it has one, else none.
        tables: comparison tables (hand-computed or published numbers against the computed
            ones) shown after the worked example.

    Returns:
        The HTML text.

    Raises:
        ValueError: on unknown frozen names or digits outside 1..17.
    """
    body = fragment(trace, title, digits, frozen, root_id="jaxbp-page", tables=tables)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n"
        "<style>body { margin: 0; background: #f4f5f7; }</style>\n"
        f"</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def fragment(
    trace: Trace,
    title: str,
    digits: int = 4,
    frozen: Sequence[str] | None = None,
    root_id: str | None = None,
    tables: Sequence[Table] = (),
) -> str:
    """The page's content in one ``<div>`` with its style and script, for embedding (notebooks).

    Everything is scoped to the ``<div>``: several fragments on one page do not interfere.
    ``root_id`` is the ``<div>``'s id (default: a fresh unique one). Arguments as :func:`page`.
    """
    frozen = frozen_names(trace, frozen)
    if not (isinstance(digits, int) and 1 <= digits <= 17):
        raise ValueError(f"html.fragment: digits must be an int from 1 to 17, got {digits!r}.")
    root_id = root_id or f"jaxbp-{uuid.uuid4().hex[:12]}"
    values = values_of(trace, frozen)
    sections = build(trace, digits)
    parts = [_header(trace, title, digits), _network(trace, values, frozen, digits)]
    parts += [_section(trace, s, values, frozen, digits) for s in sections[1:]]
    parts += [table_html(table) for table in tables]
    script = _asset("page.js")
    return (
        f'<div class="jaxbp-page" id="{root_id}">\n<style>{_asset("page.css")}</style>\n'
        + "\n".join(parts)
        + f'\n<script type="application/json" class="jaxbp-data">{data_json(trace, title, digits, frozen)}</script>\n'
        + f'</div>\n<script>(function () {{\n{script}\njaxbpPage(document.getElementById("{root_id}"));\n}})();</script>'
    )


def title_of(trace: Trace) -> str:
    """A title for a trace without one: ``"1-4-2-1 network: relu, sigmoid, linear; half_se; lr 0.25"``."""
    sizes, activations = "-".join(map(str, trace.sizes)), ", ".join(trace.activations)
    return f"{sizes} network: {activations}; {trace.loss_name}; lr {trace.learning_rate:g}"


def _asset(name: str) -> str:
    return resources.files("jaxbp.worked.render").joinpath(name).read_text(encoding="utf-8")


def _header(trace: Trace, title: str, digits: int) -> str:
    worst = float(np.max([check.max_abs_diff for check in trace.checks], initial=0.0))
    verdict = "verified" if trace.verified else "NOT verified"
    options = "".join(
        f'<option value="{d}"{" selected" if d == digits else ""}>{d}</option>'
        for d in range(1, 18)
    )
    return (
        f'<header class="jaxbp-top"><h1>{escape(title)}</h1>\n'
        f'<p class="jaxbp-summary jaxbp-static">The initial numbers come from the manual chain '
        f"rule in float64; {len(trace.checks)} quantities recomputed by JAX (jax.grad), largest "
        f"difference {worst:.1e}: <b>{verdict}</b>.</p>\n"
        '<div class="jaxbp-toolbar"><label>digits <select class="jaxbp-digits">'
        f"{options}</select></label>"
        '<button type="button" class="jaxbp-reset">Reset</button>'
        '<button type="button" class="jaxbp-download">Download network file</button></div>\n'
        '<p class="jaxbp-status" role="status">Edit any white box: every number of the forward '
        "pass, the loss, the backward pass and the update follows (this needs JavaScript).</p>"
        "</header>"
    )


def _network(trace: Trace, values: dict[str, Any], frozen: tuple[str, ...], digits: int) -> str:
    units = Units(trace.units, trace.sizes)
    batch = trace.x.shape[0]
    groups = [
        _group(
            "the example",
            [
                quantity_block(
                    "x", "input", units.letters[0], "", matrix("x", trace.x, units, digits, True)
                ),
                quantity_block("y", "target", "y", "", matrix("y", trace.y, units, digits, True)),
            ],
        )
    ]
    for layer in trace.layers:
        n, blocks = layer.index, []
        for name, value, title in (
            (f"W{n}", layer.weights, "weights"),
            (f"b{n}", layer.bias, "biases"),
        ):
            if value is not None:
                tag = ' <span class="jaxbp-frozen">frozen</span>' if name in frozen else ""
                symbol = units.layer_symbol(n, "w" if name[0] == "W" else "b")
                body = matrix(name, value, units, digits, True)
                blocks.append(quantity_block(name, title + tag, symbol, "", body))
        arrow = f"{units.letters[n - 1]} → {units.letters[n]}"
        groups.append(_group(f"layer {n}: {arrow} ({layer.activation})", blocks))
    lr = f'<input data-q="lr" value="{_input_text(trace.learning_rate)}" aria-label="lr" inputmode="decimal">'
    description = (
        f"Sizes {'-'.join(map(str, trace.sizes))}; activations {', '.join(trace.activations)}; "
        f"loss {trace.loss_name}; batch of {batch}. Learning rate lr = {lr}"
    )
    frozen_note = f" Frozen (no update): {', '.join(frozen)}." if frozen else ""
    return (
        '<section class="jaxbp-section jaxbp-network"><h2>Network and initial values</h2>\n'
        f'<div class="jaxbp-overview">{diagram(trace)}'
        f'<p class="jaxbp-note">{description}.{frozen_note}</p></div>\n'
        f'<div class="jaxbp-groups">{"".join(groups)}</div></section>'
    )


def _group(caption: str, blocks: list[str]) -> str:
    return (
        f'<div class="jaxbp-group"><div class="jaxbp-caption">{escape(caption)}</div>'
        f'<div class="jaxbp-quantities">{"".join(blocks)}</div></div>'
    )


def _input_text(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


_UPDATE = re.compile(r"^(W|b)(\d+)_new$")


def _section(
    trace: Trace, section: Section, values: dict[str, Any], frozen: tuple[str, ...], digits: int
) -> str:

    units = Units(trace.units, trace.sizes)
    keys = [item.key for item in section.items if isinstance(item, Quantity)]
    kind = {"forward": "forward", "loss": "loss", "backward": "backward"}.get(
        section.title.split(",")[0].split(" ")[0].lower(), "after"
    )
    kind = "after" if "loss_new" in keys else kind
    html_items: list[str] = []
    blocks: list[str] = []

    def flush() -> None:
        if blocks:
            html_items.append(f'<div class="jaxbp-quantities">{"".join(blocks)}</div>')
            blocks.clear()

    for item in _with_products_after(trace, section.items):
        if isinstance(item, Quantity):
            value = np.asarray(values.get(item.key, item.value))
            formula = escape(f"= {item.formula.text}") if item.formula.text else ""
            update = _UPDATE.match(item.key)
            if update:
                name = f"{update[1]}{update[2]}"
                formula = (
                    f"= {name} (frozen: no update)"
                    if name in frozen
                    else f"= {name} − {scalar('lr', trace.learning_rate, digits)} · d{name}"
                )
            elif item.key == "loss_new":
                formula = f"was {scalar('loss', trace.loss, digits)}"
            body = (
                scalar(item.key, float(value), digits, big=True)
                if value.ndim == 0
                else matrix(item.key, value, units, digits, False)
            )
            blocks.append(
                quantity_block(item.key, escape(item.title), item.symbol.text, formula, body)
            )
            continue
        flush()
        if isinstance(item, Chain):
            html_items.append(chain_block(trace, item, values, digits))
        elif isinstance(item, Note):
            html_items.append(f'<p class="jaxbp-note jaxbp-static">{escape(item.text)}</p>')
    flush()
    return (
        f'<section class="jaxbp-section jaxbp-{kind}"><h2>{escape(section.title)}</h2>\n'
        + "\n".join(html_items)
        + "</section>"
    )


def _with_products_after(trace: Trace, items: tuple[Item, ...]) -> list[Item]:
    """The items, with ``xw{l}_new`` before ``z{l}_new`` where layer ``l`` has a bias (as the
    forward pass shows ``xw{l}`` before ``z{l}``)."""
    out: list[Item] = []
    present = {item.key for item in items if isinstance(item, Quantity)}
    for item in items:
        match = re.match(r"^z(\d+)_new$", item.key) if isinstance(item, Quantity) else None
        if (
            match
            and f"xw{match[1]}_new" not in present
            and trace.layers[int(match[1]) - 1].bias is not None
        ):
            n = int(match[1])
            layer = trace.layers[n - 1]
            out.append(
                Quantity(
                    f"xw{n}_new",
                    "inputs times weights",
                    EMPTY,
                    "",
                    Math(f"a{n - 1}' W{n}'", ""),
                    layer.products_after,
                )
            )
        out.append(item)
    return out
