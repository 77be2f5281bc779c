"""``jaxbp exercise``: a worksheet, a blank CSV and an answer key for every student of a class.

jaxbp exercise --network base.json --students roster.csv --out sheets/
jaxbp exercise --network base.json --students roster.csv --out sheets/ --decimals 3 --seed 2025

Each student gets a variant of the base network (weights and inputs drawn from the course seed and
their id, none of its quantities degenerate): ``sheets/students/<id>/`` holds what to hand out
(worksheet.md, worksheet.tex, worksheet.html with the answers covered, blank.csv);
``sheets/teacher/`` the networks and answer keys; ``sheets/course.json`` the manifest that
``jaxbp grade`` reads. The same roster and seed give the same files, byte for byte.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jaxbp.cli import signals as _signals
from jaxbp.cli.errors import UsageError
from jaxbp.worked import network_file
from jaxbp.worked.course import files, sheet, variant, worksheet
from jaxbp.worked.course.roster import Student, read_roster
from jaxbp.worked.render.html import page
from jaxbp.worked.trace import explain


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "exercise",
        help="a worked-step worksheet for every student of a class",
        description=(
            "Draw a variant of a network for every student of a roster and write each one's "
            "worksheet (Markdown, LaTeX, HTML with the answers covered), blank CSV and answer key."
        ),
    )
    parser.add_argument("--network", metavar="FILE.json", required=True, help="the base network")
    parser.add_argument(
        "--students", metavar="ROSTER.csv", required=True, help="the class: columns id,name"
    )
    parser.add_argument("--out", metavar="FOLDER", required=True, help="where the sheets go")
    parser.add_argument("--seed", type=int, default=0, help="the course seed (default 0)")
    parser.add_argument(
        "--decimals", type=int, default=4, help="decimals of every answer, 1 to 8 (default 4)"
    )
    parser.add_argument(
        "--parts",
        default=",".join(sheet.PARTS),
        help=f"the parts asked, comma-separated (default {','.join(sheet.PARTS)})",
    )
    parser.add_argument(
        "--allow-dead-relu",
        action="store_true",
        help="keep variants where a ReLU unit is off for every example",
    )
    parser.add_argument("--force", action="store_true", help="replace the files of earlier sheets")
    parser.set_defaults(run=run)


def _parts(text: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    wrong = [p for p in parts if p not in sheet.PARTS]
    if wrong or not parts:
        raise UsageError(
            f"--parts {text!r}: expected some of {', '.join(sheet.PARTS)}, comma-separated."
        )
    return tuple(p for p in sheet.PARTS if p in parts)


def run(args: argparse.Namespace) -> int:
    """Write every student's sheets; 0 when written, 2 on bad input (nothing written then) or a
    write that fails, 130/143 on a signal while writing (the files made before either are
    removed)."""
    if not 1 <= args.decimals <= 8:
        raise UsageError(f"--decimals must be between 1 and 8, got {args.decimals}.")
    parts = _parts(args.parts)
    out = Path(args.out)
    try:
        base = network_file.read(args.network)
        net = network_file.parse(base, where=args.network)
        students = read_roster(args.students)
        files.check_folder(out, "--out", create=True)
        questions = sheet.asked(net.spec, net.x.shape[0], net.frozen, parts)
        contents: dict[Path, str] = {}
        for student in students:
            contents |= _student_files(out, base, net, student, args, questions)
    except (network_file.NetworkFileError, files.CourseError) as error:
        raise UsageError(str(error)) from None
    title = net.name
    course = sheet.Course(title, args.seed, args.decimals, parts, students, questions)
    contents[out / sheet.MANIFEST] = sheet.manifest(course)  # last: grade reads it
    stopper: _signals.Stopper = getattr(args, "stopper", None) or _signals.Stopper("jaxbp exercise")  # fmt: skip
    try:
        files.plan(out, contents, args.force, "--out")
        with stopper.deferring("the sheets may be a half set: rerun with --force"):
            whole = files.write_all(contents, lambda: stopper.requested)  # else: removed
    except files.CourseError as error:
        raise UsageError(str(error)) from None
    if not whole:
        print(f"jaxbp exercise: stopped by {stopper.name}; the files this run made were removed", file=sys.stderr)  # fmt: skip
        return stopper.exit_code
    print(
        f"jaxbp exercise: wrote {out} for {len(students)} students, {len(questions)} numbers "
        f"each: hand out {out / 'students'}/<id>/, keep {out / 'teacher'}/ (networks and "
        "answer keys).",
        file=sys.stderr,
    )
    return 0


def _student_files(
    out: Path,
    base: dict,
    net: network_file.NetworkFile,
    student: Student,
    args: argparse.Namespace,
    questions: tuple[tuple[str, str], ...],
) -> dict[Path, str]:
    drawn = variant.draw_network(
        base, net.spec, student.id, args.seed, questions, args.decimals, args.allow_dead_relu
    )
    drawn["name"] = f"{net.name}: {student.label}"
    mine = network_file.parse(drawn, where=f"the network of {student.id}")
    trace = explain(
        mine.spec, mine.loss, mine.params, mine.x, mine.y, mine.learning_rate,
        units=mine.units, frozen=mine.frozen,
    )  # fmt: skip
    names = trace.names()
    folder, teacher = out / "students" / student.id, out / "teacher"
    return {
        folder / "worksheet.md": worksheet.markdown(drawn, student, questions, args.decimals),
        folder / "worksheet.tex": worksheet.latex(drawn, student, questions, args.decimals),
        folder / "worksheet.html": worksheet.covered(page(trace, drawn["name"], digits=6)),
        folder / "blank.csv": sheet.blank(questions, student),
        teacher / f"{student.id}.network.json": variant.network_json(drawn),
        teacher / f"{student.id}.answers.csv": sheet.answer_key(names, questions, args.decimals),
    }
