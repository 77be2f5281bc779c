"""Text a user supplied (a network's name, a symbol or note in a numbers file, a student's name),
made safe to print to a terminal or write into a document.

:func:`printable` writes every control or format character as its Python escape (ESC as ``\\x1b``,
a right-to-left override as ``\\u202e``), so no escape sequence written into a file reaches a
terminal and no hidden character changes what a reader sees. The renderers escape the result
further for their format (HTML, LaTeX, Markdown, rich markup).
"""

from __future__ import annotations

import unicodedata

MAX_SHOWN = 200


def printable(text: str, limit: int | None = None) -> str:
    """``text`` with control, format, separator and unassigned characters escaped (a plain space
    stays), cut to ``limit`` characters with ``...`` when a limit is given (a title: ``MAX_SHOWN``)."""
    if limit is not None and len(text) > limit:
        text = text[:limit] + "..."
    return "".join(
        char if char == " " or unicodedata.category(char)[0] not in "CZ" else ascii(char)[1:-1]
        for char in text
    )


def markdown_text(value: str) -> str:
    """Text written into Markdown outside code spans, made inert: ``&`` and ``<`` as entities, so
    a name such as ``<img src=x>`` is shown, never read as HTML."""
    return value.replace("&", "&amp;").replace("<", "&lt;")


#: First characters with which a spreadsheet reads a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(value: str) -> str:
    """Text written into a CSV cell a spreadsheet will open, made inert: a cell that starts as a
    formula would (``=HYPERLINK(...)``, ``+1``, ``@SUM``) gets a leading ``'``, which spreadsheets
    show as text."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value
