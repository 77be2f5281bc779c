"""CSV files for the commands: a header row, numeric feature cells, and an optional target column
whose cells may be numbers or class names (``--target species`` with ``setosa``, ``virginica``).

:func:`read_csv` reads the whole file (at most :data:`jaxbp.data.files.MAX_CSV_BYTES`) and refuses,
with one line naming the file, the line and the column, what :func:`jaxbp.data.files.load_file`
refuses: no file, a folder, no header, no data rows, rows of the wrong length, a feature cell that
is not a number, NaN or infinity. Target cells are kept as text: :func:`encode_labels` turns class
names into the integers ``0..K-1`` in sorted order.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jaxbp.data.files import MAX_CSV_BYTES, DataError


@dataclasses.dataclass(frozen=True)
class Table:
    """A CSV file as read: ``x`` float64 ``(rows, features)`` of the ``columns`` named, and the
    target column's cells as text (``None`` when the file has no target column)."""

    name: str
    x: np.ndarray
    columns: tuple[str, ...]
    target: tuple[str, ...] | None
    lines: tuple[int, ...]  # the file's line of each row


def read_csv(path: str | Path, target: str | None, *, flag: str = "--data") -> Table:
    """The features and the target column ``target`` (``None``: none) of a CSV file.

    Raises:
        DataError: one line naming the file, and the line and column where there is one.
    """
    path = Path(path)
    numbered = _rows(path, flag)
    header = [name.strip() for name in numbered[0][1]]
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise DataError(
            f"{path}: several columns are named {duplicated[0]!r}; give every column its own name"
        )
    if len(numbered) == 1:
        raise DataError(f"{path}: the file holds no examples; it needs at least one data row")
    where = header.index(target) if target is not None and target in header else None
    features = [i for i in range(len(header)) if i != where]
    if not features:
        raise DataError(f"{path}: there are no feature columns besides the target")
    x = np.empty((len(numbered) - 1, len(features)), np.float64)
    labels: list[str] = []
    for index, (line, row) in enumerate(numbered[1:]):
        if len(row) != len(header):
            raise DataError(
                f"{path} line {line}: {len(row)} cells but the header has {len(header)} columns"
            )
        for slot, column in enumerate(features):
            x[index, slot] = _number(path, line, header[column], row[column])
        if where is not None:
            labels.append(row[where].strip())
    columns = tuple(header[i] for i in features)
    lines = tuple(line for line, _ in numbered[1:])
    return Table(path.name, x, columns, None if where is None else tuple(labels), lines)


def _rows(path: Path, flag: str) -> list[tuple[int, list[str]]]:
    if path.is_dir():
        raise DataError(f"{path}: is a directory; {flag} needs a .csv, .npz or .npy file")
    if not path.is_file():
        raise DataError(f"{path}: no such file; check the path given to {flag}")
    size = path.stat().st_size
    if size > MAX_CSV_BYTES:
        raise DataError(
            f"{path}: {size:,} bytes; a CSV may have at most {MAX_CSV_BYTES:,}; save larger data "
            f"as .npy"
        )
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file)
            rows = [(reader.line_num, row) for row in reader if row]
    except (csv.Error, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not a readable CSV file ({error})") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read the file ({error.strerror or error})") from None
    if not rows:
        raise DataError(f"{path}: the file is empty; it needs a header row and data rows")
    return rows


def _number(path: Path, line: int, column: str, cell: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise DataError(
            f"{path} line {line}, column {column!r}: {cell[:40]!r} is not a number; every "
            f"feature cell must be numeric"
        ) from None
    if not math.isfinite(value):
        raise DataError(
            f"{path} line {line}, column {column!r}: {cell.strip()!r} is not a finite number; "
            f"remove or fill that row"
        )
    return value


def is_numeric(cells: Sequence[str]) -> bool:
    """Whether every cell is a number (then the labels are the numbers themselves)."""
    try:
        for cell in cells:
            float(cell)
    except ValueError:
        return False
    return True


def encode_labels(
    table: Table, target: str, classes: Sequence[str] | None = None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """The target column's class names as integers: ``classes`` (a trained run's), or the
    sorted distinct names.

    Raises:
        DataError: an empty cell, a name that is not one of ``classes``, or (without
            ``classes``) one number written two ways, such as ``1`` and ``1.0``.
    """
    cells, name = table.target or (), table.name
    for line, cell in zip(table.lines, cells, strict=True):
        if not cell:
            raise DataError(f"{name} line {line}, column {target!r}: the class label is empty")
    names = tuple(sorted(set(cells))) if classes is None else tuple(classes)
    if classes is None:
        _refuse_one_number_written_two_ways(table, target, names)
    code = {label: i for i, label in enumerate(names)}
    unknown = [(line, cell) for line, cell in zip(table.lines, cells, strict=True) if cell not in code]  # fmt: skip
    if unknown:
        line, cell = unknown[0]
        shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
        raise DataError(
            f"{name} line {line}, column {target!r}: class {cell[:40]!r} is not one the run "
            f"was trained on ({shown})"
        )
    return np.array([code[cell] for cell in cells], np.int64), names


def _refuse_one_number_written_two_ways(table: Table, target: str, names: Sequence[str]) -> None:
    """Text labels that mix numbers and names (``0``, ``1``, ``1.0``, ``cat``) are compared as
    text, so ``1`` and ``1.0`` would be two classes; refuse that, naming both and their lines."""
    first: dict[float, str] = {}
    for label in names:
        try:
            value = float(label)
        except ValueError:
            continue
        if value in first:
            lines: dict[str, int] = {}
            for line, cell in zip(table.lines, table.target or (), strict=True):
                lines.setdefault(cell, line)
            one, two = sorted((first[value], label), key=lines.__getitem__)
            raise DataError(
                f"{table.name} line {lines[two]}, column {target!r}: the class labels "
                f"{one[:40]!r} (line {lines[one]}) and {two[:40]!r} are one number written two "
                "ways; as text they would be two classes: write each class one way"
            )
        first[value] = label
