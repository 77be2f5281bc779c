"""Safe arithmetic over the named quantities of a worked example: ``0.5*(y[0,0]-a2[0,0])**2``.

A published or hand-computed number says which quantity it is with an expression over the names
of :mod:`jaxbp.worked.grading._records` (``z1``, ``dW2``, ``W1_new``, ...). The expression is parsed by
Python's ``ast`` and checked against a whitelist before anything is evaluated, and it is evaluated
by walking that tree here, never by ``eval``. Allowed:

- names (``loss``, ``W2_new``), looked up in the dict of quantities; nothing else is reachable;
- subscripts with integer indices, slices of integers, or tuples of them (``W2_new[0, 1]``,
  ``z1[0, -1]``, ``a1[0, :]``), on a name only; a chain of integer subscripts is read as one
  (``W1[0][1]`` is ``W1[0, 1]``); a slice gives several numbers, so it stands inside a function
  that reduces it (``sum(a1[0, :])``), never as a graded number of its own;
- number constants (``0.5``, ``2``, ``1e-3``); no strings, booleans or complex numbers;
- ``+ - * / **``, unary ``-`` and ``+``, and parentheses;
- calls of the functions in ``FUNCTIONS`` by name, with positional arguments only:
  ``exp log tanh sigmoid sqrt abs`` of one argument, element by element; ``sum mean`` of one
  argument, over all its entries; ``max min`` of one argument (its largest or smallest entry) or
  of several (element by element), so a softmax is written as students write it,
  ``exp(z2[0, 1]) / sum(exp(z2[0]))``.

Attribute access, any other call, lambdas, comprehensions, comparisons and everything else are refused
with :class:`ExpressionError`, as are texts over ``MAX_LENGTH`` characters, trees deeper than
``MAX_DEPTH`` and exponents larger than ``MAX_EXPONENT`` in magnitude. The arithmetic is float64.
A division by zero (``1/0``, ``0**-1``) is an error, and so is a result that is not a finite
number (``log(0)``, ``sqrt(-1)``, an overflow): such a value cannot be graded.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from jaxbp.worked.grading.functions import FUNCTIONS

MAX_LENGTH = 200
MAX_DEPTH = 20
MAX_EXPONENT = 64.0
_WEIGHT = re.compile(r"d?W\d+(_new)?")

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}


_ALLOWED = ", ".join(FUNCTIONS)


class ExpressionError(ValueError):
    """An expression that is not allowed or cannot be evaluated; the message says why."""


@dataclasses.dataclass(frozen=True)
class Expression:
    """A parsed, whitelisted expression.

    Attributes:
        text: the expression as written.
        tree: its checked ``ast`` tree.
        names: the quantity names it uses, in order of appearance.
    """

    text: str
    tree: ast.expr = dataclasses.field(repr=False, compare=False)
    names: tuple[str, ...] = ()

    def evaluate(self, quantities: Mapping[str, Any]) -> float:
        """The float value of the expression over ``quantities`` (name -> number or array).

        Raises:
            ExpressionError: on an unknown name, an index out of range, or a result that is not
                a single number.
        """
        with np.errstate(all="ignore"):
            value = np.asarray(_evaluate(self.tree, quantities, self.text), np.float64)
        example = f"{self.names[0] if self.names else 'z1'}[0, 0]"
        if value.size != 1 and any(isinstance(n, ast.Slice) for n in ast.walk(self.tree)):
            raise ExpressionError(
                f"{self.text!r} takes a slice (':') and gives an array of shape {value.shape}; a "
                f"row grades one number: index one entry, as in {example}, or reduce the slice "
                "with sum(), mean(), max() or min()."
            )
        if value.size != 1:
            raise ExpressionError(
                f"{self.text!r} is an array of shape {value.shape}, not one number; index it, "
                f"e.g. {example}."
            )
        number = float(value.reshape(()))
        if not np.isfinite(number):
            raise ExpressionError(
                f"{self.text!r} is {number} here, not a finite number (a logarithm of 0 or of a "
                "negative number, a square root of a negative number, or an overflow); it "
                "cannot be graded."
            )
        return number

    def transposed(self) -> list[tuple[str, Expression]]:
        """Variants with the indices of weight-matrix subscripts ``W2[0, 1]`` swapped.

        Only the names of weight matrices and their gradients and updates (``W``, ``dW``,
        ``W_new``) are swapped: their two indices are (unit below, unit above). With several
        such subscripts (a step ``W1_new[0, 1] - W1[0, 1]``), all of them swapped together comes
        first, then each one on its own.

        Returns:
            ``(text of the swapped subscript or expression, the whole expression swapped)`` pairs.
        """
        positions = [
            position
            for position, node in enumerate(ast.walk(self.tree))
            if isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and _WEIGHT.fullmatch(node.value.id)
            and isinstance(node.slice, ast.Tuple)
            and len(node.slice.elts) == 2
            and not any(isinstance(index, ast.Slice) for index in node.slice.elts)
            and ast.dump(node.slice.elts[0]) != ast.dump(node.slice.elts[1])
        ]
        groups = [[position] for position in positions]
        if len(positions) > 1:
            groups.insert(0, positions)
        variants = []
        for group in groups:
            tree = copy.deepcopy(self.tree)
            swapped = [n for i, n in enumerate(ast.walk(tree)) if i in group]
            for node in swapped:
                assert isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Tuple)
                node.slice.elts.reverse()
            text = ast.unparse(tree if len(group) > 1 else swapped[0])
            variants.append((text, Expression(ast.unparse(tree), tree, self.names)))
        return variants


def parse(text: str) -> Expression:
    """Parse and check ``text`` against the whitelist (see the module docstring).

    Args:
        text: e.g. ``"W2_new[0, 1]"`` or ``"0.5*(y[0,0]-a2[0,0])**2"``.

    Returns:
        An :class:`Expression`.

    Raises:
        ExpressionError: naming what is not allowed.

    Example:
        >>> import numpy as np
        >>> from jaxbp.worked.grading.expression import parse
        >>> parse("0.5 * (y[0, 0] - a2[0, 0]) ** 2").evaluate(
        ...     {"y": np.array([[1.0]]), "a2": np.array([[0.5]])}
        ... )
        0.125
    """
    if not isinstance(text, str):
        raise ExpressionError(f"expected an expression as text, got {type(text).__name__}.")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"expression of {len(text)} characters; at most {MAX_LENGTH} are allowed."
        )
    if not text.strip():
        raise ExpressionError("empty expression; write a quantity such as z1[0, 0].")
    try:
        tree = _Chained().visit(ast.parse(text.strip(), mode="eval").body)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as error:
        reason = error.msg if isinstance(error, SyntaxError) else type(error).__name__
        raise ExpressionError(f"{text!r} is not an expression: {reason}.") from None
    names: list[str] = []
    _check(tree, text, 0, names)
    return Expression(text=text, tree=tree, names=tuple(dict.fromkeys(names)))


class _Chained(ast.NodeTransformer):
    """``W1[0][1]`` as ``W1[0, 1]``: a chain of subscripts whose inner ones are integers is the
    same entry as one subscript with all the indices (NumPy reads them so)."""

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        self.generic_visit(node)
        inner = node.value
        if not (isinstance(inner, ast.Subscript) and isinstance(inner.value, ast.Name)):
            return node
        first = _parts(inner.slice)
        if any(isinstance(part, ast.Slice) for part in first):
            return node  # W1[0:1][0] is not W1[0:1, 0]: refused by _check
        merged = ast.Tuple(elts=[*first, *_parts(node.slice)], ctx=ast.Load())
        return ast.copy_location(ast.Subscript(inner.value, merged, ast.Load()), node)


def _parts(index: ast.expr) -> list[ast.expr]:
    return list(index.elts) if isinstance(index, ast.Tuple) else [index]


def _check(node: ast.AST, text: str, depth: int, names: list[str]) -> None:
    if depth > MAX_DEPTH:
        raise ExpressionError(f"{text!r} is nested more than {MAX_DEPTH} levels deep.")
    if isinstance(node, ast.Name):
        names.append(node.id)
    elif isinstance(node, ast.Constant):
        _number(node, text)
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        _check(node.left, text, depth + 1, names)
        _check(node.right, text, depth + 1, names)
        if isinstance(node.op, ast.Pow):
            _check_exponent(node.right, text)
    elif isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        _check(node.operand, text, depth + 1, names)
    elif isinstance(node, ast.Call):
        _check_call(node, text)
        for argument in node.args:
            _check(argument, text, depth + 1, names)
    elif isinstance(node, ast.Subscript):
        if not isinstance(node.value, ast.Name):
            raise ExpressionError(
                f"{text!r}: only a name can be indexed, once, with all its indices, as in "
                "W1[0, 1] (a slice and then an index, as in W1[0:2][1], is not read)."
            )
        names.append(node.value.id)
        indices = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if len(indices) > 3:
            raise ExpressionError(f"{text!r}: at most 3 indices, as in da_dz2[0, 1, 1].")
        for index in indices:
            _check_index(index, text)
    else:
        raise ExpressionError(
            f"{text!r}: {type(node).__name__} is not allowed; use names, indices such as "
            f"W1[0, 1], numbers, + - * / **, parentheses and the functions {_ALLOWED}."
        )


def _check_call(node: ast.Call, text: str) -> None:
    if not isinstance(node.func, ast.Name):
        raise ExpressionError(
            f"{text!r}: Call is not allowed except of a function by its name: {_ALLOWED}."
        )
    name = node.func.id
    if name not in FUNCTIONS:
        raise ExpressionError(
            f"{text!r}: Call is not allowed to {name[:20]!r}; the functions are {_ALLOWED}."
        )
    if node.keywords or any(isinstance(argument, ast.Starred) for argument in node.args):
        raise ExpressionError(f"{text!r}: {name}() takes plain arguments, as in {name}(z2[0]).")
    _, fewest, most = FUNCTIONS[name]
    if not fewest <= len(node.args) <= most:
        count = f"{fewest}" if fewest == most else f"{fewest} to {most}"
        raise ExpressionError(
            f"{text!r}: {name}() takes {count} argument(s), got {len(node.args)}."
        )


def _number(node: ast.Constant, text: str) -> float:
    value = node.value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExpressionError(f"{text!r}: {value!r} is not a number.")
    try:
        number = float(value)
    except OverflowError:
        number = float("inf")
    if not np.isfinite(number):
        raise ExpressionError(f"{text!r}: the number {str(value)[:20]}... is too large.")
    return number


def _check_exponent(node: ast.expr, text: str) -> None:
    # A constant exponent is bounded here; one computed from names is bounded when evaluated.
    value = node.operand if isinstance(node, ast.UnaryOp) else node
    if isinstance(value, ast.Constant) and abs(_number(value, text)) > MAX_EXPONENT:
        raise ExpressionError(f"{text!r}: exponents are limited to {MAX_EXPONENT:g} in magnitude.")


def _integer(node: ast.expr, text: str) -> int:
    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        sign, node = -1, node.operand
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int)
        and not isinstance(node.value, bool)
        and node.value < 10**6
    ):
        return sign * node.value
    raise ExpressionError(f"{text!r}: indices must be small integers such as 0, 1 or -1.")


def _check_index(node: ast.expr, text: str) -> None:
    if isinstance(node, ast.Slice):
        for part in (node.lower, node.upper, node.step):
            if part is not None:
                _integer(part, text)
        if node.step is not None and _integer(node.step, text) == 0:
            raise ExpressionError(
                f"{text!r}: a slice's step cannot be 0; leave it out (W1[0:2] takes every "
                f"entry) or give a step such as 1 or -1."
            )
    else:
        _integer(node, text)


def _index(node: ast.expr, text: str) -> int | slice:
    if isinstance(node, ast.Slice):
        lower, upper, step = (
            None if part is None else _integer(part, text)
            for part in (node.lower, node.upper, node.step)
        )
        return slice(lower, upper, step)
    return _integer(node, text)


def _evaluate(node: ast.expr, quantities: Mapping[str, Any], text: str) -> Any:
    if isinstance(node, ast.Constant):
        return np.float64(_number(node, text))
    if isinstance(node, ast.Name):
        return _lookup(node.id, quantities, text)
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, quantities, text))
    if isinstance(node, ast.BinOp):
        left = _evaluate(node.left, quantities, text)
        right = _evaluate(node.right, quantities, text)
        if isinstance(node.op, ast.Pow) and np.any(np.abs(right) > MAX_EXPONENT):
            raise ExpressionError(
                f"{text!r}: exponents are limited to {MAX_EXPONENT:g} in magnitude."
            )
        dividing = isinstance(node.op, ast.Div) and np.any(right == 0)
        if dividing or (isinstance(node.op, ast.Pow) and np.any((left == 0) & (right < 0))):
            raise ExpressionError(f"{text!r}: division by zero in the expression.")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)  # checked by parse
        function = FUNCTIONS[node.func.id][0]
        arguments = [_evaluate(argument, quantities, text) for argument in node.args]
        try:
            return np.asarray(function(*arguments), np.float64)
        except ValueError:
            shapes = ", ".join(str(np.shape(argument)) for argument in arguments)
            raise ExpressionError(
                f"{text!r}: {node.func.id}() of arrays of shapes {shapes} that do not combine."
            ) from None
    if isinstance(node, ast.Subscript):
        assert isinstance(node.value, ast.Name)  # checked by parse
        array = _lookup(node.value.id, quantities, text)
        parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        index = tuple(_index(part, text) for part in parts)
        try:
            return array[index]
        except IndexError:
            shown = ", ".join(map(_show, index))
            raise ExpressionError(
                f"{text!r}: index [{shown}] is out of range for {node.value.id} of shape "
                f"{np.shape(array)}{_one_example(node.value.id, array, index)}."
            ) from None
    raise ExpressionError(f"{text!r}: {type(node).__name__} is not allowed.")  # parse refused it


def _one_example(name: str, array: np.ndarray, index: tuple[int | slice, ...]) -> str:
    """For ``z1[1]`` on one example (shape ``(1, n)``): the first index is the example, so the
    entry meant is ``z1[0, 1]``; advice to say so when that entry exists (else ``""``)."""
    if array.ndim != len(index) + 1 or array.shape[0] != 1:
        return ""
    full: tuple[int | slice, ...] = (0, *index)
    try:
        array[full]
    except IndexError:
        return ""
    shown = ", ".join(map(_show, full))
    return f"; the first index is the example (there is one), so the entry is {name}[{shown}]"


def _lookup(name: str, quantities: Mapping[str, Any], text: str) -> np.ndarray:
    value = quantities.get(name)
    if not _is_quantity(value):
        known = ", ".join(sorted(k for k, v in quantities.items() if _is_quantity(v)))
        raise ExpressionError(f"{text!r}: unknown name {name!r}; this network has {known}.")
    return np.asarray(value, np.float64)


def _is_quantity(value: Any) -> bool:
    return isinstance(value, float | int | np.ndarray | np.floating) and not isinstance(value, bool)


def _show(index: int | slice) -> str:
    if isinstance(index, slice):
        return ":".join("" if p is None else str(p) for p in (index.start, index.stop, index.step))
    return str(index)
