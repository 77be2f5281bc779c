"""Renderers of a :class:`jaxbp.worked.trace.Trace`: terminal text (rich), Markdown and LaTeX.

All three show the same document (:mod:`jaxbp.worked.render._document`): the network, the forward pass
from input to output, the loss, the backward pass from output to input with each layer's SGD
update, the forward pass after the update and the check against ``jax.grad``; then the
diagnostics, optionally the loss over several steps and the published numbers of a seed document
beside the computed ones. ``digits`` is the number of significant digits (default 4).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from jaxbp.worked.diagnostics import diagnose
from jaxbp.worked.render import _latex, _markdown
from jaxbp.worked.render._document import build
from jaxbp.worked.render._notation import verification_summary
from jaxbp.worked.render._tables import comparison_tables, diagnostics_table
from jaxbp.worked.render.compare import Row, compare
from jaxbp.worked.render.plot import save_png, text_plot

if TYPE_CHECKING:
    from rich.console import Console

    from jaxbp.worked.trace import Trace

__all__ = (
    "Row",
    "compare",
    "comparison_tables",
    "latex",
    "markdown",
    "print_text",
    "save_png",
    "text",
    "text_plot",
)


def _summary(trace: Trace) -> str:
    return verification_summary(trace)


def markdown(trace: Trace, title: str, digits: int = 4, rows: list[Row] | None = None) -> str:
    """The worked example as Markdown; ``rows`` from :func:`compare` add the published numbers."""
    lines = [f"# {_markdown.text(title)}", "", _summary(trace), ""]
    lines += _markdown.sections_markdown(build(trace, digits), digits)
    lines += _markdown.table_markdown(diagnostics_table(diagnose(trace)))
    if len(trace.history) > 2:
        lines += _markdown.history_markdown(trace.history, text_plot(trace.history))
    for table in comparison_tables(rows or []):
        lines += _markdown.table_markdown(table)
    return "\n".join(lines).rstrip() + "\n"


def latex(trace: Trace, title: str, digits: int = 4, rows: list[Row] | None = None) -> str:
    """The worked example as a complete LaTeX document (``pdflatex`` compiles it)."""
    lines = [*_latex.PREAMBLE, "\\begin{document}", f"\\section*{{{_latex.text(title)}}}", ""]
    lines += [_latex.text(_summary(trace)), ""]
    lines += _latex.sections_latex(build(trace, digits), digits)
    lines += _latex.table_latex(diagnostics_table(diagnose(trace)))
    if len(trace.history) > 2:
        lines += _latex.history_latex(trace.history)
    for table in comparison_tables(rows or []):
        lines += _latex.table_latex(table)
    return "\n".join([*lines, "\\end{document}", ""])


def print_text(
    console: Console, trace: Trace, title: str, digits: int = 4, rows: list[Row] | None = None
) -> None:
    """Print the worked example on a rich ``Console``."""
    from rich.markup import escape

    from jaxbp.worked.render import _terminal as _text

    console.rule(f"[bold]{escape(title)}")
    console.print(_summary(trace), highlight=False)
    console.print()
    _text.print_sections(console, build(trace, digits), digits)
    _text.print_table(console, diagnostics_table(diagnose(trace)))
    if len(trace.history) > 2:
        _text.print_history(console, trace.history, text_plot(trace.history))
    for table in comparison_tables(rows or []):
        _text.print_table(console, table)


def text(
    trace: Trace, title: str, digits: int = 4, rows: list[Row] | None = None, width: int = 110
) -> str:
    """The terminal rendering as plain text (no colours)."""
    from rich.console import Console

    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    print_text(console, trace, title, digits, rows)
    return console.file.getvalue()  # type: ignore[attr-defined]
