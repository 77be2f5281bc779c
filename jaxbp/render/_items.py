"""The pieces of a rendered worked example: quantities, chain-rule lines, notes, sections."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Quantity:
    """One named array: ``key`` is the jaxbp name, ``symbol`` the seeds' notation."""

    key: str
    title: str
    symbol: str
    symbol_latex: str
    lhs_latex: str
    formula: str
    formula_latex: str
    value: np.ndarray


@dataclasses.dataclass(frozen=True)
class Chain:
    """The chain rule for one weight (or one hidden output), symbolically and with the numbers."""

    key: str
    symbolic: str
    symbolic_latex: str
    numbers: str
    numbers_latex: str


@dataclasses.dataclass(frozen=True)
class Note:
    text: str


Item = Quantity | Chain | Note


@dataclasses.dataclass(frozen=True)
class Section:
    title: str
    items: tuple[Item, ...]
