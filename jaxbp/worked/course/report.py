"""A graded class on paper: the gradebook (CSV, one row a student) and each student's feedback
(Markdown, every number with its mark, the slip and the reason)."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

from jaxbp.worked.course.sheet import PARTS, written
from jaxbp.worked.shown import markdown_text, printable, spreadsheet_text

if TYPE_CHECKING:
    from jaxbp.worked.course.grade import Grade
    from jaxbp.worked.course.sheet import Course

COLUMNS = ("student", "name", "status", "right", "wrong", "missing", *PARTS, "score", "problem")


def gradebook(grades: list[Grade]) -> str:
    """The gradebook as CSV, one row a student (columns :data:`COLUMNS`; scores from 0 to 1)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for grade in grades:
        parts = [grade.score(part) for part in PARTS]
        writer.writerow(
            [
                spreadsheet_text(grade.student.id),
                spreadsheet_text(grade.student.name),
                grade.status,
                grade.count("right"),
                grade.count("wrong"),
                grade.count("missing"),
                *("" if share is None else f"{share:.3f}" for share in parts),
                f"{grade.score() or 0.0:.3f}",
                spreadsheet_text(grade.problem),
            ]
        )
    return out.getvalue()


def feedback(course: Course, grade: Grade) -> str:
    """One student's feedback in Markdown: the marks by part, then every number with its reason."""
    decimals = course.decimals
    lines = [
        f"# {_cell(course.title)}: feedback for {_cell(grade.student.label)}",
        "",
        f"Status: **{grade.status}**"
        + (f" ({_cell(grade.problem)})" if grade.problem else "")
        + ".",
        "",
        f"{grade.count('right')} right, {grade.count('wrong')} wrong, {grade.count('missing')} "
        f"missing of {len(grade.marks)}; score {grade.score() or 0.0:.3f}.",
        "",
        "| part | right | of |",
        "| --- | --- | --- |",
    ]
    lines += [
        f"| {part} | {grade.count('right', part)} | {sum(m.part == part for m in grade.marks)} |"
        for part in PARTS
        if any(m.part == part for m in grade.marks)
    ]
    lines += [
        "",
        "| quantity | yours | correct | | slip | reason |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for mark in (*grade.marks, *grade.extra):
        verdict = {"right": "✓", "wrong": "✗", "missing": "missing"}[mark.verdict]
        lines.append(
            f"| `{mark.quantity}` | {_cell(mark.written) or '—'} | {written(mark.correct, decimals)} | "
            f"{verdict} | {mark.mistake} | {_cell(mark.reason)} |"
        )
    if grade.extra:
        lines += ["", "Rows for numbers the sheet does not ask are graded too, and not scored."]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """A student's text (a value as written, a reason quoting it) in a Markdown table cell: shown,
    never read as HTML or a terminal's escape sequence."""
    return markdown_text(printable(text)).replace("|", "\\|").replace("\n", " ")
