"""A griffe extension: read the project's Google-style docstrings as Sphinx's napoleon does.

Two spellings that napoleon accepts and griffe does not are rewritten before griffe parses them,
so that the API reference renders them instead of warning:

- an ``Example:`` section is read as ``Examples:`` (its doctest lines render as code, not prose);
- a parameter line naming several parameters, ``x, y: as for fit.``, becomes one line per name.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

SINGULAR_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)
SECTION = re.compile(r"^(\s*)(Args|Arguments|Parameters):\s*$")
GROUPED = re.compile(r"^(\s+)(\w+(?:\s*,\s*\w+)+):(\s.*)?$")


def napoleon_to_griffe(docstring: str) -> str:
    """The docstring with ``Example:`` as ``Examples:`` and grouped parameters split."""
    lines = SINGULAR_EXAMPLE.sub(r"\1Examples:", docstring).splitlines()
    out: list[str] = []
    section_indent: int | None = None
    for line in lines:
        section = SECTION.match(line)
        if section:
            section_indent = len(section.group(1))
        elif line.strip() and section_indent is not None:
            indent = len(line) - len(line.lstrip())
            if indent <= section_indent:
                section_indent = None
        grouped = GROUPED.match(line) if section_indent is not None else None
        if grouped:
            indent, names, rest = grouped.group(1), grouped.group(2), grouped.group(3) or ""
            out.extend(f"{indent}{name.strip()}:{rest}" for name in names.split(","))
        else:
            out.append(line)
    return "\n".join(out)


class NapoleonSpellings(griffe.Extension):
    """Rewrite every docstring with :func:`napoleon_to_griffe` before it is parsed."""

    def on_instance(self, *, node: Any, obj: griffe.Object, agent: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = napoleon_to_griffe(obj.docstring.value)
