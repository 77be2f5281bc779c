"""The pieces of a rendered worked example: quantities, chain-rule lines, notes, sections."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Math:
    """One expression written for reading as text (terminal, Markdown, HTML) and in LaTeX."""

    text: str
    latex: str


EMPTY = Math("", "")


@dataclasses.dataclass(frozen=True)
class Quantity:
    """One named array: ``key`` is the jaxbp name, ``symbol`` the documents' notation, ``lhs`` the
    jaxbp name in math (LaTeX: ``z^{(1)}``), ``formula`` how it is computed."""

    key: str
    title: str
    symbol: Math
    lhs: str
    formula: Math
    value: np.ndarray


@dataclasses.dataclass(frozen=True)
class Chain:
    """The chain rule for one weight (or one hidden output), symbolically and with the numbers."""

    key: str
    symbolic: Math
    numbers: Math


@dataclasses.dataclass(frozen=True)
class Note:
    text: str


Item = Quantity | Chain | Note


@dataclasses.dataclass(frozen=True)
class Section:
    title: str
    items: tuple[Item, ...]
