"""Numbers files: hand-computed or published numbers of a worked example, as CSV.

One format serves the seed documents' published numbers (``published_000.csv`` ... beside this
module, package data) and a student's own numbers for ``jaxbp explain --check FILE.csv``::

    quantity,value,symbol
    z1[0, 0],1.23,h1
    "0.5*(y[0,0]-a2[0,0])**2",0.3171,Loss
    W2_new[0, 1],0.1601,w6'

``quantity`` (required) is an expression over the names of :mod:`jaxbp.worked.grading._records`, parsed by
:mod:`jaxbp.worked.grading.expression` (never ``eval``); ``value`` (required) is the number as written,
whose last digit sets the tolerance (one unit of it); ``symbol`` (optional) is the writer's own
name for it. The published files add ``document``, ``step``, ``erratum`` and ``correct``; any
other column is ignored. Every problem raises :class:`NumbersFileError` naming the file, the row
and what was wrong, before anything is computed.

Files as students and spreadsheets write them are read too:

- a comma inside brackets or parentheses does not separate fields, so ``W1[0,1],0.25`` and
  ``max(z2[0,0], z2[0,1]),1.2`` need no quotes;
- the separator is the one that splits the header into ``quantity`` and ``value``: ``,``, ``;``
  or a tab; in a ``;`` or tab file a decimal comma is read as a point (``0,25`` is 0.25), as a
  spreadsheet in a locale with decimal commas exports it;
- empty trailing fields (a spreadsheet's empty columns), a byte-order mark, ``\r\n`` line ends
  and UTF-16 text with its byte-order mark ("Unicode text") are accepted.
"""

from __future__ import annotations

import ast
import csv
import io
import math
import re
from importlib import resources
from pathlib import Path

from jaxbp.worked._read import read_bounded
from jaxbp.worked.grading._records import Published
from jaxbp.worked.grading.expression import ExpressionError, parse
from jaxbp.worked.shown import printable

MAX_BYTES = 1_000_000
MAX_ROWS = 10_000
REQUIRED = ("quantity", "value")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,3})?")
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+([eE][+-]?\d{1,3})?")


#: A hand-computed number must agree with the correct value to this many significant digits,
#: whatever its written form: "1", "1e0" or "0e300" does not pass for 0.317.
SIGNIFICANT = 2
#: ... except that a number within this of the correct value always passes (a quantity that is
#: 0 by the algebra may be 1e-17 after float64 round-off; "0" is right for it).
ABSOLUTE = 1e-12


class NumbersFileError(ValueError):
    """A numbers file that cannot be used; the message names the file, the row and the problem."""


def allowed(record: Published, correct: float) -> float:
    """How far a hand-computed number may be from ``correct`` and still pass: one unit of its
    last written digit (:attr:`Published.tolerance`), never more than one unit of the
    ``SIGNIFICANT``-th significant digit of ``correct``, or than ``ABSOLUTE`` where that is more
    (``correct`` 0, or round-off of 0).

    So writing fewer digits, a zero, or an exponent never widens the tolerance beyond what the
    correct value allows: ``0.5`` for 0.54, ``1e0`` for 1.4 and ``0e300`` for 0.317 do not pass,
    while ``2`` for exactly 2 and ``0.0123`` for 0.012304 do.
    """
    cap = 0.0
    if correct != 0 and math.isfinite(correct):
        cap = 10.0 ** (math.floor(math.log10(abs(correct))) + 1 - SIGNIFICANT)
    return min(record.tolerance, max(cap, ABSOLUTE))


def read_numbers(path: str | Path) -> tuple[Published, ...]:
    """Read and validate a numbers file (see the module docstring).

    Args:
        path: a CSV file.

    Returns:
        One :class:`Published` record per row, in file order (``row`` is the line number).

    Raises:
        NumbersFileError: on an unreadable file, a missing column, or a bad row.
    """
    path = Path(path)
    data = read_bounded(path, MAX_BYTES, NumbersFileError, "numbers file")
    return check_repeats(parse_numbers(data, str(path)), str(path))


def check_repeats(records: tuple[Published, ...], where: str) -> tuple[Published, ...]:
    """``records``, refused when two rows give one number (the same quantity, however its indices
    are written, ``W1[0][1]`` or ``W1[0, 1]``, under the same symbol or both without one)
    different values: which answer counts would be a guess. Rows that name themselves apart
    (the symbols ``E`` and ``E again``, or ``h1`` before and after the update) are each graded.

    Raises:
        NumbersFileError: naming both rows and both values.
    """
    seen: dict[tuple[str, str], Published] = {}
    for record in records:
        symbol = "" if record.symbol == record.expression else record.symbol
        first = seen.setdefault((symbol, ast.unparse(parse(record.expression).tree)), record)
        if first.value != record.value:
            named = f"the symbol {symbol[:40]!r} for " if symbol else ""
            raise NumbersFileError(
                f"{where}, rows {first.row} and {record.row}: {named}{record.expression[:40]} "
                f"is given twice, as {first.text[:20]} and {record.text[:20]}; keep one row "
                "(or give the rows different symbols), so the grade does not depend on which "
                "is read."
            )
    return records


def published_numbers(document: str) -> tuple[Published, ...]:
    """The numbers seed document ``document`` (e.g. ``"000"``) publishes, from the package data."""
    name = f"published_{document}.csv"
    data = resources.files("jaxbp.worked.grading").joinpath(name).read_bytes()
    return parse_numbers(data, name)


def parse_numbers(data: bytes, where: str) -> tuple[Published, ...]:
    """The records of a numbers file's bytes; ``where`` names the file in messages."""
    records = tuple(record_of(cells, where, line) for line, cells in read_table(data, where))
    if not records:
        raise NumbersFileError(f"{where}: no rows of numbers under the header.")
    return records


def read_table(data: bytes, where: str) -> list[tuple[int, dict[str, str]]]:
    """The rows of a numbers file as ``(line, {column: cell})``, header checked, blank rows left
    out, decimal commas of a ``;`` or tab file turned into points.

    Raises:
        NumbersFileError: on a file that is not CSV text, a missing column or a row with more
            fields than columns.
    """
    if len(data) > MAX_BYTES:
        raise NumbersFileError(f"{where}: larger than {MAX_BYTES:,} bytes; split it.")
    text = _decode(data, where)
    if "\0" in text:
        raise NumbersFileError(f"{where}: contains NUL bytes; not a CSV text file.")
    delimiter = _delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        rows = list(reader)
    except csv.Error as error:
        raise NumbersFileError(
            f"{where}, line {reader.line_num}: not valid CSV: {error}."
        ) from None
    if not rows:
        raise NumbersFileError(f"{where}: empty; expected a header line such as quantity,value.")
    header = [column.strip().lower() for column in _rejoin(rows[0], delimiter)]
    _check_header(header, where)
    missing = [column for column in REQUIRED if column not in header]
    if missing:
        raise NumbersFileError(
            f"{where}, row 1: the header {delimiter.join(rows[0])[:80]!r} lacks the column(s) "
            f"{', '.join(missing)}; it needs quantity and value (symbol is optional)."
        )
    if len(rows) - 1 > MAX_ROWS:
        raise NumbersFileError(f"{where}: {len(rows) - 1} rows; at most {MAX_ROWS:,} are read.")
    table = []
    for line, row in enumerate(rows[1:], start=2):
        row = _rejoin(row, delimiter)
        while len(row) > len(header) and not row[-1].strip():
            row = row[:-1]  # a spreadsheet's empty columns
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            raise NumbersFileError(
                f"{where}, row {line}: {len(row)} fields for {len(header)} columns "
                f'(quote a field that holds a comma outside brackets: "1,5").'
            )
        cells = dict(zip(header, (cell.strip() for cell in row), strict=False))
        if delimiter != "," and _DECIMAL_COMMA.fullmatch(cells.get("value", "")):
            cells["value"] = cells["value"].replace(",", ".")
        table.append((line, cells))
    return table


def _check_header(header: list[str], where: str) -> None:
    """Refuse a column named twice (``symbol,value,value``): which one holds the number would be
    a guess."""
    for name in dict.fromkeys(header):
        at = [str(place) for place, column in enumerate(header, start=1) if column == name]
        if name and len(at) > 1:
            more = f" and {len(at) - 5} more" if len(at) > 5 else ""
            raise NumbersFileError(
                f"{where}, row 1: the header names the column {name[:40]!r} {len(at)} times "
                f"(columns {', '.join(at[:5])}{more}); keep one, so no number is read from the "
                "wrong one."
            )


def _decode(data: bytes, where: str) -> str:
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            return data.decode("utf-16")
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise NumbersFileError(f"{where}: not a UTF-8 text file (is it a CSV file?).") from None


def _delimiter(text: str) -> str:
    """The separator that splits the first line into fields holding quantity and value."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    for delimiter in (",", ";", "\t"):
        fields = next(csv.reader([first], delimiter=delimiter), [])
        named = {field.strip().lower() for field in _rejoin(fields, delimiter)}
        if set(REQUIRED) <= named:
            return delimiter
    return ","


def _rejoin(row: list[str], delimiter: str) -> list[str]:
    """Fields split inside brackets or parentheses joined again: ``W1[0``, ``1]`` -> ``W1[0,1]``."""
    joined: list[str] = []
    depth = 0
    for field in row:
        if depth > 0:
            joined[-1] += delimiter + field
        else:
            joined.append(field)
        depth += sum(field.count(c) for c in "[(") - sum(field.count(c) for c in "])")
    return joined


def record_of(cells: dict[str, str], where: str, line: int) -> Published:
    """One row's record (``cells`` from :func:`read_table`).

    Raises:
        NumbersFileError: on a quantity that does not parse or a value that is not a number.
    """
    quantity, value = cells.get("quantity", ""), cells.get("value", "")
    try:
        expression = parse(quantity)
    except ExpressionError as error:
        raise NumbersFileError(f"{where}, row {line}: quantity {error}") from None
    if not _NUMBER.fullmatch(value) or not math.isfinite(float(value)):
        raise NumbersFileError(
            f"{where}, row {line}: value {value[:40]!r} is not a number written like 0.128, "
            "-1.5 or 2.5e-3."
        )
    correct = cells.get("correct") or None
    if correct is not None and not _NUMBER.fullmatch(correct):
        raise NumbersFileError(f"{where}, row {line}: correct {correct[:40]!r} is not a number.")
    return Published(
        document=printable(cells.get("document", "")),
        step=printable(cells.get("step", "")),
        symbol=printable(cells.get("symbol") or expression.text),
        expression=expression.text,
        text=value,
        erratum=printable(cells.get("erratum", "")) or None,
        correct=correct,
        row=line,
    )
