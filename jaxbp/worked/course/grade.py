"""Grading a class: every student's numbers against their own network, a gradebook, feedback.

A submission is ``submissions/<id>.csv``, read as ``jaxbp explain --check`` reads a numbers file
(unquoted brackets, ``;`` and tabs, decimal commas, a spreadsheet's export). Each number asked is
right, wrong (with the slip that reproduces it, :mod:`jaxbp.worked.grading.mistakes`) or missing
(no row, or an empty value); a row is matched to the number asked by its canonical form, so
``exp(z2[0,1])/sum(exp(z2[0]))`` answers ``a2[0,1]``. Rows for numbers not asked are graded too,
shown in the feedback and left out of the score. A file that cannot be graded gets a status
instead, never an exception: ``missing``, ``empty``, ``not a CSV file``, ``wrong columns``,
``other student's file`` (its ``student`` column names another student, or its numbers are
those of another student's network), ``unreadable``.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jaxbp.worked._read import read_bounded
from jaxbp.worked.course.files import CourseError
from jaxbp.worked.course.sheet import Course
from jaxbp.worked.grading._records import Published
from jaxbp.worked.grading.expression import ExpressionError, parse
from jaxbp.worked.grading.mistakes import Diagnosis
from jaxbp.worked.grading.numbers import MAX_BYTES, NumbersFileError, read_table, record_of
from jaxbp.worked.render.compare import compare

if TYPE_CHECKING:
    from jaxbp.worked.course.roster import Student
    from jaxbp.worked.trace import Trace

GRADED = "graded"


@dataclasses.dataclass(frozen=True)
class Mark:
    """One number asked: ``verdict`` is ``right``, ``wrong`` or ``missing``."""

    part: str
    quantity: str
    verdict: str
    correct: float
    written: str = ""
    mistake: str = ""
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class Grade:
    """One student's grade: ``status`` is ``graded`` or what kept the file from being graded."""

    student: Student
    status: str
    problem: str = ""
    marks: tuple[Mark, ...] = ()
    extra: tuple[Mark, ...] = ()

    def count(self, verdict: str, part: str | None = None) -> int:
        return sum(m.verdict == verdict and part in (None, m.part) for m in self.marks)

    def score(self, part: str | None = None) -> float | None:
        """The share of the numbers asked (in ``part``) that are right; None if none asked."""
        asked = sum(part in (None, m.part) for m in self.marks)
        return self.count("right", part) / asked if asked else None


def _kind(path: Path) -> str:
    """What a path that is not a regular file is, in words."""
    if path.is_dir():
        return "a folder"
    if path.is_fifo():
        return "a named pipe"
    if path.is_socket():
        return "a socket"
    return "a device" if path.is_block_device() or path.is_char_device() else "not a regular file"


def grade_submission(
    course: Course,
    student: Student,
    path: Path,
    trace: Trace,
    others: Mapping[str, Mapping[str, Any]] = {},
) -> Grade:
    """Grade one student's file against their own network (``trace``).

    Args:
        course: the manifest.
        student: whose file it is.
        path: the submission (it may be missing or anything but a CSV file).
        trace: the student's network, one step worked.
        others: the other students' quantities by id (:meth:`Trace.names`), to recognise a
            file of numbers computed for another student's network.
    """
    blank = _blank_marks(course, trace.names())
    if path.is_symlink():  # never followed: it could point at any file of the grader's
        return Grade(student, "unreadable", f"{path.name} is a symbolic link, not a file", blank)
    if not path.exists():
        return Grade(student, "missing", f"no file {path.name}", blank)
    if not path.is_file():
        kind = _kind(path)
        return Grade(student, "unreadable", f"{path.name} is {kind}, not a file", blank)
    try:
        data = read_bounded(path, MAX_BYTES, CourseError, "submission")
    except CourseError as error:
        return Grade(student, "unreadable", str(error), blank)
    if not data.strip():
        return Grade(student, "empty", f"{path.name} is empty", blank)
    try:
        table = read_table(data, path.name)
    except NumbersFileError as error:
        message = str(error)
        wrong_columns = "lacks the column" in message or "the header names" in message
        status = "wrong columns" if wrong_columns else "not a CSV file"
        if "fields for" in message:
            status = "unreadable"
        return Grade(student, status, message, blank)
    named = {cells.get("student", "") for _, cells in table} - {"", student.id}
    if named:
        other = sorted(named)[0]
        problem = f"its student column says {other!r}, not graded"
        return Grade(student, "other student's file", problem, blank)
    return _graded(course, student, path, trace, table, others, blank)


def _graded(
    course: Course,
    student: Student,
    path: Path,
    trace: Trace,
    table: list[tuple[int, dict[str, str]]],
    others: Mapping[str, Mapping[str, Any]],
    blank: tuple[Mark, ...],
) -> Grade:
    diagnosis, names = Diagnosis(trace), trace.names()
    question_of = {_key(parse(q), diagnosis): (p, q) for p, q in course.asked}
    records: list[Published] = []
    keys: list[str] = []
    problems: list[str] = []
    bad: dict[str, Mark] = {}
    for line, cells in table:
        if not cells.get("value", ""):
            continue  # left blank: missing
        try:
            expression = parse(cells.get("quantity", ""))
            expression.evaluate(names)  # a name or index this network lacks
            key = _key(expression, diagnosis)
            record = record_of(cells, path.name, line)
        except ExpressionError as error:
            problems.append(f"row {line}: quantity {error}")
            continue
        except NumbersFileError as error:  # the quantity is fine, the value is not a number
            reason = str(error).removeprefix(f"{path.name}, ")
            if key in question_of and key not in bad:
                bad[key] = Mark(
                    "", cells["quantity"], "wrong", 0.0, cells["value"][:20], "", reason
                )
            else:
                problems.append(reason)
            continue
        if key in question_of and (key in keys or key in bad):
            problems.append(
                f"row {line}: {record.expression} answers a number again; the first counts"
            )
            continue
        records.append(dataclasses.replace(record, document=student.id))
        keys.append(key)
    try:
        rows = compare(records, trace, path.name, tolerance=course.tolerance)
    except NumbersFileError as error:
        return Grade(student, "unreadable", str(error), blank)
    marked = dict(bad)
    extra = []
    for key, record, row in zip(keys, records, rows, strict=True):
        mistake, reason = row.mistake, row.explanation
        if not row.matches and _too_few_decimals(record, row.computed, course.decimals):
            mistake = "rounding"
            reason = (
                f"too few decimals: right to the {record.decimals} written, the sheet asks for "
                f"{course.decimals}"
            )
        mark = Mark(
            part="",
            quantity=record.expression,
            verdict="right" if row.matches else "wrong",
            correct=row.computed,
            written=record.text,
            mistake=mistake,
            reason=reason,
        )
        if key in question_of:
            marked[key] = mark
        else:
            extra.append(mark)
    marks = tuple(
        dataclasses.replace(marked[key], part=part, quantity=q, correct=empty.correct)
        if key in marked
        else empty
        for (key, (part, q)), empty in zip(question_of.items(), blank, strict=True)
    )
    grade = Grade(student, GRADED, "; ".join(problems), marks, tuple(extra))
    copied = _copied(grade, records, others, course.tolerance)
    return Grade(student, "other student's file", copied, blank) if copied else grade


def _too_few_decimals(record: Published, correct: float, decimals: int) -> bool:
    """Written with fewer decimals than asked, and right to those."""
    return (
        record.exponent == 0
        and record.decimals < decimals
        and abs(record.value - correct) <= 0.5 * record.tolerance * (1 + 1e-9)
    )


def _key(expression: Any, diagnosis: Diagnosis) -> str:
    form = diagnosis.canonical(expression)
    return form.expression.text if form is not None else expression.text


def _blank_marks(course: Course, names: Mapping[str, Any]) -> tuple[Mark, ...]:
    return tuple(Mark(p, q, "missing", parse(q).evaluate(names)) for p, q in course.asked)


def _copied(
    grade: Grade,
    records: list[Published],
    others: Mapping[str, Mapping[str, Any]],
    tolerance: float,
) -> str | None:
    """Whose numbers a file holds when they fit another student's network (at least 80% of them,
    and more than twice as many as fit the student's own), or None."""
    own = grade.count("right") + sum(m.verdict == "right" for m in grade.extra)
    if len(records) < 3 or own > 0.5 * len(records):
        return None
    for other, names in others.items():
        if other == grade.student.id:
            continue
        fits = 0
        for record in records:
            with contextlib.suppress(ExpressionError):
                fits += abs(parse(record.expression).evaluate(names) - record.value) <= tolerance
        if fits >= 0.8 * len(records) and fits > 2 * own:
            return (
                f"{fits} of its {len(records)} numbers are those of {other}'s network, not graded"
            )
    return None


def unmatched(folder: Path, students: tuple[Student, ...]) -> list[str]:
    """The files of a submissions folder that are no student's ``<id>.csv``."""
    expected = {f"{student.id}.csv" for student in students}
    return sorted(p.name for p in folder.iterdir() if p.name not in expected)
