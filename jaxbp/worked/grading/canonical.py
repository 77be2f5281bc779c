"""Which single entry an expression is, however it is written.

``W1_new[1, 0] - W1[1, 0]``, ``-0.1*dW1[1, 0]`` (with ``lr = 0.1``) and ``W1[1, 0] - W1_new[1, 0]``
name the same number, the step of one weight, up to its sign; ``exp(z2[0, 1])/sum(exp(z2[0]))``
is ``a2[0, 1]`` of a softmax layer. A diagnosis made on the written form would depend on the form
(a replay that changes ``W1_new`` does not change ``dW1``), so it is made on the canonical form:

- a plain entry ``name[i, j]`` of a computed quantity is its own canonical form;
- any other expression is compared with every entry of every quantity, and with every step
  ``W_new - W``, with either sign, on the network and on two perturbations of it (other
  parameters and inputs, the same learning rate): the first that agrees on all three (to 1e-9
  relative) is its canonical form. Agreeing on random networks means agreeing as functions.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxbp.worked.grading.expression import Expression, ExpressionError, parse

_GIVEN = ("x", "y", "a0")
#: The stems of the quantities a step computes (the others are given: x, y, W, b).
COMPUTED = ("xw", "z", "a", "dL_da", "da_dz", "delta", "dW", "db")
_AGREE = 1e-9


@dataclasses.dataclass(frozen=True)
class Canonical:
    """An expression's canonical form: ``sign * name[index]``, or ``sign * (name[index] -
    base[index])`` for a step (``name`` is ``W1_new``, ``base`` is ``W1``).

    Attributes:
        expression: the canonical form, parsed.
        name: the quantity, e.g. ``"W1_new"``; index: its entry, non-negative.
        sign: +1.0 or -1.0; step: whether it is ``name - base``.
    """

    expression: Expression
    name: str
    index: tuple[int, ...]
    sign: float = 1.0
    step: bool = False

    @property
    def base(self) -> str:
        """``W1`` for ``W1_new``: the parameter before the update."""
        return self.name.removesuffix("_new")

    @property
    def entry(self) -> str:
        """The entry's text, ``W1_new[1, 0]``."""
        return text_of(self.name, self.index)

    @property
    def computed(self) -> bool:
        """Whether the entry is computed by the step (a student can get it wrong)."""
        stem = self.name.removesuffix("_new").rstrip("0123456789")
        return (
            self.name.endswith("_new")
            or stem in COMPUTED
            or self.name in ("loss", "loss_new", "dL_da0")
        )

    def entry_of(self, value: float, names: Mapping[str, Any]) -> float:
        """The entry ``name[index]`` a number written for this form stands for."""
        entry = self.sign * value
        if self.step:
            entry += float(np.asarray(names[self.base], np.float64)[self.index])
        return entry


def text_of(name: str, index: tuple[int, ...]) -> str:
    """``W1_new[1, 0]``; ``loss`` for a scalar."""
    return f"{name}[{', '.join(map(str, index))}]" if index else name


def plain(expression: Expression, names: Mapping[str, Any]) -> Canonical | None:
    """The canonical form of a plain entry ``name[i, j]`` (indices made non-negative), or None."""
    tree = expression.tree
    if isinstance(tree, ast.Name):
        name, parts = tree.id, []
    elif isinstance(tree, ast.Subscript) and isinstance(tree.value, ast.Name):
        name = tree.value.id
        parts = tree.slice.elts if isinstance(tree.slice, ast.Tuple) else [tree.slice]
    else:
        return None
    if name not in names:
        return None
    shape = np.shape(names[name])
    try:
        index = tuple(int(ast.literal_eval(part)) for part in parts)
        flat = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)[index]
    except (ValueError, TypeError, IndexError, SyntaxError):
        return None
    if np.ndim(flat) != 0:
        return None
    index = tuple(int(i) for i in np.unravel_index(int(flat), shape)) if shape else ()
    return Canonical(parse(text_of(name, index)), name, index)


def find(expression: Expression, worlds: Sequence[Mapping[str, Any]]) -> Canonical | None:
    """The canonical form of ``expression`` over ``worlds`` (the network's quantities first,
    then those of its perturbations), or None when it is no single entry or step."""
    found = plain(expression, worlds[0])
    if found is not None:
        return found
    try:
        values = np.array([expression.evaluate(world) for world in worlds])
    except ExpressionError:
        return None
    if not np.all(np.isfinite(values)):
        return None
    scale = _AGREE * (1.0 + np.abs(values))
    for name, step, stacked in _candidates(worlds):
        for sign in (1.0, -1.0):
            close = np.all(np.abs(stacked - sign * values[:, None]) <= scale[:, None], axis=0)
            if np.any(close):
                flat = int(np.argmax(close))
                shape = np.shape(worlds[0][name])
                index = tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()
                return Canonical(_parsed(name, index, sign, step), name, index, sign, step)
    return None


def _candidates(worlds: Sequence[Mapping[str, Any]]) -> list[tuple[str, bool, np.ndarray]]:
    """``(name, is a step, values of shape (worlds, entries))``: computed quantities first, then
    the steps ``W_new - W``, then the given ones."""
    first = worlds[0]
    names = [n for n in first if n not in _GIVEN and _is_array(first[n])]
    computed = [n for n in names if not (n[0] in "Wb" and not n.endswith("_new"))]
    out = []
    for name in computed:
        out.append((name, False, _stack(worlds, name)))
    for name in computed:
        base = name.removesuffix("_new")
        if name.endswith("_new") and base in first and base[0] in "Wb":
            out.append((name, True, _stack(worlds, name) - _stack(worlds, base)))
    for name in [n for n in names if n not in computed] + list(_GIVEN):
        if name in first:
            out.append((name, False, _stack(worlds, name)))
    return out


def _stack(worlds: Sequence[Mapping[str, Any]], name: str) -> np.ndarray:
    return np.array([np.asarray(world[name], np.float64).reshape(-1) for world in worlds])


def _is_array(value: Any) -> bool:
    return isinstance(value, float | int | np.ndarray | np.floating) and not isinstance(value, bool)


def _parsed(name: str, index: tuple[int, ...], sign: float, step: bool) -> Expression:
    text = text_of(name, index)
    if step:
        text = f"{text} - {text_of(name.removesuffix('_new'), index)}"
        text = f"-({text})" if sign < 0 else text
    elif sign < 0:
        text = f"-{text}"
    return parse(text)
