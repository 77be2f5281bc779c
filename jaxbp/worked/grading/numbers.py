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
"""

from __future__ import annotations

import csv
import io
import math
import re
from importlib import resources
from pathlib import Path

from jaxbp.worked._read import read_bounded
from jaxbp.worked.grading._records import Published
from jaxbp.worked.grading.expression import ExpressionError, parse

MAX_BYTES = 1_000_000
MAX_ROWS = 10_000
REQUIRED = ("quantity", "value")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,3})?")


class NumbersFileError(ValueError):
    """A numbers file that cannot be used; the message names the file, the row and the problem."""


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
    return parse_numbers(read_bounded(path, MAX_BYTES, NumbersFileError, "numbers file"), str(path))


def published_numbers(document: str) -> tuple[Published, ...]:
    """The numbers seed document ``document`` (e.g. ``"000"``) publishes, from the package data."""
    name = f"published_{document}.csv"
    data = resources.files("jaxbp.worked.grading").joinpath(name).read_bytes()
    return parse_numbers(data, name)


def parse_numbers(data: bytes, where: str) -> tuple[Published, ...]:
    """The records of a numbers file's bytes; ``where`` names the file in messages."""
    if len(data) > MAX_BYTES:
        raise NumbersFileError(f"{where}: larger than {MAX_BYTES:,} bytes; split it.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise NumbersFileError(f"{where}: not a UTF-8 text file (is it a CSV file?).") from None
    if "\0" in text:
        raise NumbersFileError(f"{where}: contains NUL bytes; not a CSV text file.")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        rows = list(reader)
    except csv.Error as error:
        raise NumbersFileError(
            f"{where}, line {reader.line_num}: not valid CSV: {error}."
        ) from None
    if not rows:
        raise NumbersFileError(f"{where}: empty; expected a header line such as quantity,value.")
    header = [column.strip().lower() for column in rows[0]]
    missing = [column for column in REQUIRED if column not in header]
    if missing:
        raise NumbersFileError(
            f"{where}, row 1: the header {','.join(rows[0])[:80]!r} lacks the column(s) "
            f"{', '.join(missing)}; it needs quantity and value (symbol is optional)."
        )
    if len(rows) - 1 > MAX_ROWS:
        raise NumbersFileError(f"{where}: {len(rows) - 1} rows; at most {MAX_ROWS:,} are read.")
    records = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            raise NumbersFileError(
                f"{where}, row {line}: {len(row)} fields for {len(header)} columns "
                f'(quote a quantity that holds a comma: "W1[0, 1]").'
            )
        cells = dict(zip(header, (cell.strip() for cell in row), strict=False))
        records.append(_record(cells, where, line))
    if not records:
        raise NumbersFileError(f"{where}: no rows of numbers under the header.")
    return tuple(records)


def _record(cells: dict[str, str], where: str, line: int) -> Published:
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
        document=cells.get("document", ""),
        step=cells.get("step", ""),
        symbol=cells.get("symbol") or expression.text,
        expression=expression.text,
        text=value,
        erratum=cells.get("erratum") or None,
        correct=correct,
        row=line,
    )
