"""``jaxbp grade``: every student's numbers graded against their own network, in one command.

jaxbp grade sheets/ submissions/ --out gradebook.csv
jaxbp grade sheets/ submissions/ --out gradebook.csv --feedback feedback/ --force

``sheets/`` is the folder ``jaxbp exercise`` wrote; ``submissions/<id>.csv`` each student's filled
CSV. Writes the gradebook (one row a student: status, numbers right, wrong and missing, the score
of each part and in all) and one Markdown feedback file per student with the reason for every
number. Exit 0 when every student has every number right, 1 when not, 2 on a usage error (then
nothing is written). A bad submission is graded as such, with its status, never an error.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from jaxbp.cli import signals as _signals
from jaxbp.cli.errors import UsageError
from jaxbp.worked import network_file
from jaxbp.worked.course import files
from jaxbp.worked.course.grade import GRADED, Grade, grade_submission, unmatched
from jaxbp.worked.course.report import feedback, gradebook
from jaxbp.worked.course.sheet import MANIFEST, Course, read_manifest
from jaxbp.worked.grading.expression import parse
from jaxbp.worked.shown import printable
from jaxbp.worked.trace import Trace, explain


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "grade",
        help="grade a class's worksheets into a gradebook",
        description=(
            "Grade every student's CSV against their own network (the sheets jaxbp exercise "
            "wrote): a gradebook and one feedback file per student."
        ),
    )
    parser.add_argument("sheets", metavar="SHEETS", help="the folder jaxbp exercise --out wrote")
    parser.add_argument("submissions", metavar="SUBMISSIONS", help="a folder of <id>.csv files")
    parser.add_argument("--out", metavar="GRADEBOOK.csv", required=True, help="the gradebook")
    parser.add_argument(
        "--feedback",
        metavar="FOLDER",
        help="where the feedback files go (default: feedback/ beside the gradebook)",
    )
    parser.add_argument("--force", action="store_true", help="replace an earlier gradebook")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Grade the class; 0 when every number is right, 1 when not, 2 on bad input, 130/143 on a
    signal while writing (the files made before it are removed)."""
    stopper: _signals.Stopper = getattr(args, "stopper", None) or _signals.Stopper("jaxbp grade")  # fmt: skip
    sheets, submissions, out = Path(args.sheets), Path(args.submissions), Path(args.out)
    folder = Path(args.feedback) if args.feedback else out.parent / "feedback"
    try:
        course = read_manifest(sheets)
        files.check_folder(submissions, "SUBMISSIONS")
        if out.suffix.lower() != ".csv":
            raise files.CourseError(f"--out {out}: a gradebook is a .csv file.")
        files.check_folder(out.parent, "--out's folder")
        _check_not_an_input(out, sheets, submissions, course)
        files.check_folder(folder, "--feedback", create=True)
        targets = [folder / f"{student.id}.md" for student in course.students]
        files.plan(out.parent, [out], args.force, "--out")
        files.plan(folder, targets, args.force, "--feedback")
        traces = {student.id: _trace(sheets, student.id) for student in course.students}
        _check_asked(sheets, course, traces)
    except (files.CourseError, network_file.NetworkFileError) as error:
        raise UsageError(str(error)) from None
    names = {sid: trace.names() for sid, trace in traces.items()}
    grades = [
        grade_submission(course, s, submissions / f"{s.id}.csv", traces[s.id], names)
        for s in course.students
    ]
    try:
        written = {out: gradebook(grades)}
        for grade, target in zip(grades, targets, strict=True):
            written[target] = feedback(course, grade)
        with stopper.deferring("the feedback may be a half set: rerun with --force"):
            whole = files.write_all(written, lambda: stopper.requested)  # else: removed
    except files.CourseError as error:
        raise UsageError(str(error)) from None
    if not whole:
        print(f"jaxbp grade: stopped by {stopper.name}; the files this run made were removed", file=sys.stderr)  # fmt: skip
        return stopper.exit_code
    _summary(course, grades, out, folder, unmatched(submissions, course.students))
    perfect = all(g.status == GRADED and g.count("right") == len(g.marks) for g in grades)
    return 0 if perfect else 1


def _check_not_an_input(out: Path, sheets: Path, submissions: Path, course: Course) -> None:
    """Refuse a gradebook path that is a file grade reads: a student's submission, or a file
    of the sheets' ``teacher`` or ``students`` folders (even with ``--force``)."""
    place = Path(os.path.realpath(out.parent)) / out.name
    ids = {f"{student.id.lower()}.csv" for student in course.students}
    if place.parent == Path(os.path.realpath(submissions)) and out.name.lower() in ids:
        raise files.CourseError(
            f"--out {out} is a student's submission in {submissions}, which grade reads; "
            "pass another --out."
        )
    for part in ("teacher", "students"):
        if Path(os.path.realpath(sheets / part)) in (place.parent, *place.parent.parents):
            raise files.CourseError(
                f"--out {out} is inside {sheets / part}, the sheets jaxbp exercise wrote; "
                "pass another --out."
            )


def _check_asked(sheets: Path, course: Course, traces: dict[str, Trace]) -> None:
    """Every number the manifest asks is one of every student's network (an edited manifest
    may ask ``W1[9,9]`` of a 2-by-2 ``W1``)."""
    for student_id, trace in traces.items():
        names = trace.names()
        for _, quantity in course.asked:
            try:
                parse(quantity).evaluate(names)
            except ValueError as error:
                raise files.CourseError(
                    f"{sheets / MANIFEST}: for student {student_id}, the number asked {error}"
                ) from None


def _trace(sheets: Path, student_id: str) -> Trace:
    path = sheets / "teacher" / f"{student_id}.network.json"
    if not path.is_file():
        raise files.CourseError(
            f"{path}: missing; the sheets folder is not whole (run jaxbp exercise again)."
        )
    net = network_file.load(path)
    return explain(
        net.spec, net.loss, net.params, net.x, net.y, net.learning_rate,
        units=net.units, frozen=net.frozen,
    )  # fmt: skip


def _summary(
    course: Course, grades: list[Grade], out: Path, folder: Path, strays: list[str]
) -> None:
    statuses: dict[str, int] = {}
    for grade in grades:
        statuses[grade.status] = statuses.get(grade.status, 0) + 1
    perfect = sum(g.status == GRADED and g.count("right") == len(g.marks) for g in grades)
    counts = ", ".join(f"{count} {status}" for status, count in statuses.items())
    print(
        f"jaxbp grade: {len(grades)} students ({counts}); {perfect} with every number right. "
        f"Wrote {out} and {len(grades)} feedback files in {folder}.",
        file=sys.stderr,
    )
    if strays:
        shown = ", ".join(map(printable, strays[:5]))
        shown += f" and {len(strays) - 5} more" if len(strays) > 5 else ""
        print(
            f"jaxbp grade: warning: not graded, no student of {course.title!r} has the id of "
            f"{shown} (a submission is <id>.csv).",
            file=sys.stderr,
        )
