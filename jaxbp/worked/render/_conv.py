"""A :class:`jaxbp.worked.conv_trace.SequentialTrace` as Markdown (and, through rich, in the terminal).

The document follows the order a student works: the network, the forward pass layer by layer
(a convolution as im2col: the patches matrix, ``z = patches @ K + b``, the activation), the loss,
the backward pass from the output down (``dK = patches^T @ delta``, ``d(patches) = delta @ K^T``
and the col2im scatter-add into the input gradient), the SGD update, the forward pass after it
and the check against ``jax.grad``. Each table row is a quantity's jaxbp name, what it is, its
formula and its value, a matrix written ``[row; row]`` and a 3-D array ``(batch, positions,
channels)`` one matrix per example; one number per layer is worked out in full below its table.
A conv layer's ``W (kernel, C_in, C_out)`` is shown as its kernel matrix ``K (kernel * C_in,
C_out)``, whose column ``c`` is filter ``c``.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from jaxbp.worked.render._conv_layers import (
    HEADER,
    LOSS_FORMULAS,
    backward_section,
    forward_section,
    kernel_matrix,
    table_row,
)
from jaxbp.worked.render._markdown import history_markdown
from jaxbp.worked.render._markdown import text as markdown_text
from jaxbp.worked.render._notation import number, verification_summary
from jaxbp.worked.render.plot import text_plot

if TYPE_CHECKING:
    from jaxbp.worked.conv_trace import SequentialTrace


def _loss(trace: SequentialTrace, digits: int) -> list[str]:
    last = len(trace.layers)
    value, derivative = _loss_text(trace.loss_name)
    return [
        f"## Loss: {trace.loss_name}",
        "",
        *HEADER,
        table_row("y", "target", "(batch, outputs)", trace.y, digits),
        table_row("loss", "the loss", value.replace("a ", f"a{last} ", 1), trace.loss, digits),
        table_row(
            f"dL_da{last}",
            "dLoss/d(prediction)",
            derivative,
            trace.layers[-1].quantities[f"dL_da{last}"],
            digits,
        ),
        "",
    ]


def _loss_text(name: str) -> tuple[str, str]:
    return LOSS_FORMULAS.get(name, (name, f"dLoss/d(prediction) of {name}, / batch"))


def _update(trace: SequentialTrace, digits: int) -> list[str]:
    lr = number(trace.learning_rate, digits)
    lines = [f"## SGD update, learning rate {lr}", "", *HEADER]
    for step in trace.layers:
        q, n = step.quantities, step.index
        for name in (f"W{n}", f"b{n}"):
            if name not in q:
                continue
            shown = "K" if step.kind == "conv1d" and name[0] == "W" else name[0]
            title = (
                "updated kernel matrix"
                if shown == "K"
                else "updated " + ("weights" if name[0] == "W" else "bias")
            )
            lines.append(
                table_row(
                    f"{name}_new",
                    title,
                    f"{name} − {lr}·d{name}" + (f", shown as K{n}" if shown == "K" else ""),
                    kernel_matrix(q, f"{name}_new"),
                    digits,
                )
            )
    return [*lines, ""]


def _after(trace: SequentialTrace, digits: int) -> list[str]:
    lines = ["## Forward pass after the update", "", *HEADER]
    for step in trace.layers:
        n, q = step.index, step.quantities
        if f"z{n}_new" in q:
            lines.append(
                table_row(
                    f"z{n}_new",
                    "pre-activation",
                    f"layer {n} with the updated parameters",
                    q[f"z{n}_new"],
                    digits,
                )
            )
        lines.append(
            table_row(f"a{n}_new", "output", f"layer {n} after the update", q[f"a{n}_new"], digits)
        )
    lines.append(
        table_row(
            "loss_new",
            "the loss after the step",
            f"{trace.loss_name}(a{len(trace.layers)}_new, y)",
            trace.loss_after,
            digits,
        )
    )
    change = "down" if trace.loss_after < trace.loss else "up"
    lines += [
        "",
        f"The loss went {change} from {number(trace.loss, digits)} to {number(trace.loss_after, digits)}.",
        "",
    ]
    return lines


def _checks(trace: SequentialTrace) -> list[str]:
    lines = [
        "## Check against jax.grad",
        "",
        "JAX recomputes every quantity in float64: the forward pass with lax.conv_general_dilated "
        "(not im2col), the gradients with jax.grad. Within round-off means |manual − JAX| ≤ "
        "1e-12 + 1e-10 · max|manual|.",
        "",
        "| quantity | largest abs difference | within round-off |",
        "| --- | --- | --- |",
    ]
    lines += [
        f"| `{check.quantity}` | {check.max_abs_diff:.1e} | {'✓' if check.verified else '✗'} |"
        for check in trace.checks
    ]
    return [*lines, ""]


def summary(trace: SequentialTrace) -> str:
    """One line: how many quantities JAX recomputed, the largest difference, the verdict."""
    return verification_summary(trace, ", the convolution as im2col")


def markdown(trace: SequentialTrace, title: str, digits: int = 4) -> str:
    """The worked example as Markdown."""
    lines = [f"# {markdown_text(title)}", "", summary(trace), "", "## The network", ""]
    lines += ["| layer | what it does | output per example |", "| --- | --- | --- |"]
    lines.append(f"| input | x | {trace.shapes[0]} |")
    lines += [f"| {s.index} | {s.description} | {trace.shapes[s.index]} |" for s in trace.layers]
    examples = "example" if len(trace.x) == 1 else "examples"
    lines += [
        "",
        f"Loss {trace.loss_name}, learning rate {number(trace.learning_rate, digits)}, a batch of "
        f"{len(trace.x)} {examples}. Arrays are (batch, positions, channels), one matrix per "
        "example; im2col turns each window of the input into a row of `patches`, so a "
        "convolution is one matrix product.",
        "",
    ]
    for step in trace.layers:
        lines += forward_section(step, trace, digits)
    lines += _loss(trace, digits)
    for step in reversed(trace.layers):
        lines += backward_section(step, trace, digits)
    lines += _update(trace, digits) + _after(trace, digits) + _checks(trace)
    if len(trace.history) > 2:
        lines += history_markdown(trace.history, text_plot(trace.history))
    return "\n".join(lines).rstrip() + "\n"


def text(trace: SequentialTrace, title: str, digits: int = 4, width: int = 110) -> str:
    """The terminal rendering (rich's Markdown) as plain text."""
    from rich.console import Console
    from rich.markdown import Markdown

    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    console.print(Markdown(markdown(trace, title, digits)))
    return console.file.getvalue()  # type: ignore[attr-defined]
