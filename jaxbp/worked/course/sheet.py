"""What a worksheet asks, in four parts, and the course manifest that ties the sheets together.

The quantities asked, in the names of :mod:`jaxbp.worked.grading._records` with NumPy indices:

- ``forward``: ``z{l}[n,j]`` and ``a{l}[n,j]`` of every layer;
- ``loss``: ``loss``;
- ``backward``, from the output down: ``dL_da{l}``, ``delta{l}`` (dL/dz), ``dW{l}``, ``db{l}``;
- ``update``: ``W{l}_new``, ``b{l}_new`` of every parameter that is not frozen.

Every number is written to ``decimals`` places and graded within one unit of the last of them.
The manifest ``course.json`` of a sheets folder records the course: its title, seed, decimals,
parts, the students and the quantities asked (the same for every student: the variants share
the architecture).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxbp.worked._read import read_bounded
from jaxbp.worked.course.files import CourseError
from jaxbp.worked.course.roster import STUDENT_ID, Student
from jaxbp.worked.grading.expression import parse

if TYPE_CHECKING:
    from jaxbp.model.mlp import MLP

PARTS = ("forward", "loss", "backward", "update")
MANIFEST = "course.json"
FORMAT = "jaxbp-course/1"
_NAME = re.compile(r"^([A-Za-z_]+?)(\d+)?(_new)?$")


@dataclasses.dataclass(frozen=True)
class Course:
    """A sheets folder's manifest.

    Attributes:
        title: the base network's name.
        seed: the course seed the variants were drawn from.
        decimals: the decimals every number is written to.
        parts: the parts asked, in order.
        students: the roster.
        asked: ``(part, quantity)`` for every number asked, in worksheet order.
    """

    title: str
    seed: int
    decimals: int
    parts: tuple[str, ...]
    students: tuple[Student, ...]
    asked: tuple[tuple[str, str], ...]

    @property
    def tolerance(self) -> float:
        """One unit of the last decimal asked."""
        return 10.0**-self.decimals


def asked(
    spec: MLP, batch: int, frozen: Sequence[str] = (), parts: Sequence[str] = PARTS
) -> tuple[tuple[str, str], ...]:
    """``(part, quantity)`` for every number a worksheet asks, in the order it is computed."""
    out: list[tuple[str, str]] = []
    layers = range(1, spec.num_layers + 1)
    sizes, bias = spec.sizes, spec.layer_bias
    if "forward" in parts:
        for n in layers:
            out += [
                ("forward", _q(f"{k}{n}", e, j))
                for k in ("z", "a")
                for e, j in _units(batch, sizes[n])
            ]
    if "loss" in parts:
        out.append(("loss", "loss"))
    if "backward" in parts:
        for n in reversed(layers):
            for k in ("dL_da", "delta"):
                out += [("backward", _q(f"{k}{n}", e, j)) for e, j in _units(batch, sizes[n])]
            out += [("backward", _q(f"dW{n}", i, j)) for i, j in _units(sizes[n - 1], sizes[n])]
            if bias[n - 1]:
                out += [("backward", f"db{n}[{j}]") for j in range(sizes[n])]
    if "update" in parts:
        for n in layers:
            if f"W{n}" not in frozen:
                out += [
                    ("update", _q(f"W{n}_new", i, j)) for i, j in _units(sizes[n - 1], sizes[n])
                ]
            if bias[n - 1] and f"b{n}" not in frozen:
                out += [("update", f"b{n}_new[{j}]") for j in range(sizes[n])]
    return tuple(out)


def _units(rows: int, columns: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(rows) for j in range(columns)]


def _q(name: str, i: int, j: int) -> str:
    return f"{name}[{i},{j}]"


def describe(quantity: str, activations: Sequence[str]) -> str:
    """A few words on what ``quantity`` (as :func:`asked` writes it) is."""
    if quantity == "loss":
        return "the loss, mean over the examples"
    name, _, index = quantity.partition("[")
    parts = [int(i) for i in index.rstrip("]").split(",")] if index else []
    match = _NAME.match(name)
    if not match:
        return ""
    kind, layer = match[1], int(match[2] or 0)
    example = f", example {parts[0]}" if kind in ("z", "a", "dL_da", "delta") else ""
    unit = parts[-1] if parts else 0
    words = {
        "z": f"pre-activation of unit {unit} of layer {layer}{example}",
        "a": f"activation ({activations[layer - 1]}) of unit {unit} of layer {layer}{example}",
        "dL_da": f"dLoss/da of unit {unit} of layer {layer}{example}",
        "delta": f"delta = dLoss/dz of unit {unit} of layer {layer}{example}",
        "dW": f"dLoss/dW{layer}[{parts[0] if parts else 0},{unit}]: unit {parts[0] if parts else 0} "
        f"of layer {layer - 1} to unit {unit} of layer {layer}",
        "db": f"dLoss/db{layer}[{unit}]",
        "W": f"W{layer}[{parts[0] if parts else 0},{unit}] after the step",
        "b": f"b{layer}[{unit}] after the step",
    }
    return words.get(kind, "")


def answer_key(
    names: Mapping[str, Any], questions: Sequence[tuple[str, str]], decimals: int
) -> str:
    """The answer key as CSV: ``quantity,value,part,exact`` (``value`` to ``decimals`` places)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["quantity", "value", "part", "exact"])
    for part, quantity in questions:
        value = parse(quantity).evaluate(names)
        writer.writerow([quantity, written(value, decimals), part, repr(value)])
    return out.getvalue()


def written(value: float, decimals: int) -> str:
    """``value`` to ``decimals`` places, never ``-0.0000``."""
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def blank(questions: Sequence[tuple[str, str]], student: Student) -> str:
    """The CSV a student fills in: ``quantity,value,part,student`` with ``value`` empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["quantity", "value", "part", "student"])
    writer.writerows([quantity, "", part, student.id] for part, quantity in questions)
    return out.getvalue()


def manifest(course: Course) -> str:
    """``course.json``'s text."""
    data = {
        "format": FORMAT,
        "title": course.title,
        "seed": course.seed,
        "decimals": course.decimals,
        "parts": list(course.parts),
        "students": [{"id": s.id, "name": s.name} for s in course.students],
        "asked": [list(question) for question in course.asked],
    }
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def read_manifest(folder: Path) -> Course:
    """The manifest of a sheets folder (written by ``jaxbp exercise``).

    Raises:
        CourseError: on a missing or malformed manifest, naming the file.
    """
    path = folder / MANIFEST
    if not path.is_file():
        raise CourseError(
            f"{folder} has no {MANIFEST}; give the folder jaxbp exercise --out wrote."
        )
    try:
        data = json.loads(read_bounded(path, 10_000_000, CourseError, "course manifest"))
        students = tuple(Student(str(s["id"]), str(s.get("name", ""))) for s in data["students"])
        course = Course(
            title=str(data["title"]),
            seed=int(data["seed"]),
            decimals=int(data["decimals"]),
            parts=tuple(str(p) for p in data["parts"]),
            students=students,
            asked=tuple((str(p), str(q)) for p, q in data["asked"]),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise CourseError(
            f"{path}: not a course manifest ({type(error).__name__}: {error})."
        ) from None
    if data.get("format") != FORMAT or not all(STUDENT_ID.fullmatch(s.id) for s in students):
        raise CourseError(f"{path}: not a {FORMAT} manifest written by jaxbp exercise.")
    if not 1 <= course.decimals <= 10:
        raise CourseError(f"{path}: decimals {course.decimals} is not between 1 and 10.")
    if not course.students or not course.asked:
        raise CourseError(f"{path}: no {'students' if not course.students else 'numbers asked'}; not a manifest jaxbp exercise writes.")  # fmt: skip
    for part in course.parts:
        if part not in PARTS:
            raise CourseError(f"{path}: unknown part {part[:40]!r}; the parts are {', '.join(PARTS)}.")  # fmt: skip
    for part, quantity in course.asked:
        if part not in course.parts:
            raise CourseError(f"{path}: {quantity[:40]!r} is asked in part {part[:40]!r}, which is not one of its parts.")  # fmt: skip
        try:
            parse(quantity)
        except ValueError as error:
            raise CourseError(f"{path}: asked quantity {error}") from None
    return course


def smallest_asked(names: Mapping[str, Any], questions: Sequence[tuple[str, str]]) -> float:
    """The smallest magnitude among the non-zero numbers asked (0 when there is none)."""
    values = np.abs([parse(q).evaluate(names) for _, q in questions])
    nonzero = values[values > 1e-12]
    return float(nonzero.min()) if nonzero.size else 0.0
