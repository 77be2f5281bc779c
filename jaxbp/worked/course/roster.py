"""A class roster: one student a row, ``id`` (required) and ``name`` (optional), as CSV.

::

    id,name
    s01,Ada Lovelace
    s02,Alan Turing

The separator is ``,``, ``;`` or a tab (the one that finds the ``id`` column). An id names the
student's folder and files, so it is a letter or digit followed by up to 63 letters, digits,
``.``, ``_`` or ``-``; ids are unique even when upper and lower case are not told apart (as on
the file systems of two common desktops). Every problem raises :class:`CourseError` naming the
file and the row.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from pathlib import Path

from jaxbp.worked._read import read_bounded
from jaxbp.worked.course.files import CourseError
from jaxbp.worked.shown import MAX_SHOWN, printable

MAX_BYTES = 1_000_000
MAX_STUDENTS = 2000
STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclasses.dataclass(frozen=True)
class Student:
    """One row of the roster."""

    id: str
    name: str = ""

    @property
    def label(self) -> str:
        """``Ada Lovelace (s01)``, or the id alone."""
        return f"{self.name} ({self.id})" if self.name else self.id


def read_roster(path: str | Path) -> tuple[Student, ...]:
    """The students of a roster file, in file order.

    Raises:
        CourseError: on an unreadable file, no ``id`` column (or two), a bad, repeated or
            missing id.
    """
    path = Path(path)
    data = read_bounded(path, MAX_BYTES, CourseError, "roster")
    return parse_roster(data, str(path))


def parse_roster(data: bytes, where: str) -> tuple[Student, ...]:
    """The students of a roster's bytes; ``where`` names the file in messages."""
    if len(data) > MAX_BYTES:
        raise CourseError(f"{where}: larger than {MAX_BYTES:,} bytes; not a roster.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CourseError(f"{where}: not a UTF-8 text file; a roster is CSV text.") from None
    if "\0" in text:
        raise CourseError(f"{where}: contains NUL bytes; a roster is CSV text.")
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    delimiter = next(
        (d for d in (",", ";", "\t") if "id" in [c.strip().lower() for c in first.split(d)]), ","
    )
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as error:
        raise CourseError(f"{where}: not valid CSV: {error}.") from None
    if not rows or "id" not in [c.strip().lower() for c in rows[0]]:
        raise CourseError(f"{where}, row 1: no id column; a roster's header is id,name.")
    header = [c.strip().lower() for c in rows[0]]
    for column in ("id", "name"):
        if header.count(column) > 1:
            places = ", ".join(str(i + 1) for i, c in enumerate(header) if c == column)
            raise CourseError(
                f"{where}, row 1: {header.count(column)} columns are named {column!r} (columns "
                f"{places}); which one counts would be a guess: keep one."
            )
    students: list[Student] = []
    seen: dict[str, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        cells = dict(zip(header, (cell.strip() for cell in row), strict=False))
        student_id, name = cells.get("id", ""), cells.get("name", "")
        if not STUDENT_ID.fullmatch(student_id):
            raise CourseError(
                f"{where}, row {line}: id {student_id[:40]!r} must be a letter or digit, then up "
                "to 63 letters, digits, '.', '_' or '-' (it names the student's files)."
            )
        if student_id.lower() in seen:
            raise CourseError(
                f"{where}, row {line}: id {student_id!r} repeats row {seen[student_id.lower()]} "
                "(ids are compared without case, as some file systems do)."
            )
        seen[student_id.lower()] = line
        students.append(Student(student_id, printable(name, MAX_SHOWN)))
    if not students:
        raise CourseError(f"{where}: no students under the header.")
    if len(students) > MAX_STUDENTS:
        raise CourseError(f"{where}: {len(students)} students; at most {MAX_STUDENTS} are read.")
    return tuple(students)
