"""``jaxbp exercise`` and ``jaxbp grade``: a class of 30 students, sheets to gradebook.

Oracle: each student's numbers are computed here, by the chain rule of a 2-3-2 sigmoid / linear
network written out in NumPy (``_world``), from the network ``jaxbp exercise`` drew for them; a
slip is an edit of one quantity in that computation, and everything after it is computed from
the edited value, as a student carries a mistake on. The expected mark of every number follows
from the numbers (right within one unit of the 4th decimal) and its reason from the edit: the
edited quantity is named by its slip, the ones computed from it are ``carried forward``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from jaxbp import cli

BASE = {
    "name": "2-3-2 course",
    "sizes": [2, 3, 2],
    "activations": ["sigmoid", "linear"],
    "params": [
        {"w": [[0.1, -0.4, 0.3], [0.5, 0.2, -0.6]], "b": [0.1, -0.2, 0.05]},
        {"w": [[0.7, -0.3], [0.2, 0.4], [-0.5, 0.6]], "b": [0.3, -0.1]},
    ],
    "x": [[1.5, -2.0]],
    "y": [[1.0, 0.0]],
    "loss": "half_se",
    "lr": 0.1,
}
TOL = 1e-4  # 4 decimals asked
PARTS = ("forward", "loss", "backward", "update")
Edit = Callable[[str, np.ndarray, dict], np.ndarray]


def _world(net: dict, edit: Edit | None = None) -> dict[str, np.ndarray]:
    """Every quantity of the step, in order; ``edit(name, value, so_far)`` may change each one."""
    w1, b1 = np.array(net["params"][0]["w"]), np.array(net["params"][0]["b"])
    w2, b2 = np.array(net["params"][1]["w"]), np.array(net["params"][1]["b"])
    x, y, lr = np.array(net["x"]), np.array(net["y"]), net["lr"]
    q: dict[str, np.ndarray] = {}

    def put(name: str, value) -> np.ndarray:
        value = np.array(value, np.float64)
        q[name] = edit(name, value, q) if edit else value
        return q[name]

    z1 = put("z1", x @ w1 + b1)
    a1 = put("a1", 1 / (1 + np.exp(-z1)))
    a2 = put("a2", put("z2", a1 @ w2 + b2))  # linear output
    put("loss", 0.5 * np.sum((a2 - y) ** 2))
    delta2 = put("delta2", put("dL_da2", a2 - y) * 1.0)
    dw2, db2 = put("dW2", a1.T @ delta2), put("db2", delta2.sum(axis=0))
    dl_da1 = put("dL_da1", delta2 @ w2.T)
    delta1 = put("delta1", dl_da1 * (1 / (1 + np.exp(-z1))) * (1 - 1 / (1 + np.exp(-z1))))
    dw1, db1 = put("dW1", x.T @ delta1), put("db1", delta1.sum(axis=0))
    put("W1_new", w1 - lr * dw1)
    put("b1_new", b1 - lr * db1)
    put("W2_new", w2 - lr * dw2)
    put("b2_new", b2 - lr * db2)
    q |= {"W1": w1, "W2": w2, "b1": b1, "b2": b2}
    return q


def _asked() -> list[tuple[str, str, tuple[int, ...]]]:
    """(part, name, index) of every number the sheet asks, in its order."""
    out = [("forward", n, (0, j)) for n in ("z1", "a1") for j in range(3)]
    out += [("forward", n, (0, j)) for n in ("z2", "a2") for j in range(2)]
    out += [("loss", "loss", ())]
    out += [("backward", n, (0, j)) for n in ("dL_da2", "delta2") for j in range(2)]
    out += [("backward", "dW2", (i, j)) for i in range(3) for j in range(2)]
    out += [("backward", "db2", (j,)) for j in range(2)]
    out += [("backward", n, (0, j)) for n in ("dL_da1", "delta1") for j in range(3)]
    out += [("backward", "dW1", (i, j)) for i in range(2) for j in range(3)]
    out += [("backward", "db1", (j,)) for j in range(3)]
    out += [("update", "W1_new", (i, j)) for i in range(2) for j in range(3)]
    out += [("update", "b1_new", (j,)) for j in range(3)]
    out += [("update", "W2_new", (i, j)) for i in range(3) for j in range(2)]
    out += [("update", "b2_new", (j,)) for j in range(2)]
    return out


ASKED = _asked()


def _text(name: str, index: tuple[int, ...]) -> str:
    return f"{name}[{','.join(map(str, index))}]" if index else name


def _entry(world: dict, name: str, index: tuple[int, ...]) -> float:
    return float(np.asarray(world[name])[index])


# --- the slips: an edit, the entries it touches, and their reason ------------------------------
def _set(name: str, index, value: Callable[[dict], float]) -> Edit:
    def edit(at: str, array: np.ndarray, q: dict) -> np.ndarray:
        if at == name:
            array = array.copy()
            array[index] = value(q | {name: array})
        return array

    return edit


def _whole(name: str, value: Callable[[dict, np.ndarray], np.ndarray]) -> Edit:
    def edit(at: str, array: np.ndarray, q: dict) -> np.ndarray:
        return value(q, array) if at == name else array

    return edit


def _slips(net: dict) -> dict[str, tuple[Edit, str]]:
    """Slip name -> (the edit, the reason of the quantities it edits)."""
    lr, w1, w2 = net["lr"], np.array(net["params"][0]["w"]), np.array(net["params"][1]["w"])
    b1, b2 = np.array(net["params"][0]["b"]), np.array(net["params"][1]["b"])
    right = _world(net)
    return {
        "sign dW2": (_set("dW2", (1, 0), lambda q: -q["dW2"][1, 0]), "sign"),
        "transposed W1_new": (
            _set("W1_new", (0, 1), lambda q: right["W1_new"][1, 0]),
            "transposed index",
        ),
        "lr twice W2": (_whole("W2_new", lambda q, a: w2 - lr * lr * q["dW2"]), "learning rate"),
        "lr left out b2": (_whole("b2_new", lambda q, a: b2 - q["db2"]), "learning rate"),
        "direction W1": (_whole("W1_new", lambda q, a: w1 + lr * q["dW1"]), "direction"),
        "no step W2": (_whole("W2_new", lambda q, a: w2.copy()), "no step"),
        "no derivative": (
            _whole("delta1", lambda q, a: q["dL_da1"].copy()),
            "activation derivative",
        ),
        "arithmetic z1": (_set("z1", (0, 1), lambda q: q["z1"][0, 1] + 0.2), "arithmetic"),
        "transposed dW1": (_set("dW1", (1, 0), lambda q: q["dW1"][0, 1]), "transposed index"),
        "lr twice b1": (_whole("b1_new", lambda q, a: b1 - lr * lr * q["db1"]), "learning rate"),
        "sign delta2": (_set("delta2", (0, 1), lambda q: -q["delta2"][0, 1]), "sign"),
    }


def _expected(net: dict, slip: str | None) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """The student's written numbers (4 decimals) and each one's (verdict, reason)."""
    right = _world(net)
    edit, kind = _slips(net)[slip] if slip else (None, "")
    touched: set[tuple[str, tuple]] = set()

    def recording(name: str, value: np.ndarray, q: dict) -> np.ndarray:
        changed = edit(name, value, q) if edit else value
        for index in np.ndindex(np.shape(value)):
            if changed[index] != value[index]:
                touched.add((name, index))
        return changed

    mine = _world(net, recording)
    written, marks = {}, {}
    for _, name, index in ASKED:
        text = f"{_entry(mine, name, index):.4f}"
        written[_text(name, index)] = text
        if abs(float(text) - _entry(right, name, index)) <= TOL:
            marks[_text(name, index)] = ("✓", "")
            continue
        reason = kind if (name, index) in touched else "carried forward"
        if kind == "learning rate" and abs(float(text) - _entry(right, name[:2], index)) <= TOL:
            reason = "no step"  # W - lr*lr*dW within a unit of W: a copy of W explains it first
        marks[_text(name, index)] = ("✗", reason)
    return written, marks


def _csv(rows: list[tuple[str, str]], delimiter: str = ",", quote: bool = True) -> str:
    if not quote:
        return "".join(f"{q}{delimiter}{v}\n" for q, v in [("quantity", "value"), *rows])
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerows([("quantity", "value"), *rows])
    return out.getvalue()


CLASS = [f"s{n:02d}" for n in range(30)]
SLIP_OF = {
    "s10": "sign dW2",
    "s11": "transposed W1_new",
    "s12": "lr twice W2",
    "s13": "lr left out b2",
    "s14": "direction W1",
    "s15": "no step W2",
    "s16": "no derivative",
    "s17": "arithmetic z1",
    "s26": "transposed dW1",
    "s28": "lr twice b1",
    "s29": "sign delta2",
}


def _submissions(sheets: Path, folder: Path) -> dict[str, dict]:
    """Write every student's file; return what each should get: status, marks."""
    folder.mkdir()
    nets = {s: json.loads((sheets / "teacher" / f"{s}.network.json").read_text()) for s in CLASS}
    expect: dict[str, dict] = {}
    for student in CLASS:
        written, marks = _expected(nets[student], SLIP_OF.get(student))
        rows = list(written.items())
        path = folder / f"{student}.csv"
        status = "graded"
        if student == "s00":  # the blank CSV filled in
            blank = list(csv.reader(io.StringIO((sheets / "students/s00/blank.csv").read_text())))
            filled = [blank[0]] + [[q, written[q], p, sid] for q, _, p, sid in blank[1:]]
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerows(filled)
            path.write_text(out.getvalue())
        elif student == "s01":  # brackets unquoted
            path.write_text(_csv(rows, quote=False))
        elif student == "s02":  # a spreadsheet in a decimal-comma locale
            path.write_text(_csv([(q, v.replace(".", ",")) for q, v in rows], ";", quote=False))
        elif student == "s03":  # "Unicode text": UTF-16, tabs
            path.write_bytes(_csv(rows, "\t", quote=False).replace("\n", "\r\n").encode("utf-16"))
        elif student == "s04":  # an export with a byte-order mark, CRLF and empty columns
            text = _csv([(q, v, "", "") for q, v in rows]).replace(
                "quantity,value", "quantity,value,,"
            )
            path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
        elif student == "s05":  # spaces in the indices, rows in another order
            path.write_text(_csv([(q.replace(",", ", "), v) for q, v in reversed(rows)]))
        elif student == "s06":  # quantities written as formulas, 6 decimals
            world = _world(nets[student])
            formulas = {
                "a1[0,0]": "sigmoid(z1[0,0])",
                "loss": "0.5*(y[0,0]-a2[0,0])**2+0.5*(y[0,1]-a2[0,1])**2",
            }
            six = [(formulas.get(q, q), f"{_entry(world, *_split(q)):.6f}") for q, _ in rows]
            path.write_text(_csv(six))
            marks = {q: ("✓", "") for q in marks}
        elif student == "s07":  # a row the sheet does not ask, and a blank one
            path.write_text(_csv([*rows, ("da_dz1[0,0]", "0.5"), ("z1[0,0]", "")]))
        elif student == "s18":  # every number to 2 decimals only
            world = _world(nets[student])
            two = [(q, f"{_entry(world, *_split(q)):.2f}") for q, _ in rows]
            path.write_text(_csv(two))
            marks = {
                q: ("✓", "")
                if abs(float(v) - _entry(world, *_split(q))) <= TOL
                else ("✗", "rounding")
                for q, v in two
            }
        elif student == "s19":
            path.write_text(_csv(rows).replace("quantity,value", "q,v", 1))
            status = "wrong columns"
        elif student == "s20":  # s00's filled sheet, its student column too
            path.write_text((folder / "s00.csv").read_text())
            status = "other student's file"
        elif student == "s21":  # s01's numbers, under s21's name
            path.write_text((folder / "s01.csv").read_text())
            status = "other student's file"
        elif student == "s22":
            path.write_text("")
            status = "empty"
        elif student == "s23":
            path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
            status = "not a CSV file"
        elif student == "s24":
            path.unlink(missing_ok=True)
            status = "missing"
        elif student == "s25":  # the update part left blank
            path.write_text(
                _csv([(q, "" if q.split("[")[0].endswith("_new") else v) for q, v in rows])
            )
            marks |= {q: ("missing", "") for q in marks if q.split("[")[0].endswith("_new")}
        elif student == "s27":  # a value that is no number, and a quantity this network lacks
            path.write_text(_csv([("z1[0,0]", "abc"), *rows[1:], ("b9[0]", "1")]))
            marks["z1[0,0]"] = ("✗", "")
        else:
            path.write_text(_csv(rows))
        if status != "graded":
            marks = {q: ("missing", "") for q in marks}
        expect[student] = {"status": status, "marks": marks}
    return expect


def _split(quantity: str) -> tuple[str, tuple[int, ...]]:
    name, _, index = quantity.partition("[")
    return name, tuple(int(i) for i in index.rstrip("]").split(",")) if index else ()


def _feedback_marks(text: str) -> dict[str, tuple[str, str]]:
    marks = {}
    for line in text.splitlines():
        match = re.match(r"^\| `([^`]+)` \| [^|]* \| [^|]* \| ([^|]*) \| ([^|]*) \|", line)
        if match:
            marks[match[1]] = (match[2].strip(), match[3].strip())
    return marks


def _run(*argv: str) -> int:
    return cli.main(list(argv))


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("course")
    (root / "base.json").write_text(json.dumps(BASE))
    (root / "roster.csv").write_text("id,name\n" + "".join(f"{s},Student {s}\n" for s in CLASS))
    start = time.perf_counter()
    assert _run("exercise", "--network", str(root / "base.json"), "--students",
                str(root / "roster.csv"), "--out", str(root / "sheets")) == 0  # fmt: skip
    made = time.perf_counter() - start
    expect = _submissions(root / "sheets", root / "subs")
    start = time.perf_counter()
    code = _run("grade", str(root / "sheets"), str(root / "subs"), "--out", str(root / "book.csv"))
    took = time.perf_counter() - start
    book = {
        row["student"]: row for row in csv.DictReader(io.StringIO((root / "book.csv").read_text()))
    }
    return {"root": root, "expect": expect, "book": book, "code": code, "times": (made, took)}


def test_a_class_of_30_is_graded_in_one_command_in_seconds(graded) -> None:
    made, took = graded["times"]
    assert graded["code"] == 1  # some numbers are wrong
    assert set(graded["book"]) == set(CLASS)
    assert made < 60 and took < 30, (made, took)


@pytest.mark.parametrize("student", CLASS)
def test_every_mark_and_reason_of_the_gradebook_and_the_feedback(graded, student) -> None:
    expect, row = graded["expect"][student], graded["book"][student]
    marks = expect["marks"]
    assert row["status"] == expect["status"], row["problem"]
    counts = {v: sum(m[0] == v for m in marks.values()) for v in ("✓", "✗", "missing")}
    assert (int(row["right"]), int(row["wrong"]), int(row["missing"])) == (
        counts["✓"], counts["✗"], counts["missing"],
    )  # fmt: skip
    for part in PARTS:
        asked = [_text(n, i) for p, n, i in ASKED if p == part]
        share = sum(marks[q][0] == "✓" for q in asked) / len(asked)
        assert float(row[part]) == pytest.approx(share, abs=5e-4), part
    feedback = (graded["root"] / "feedback" / f"{student}.md").read_text()
    found = _feedback_marks(feedback)
    for _, name, index in ASKED:
        quantity = _text(name, index)
        mark, slip = found[quantity]
        assert mark == marks[quantity][0], (quantity, found[quantity])
        if marks[quantity][1]:
            assert slip == marks[quantity][1], (quantity, feedback)


def test_the_slips_and_their_consequences_are_all_there(graded) -> None:
    reasons = {
        reason
        for student in SLIP_OF
        for _, reason in graded["expect"][student]["marks"].values()
        if reason
    }
    assert reasons >= {
        "sign", "transposed index", "learning rate", "direction", "no step",
        "activation derivative", "arithmetic", "carried forward",
    }  # fmt: skip


def test_bad_rows_and_extra_rows_are_reported_not_fatal(graded) -> None:
    root, book = graded["root"], graded["book"]
    assert "b9" in book["s27"]["problem"]
    assert "value 'abc' is not a number" in (root / "feedback/s27.md").read_text()
    s07 = (root / "feedback/s07.md").read_text()
    assert "`da_dz1[0,0]`" in s07 and "not scored" in s07
    assert "s00" in book["s20"]["problem"] and "s01" in book["s21"]["problem"]


def test_the_same_roster_gives_the_same_sheets_whatever_the_order(graded, tmp_path) -> None:
    root = graded["root"]
    (tmp_path / "roster.csv").write_text("id,name\ns12,Student s12\ns03,Student s03\n")
    assert _run("exercise", "--network", str(root / "base.json"), "--students",
                str(tmp_path / "roster.csv"), "--out", str(tmp_path / "again")) == 0  # fmt: skip
    for student in ("s03", "s12"):
        for name in ("worksheet.md", "worksheet.tex", "worksheet.html", "blank.csv"):
            again = (tmp_path / "again/students" / student / name).read_bytes()
            assert again == (root / "sheets/students" / student / name).read_bytes(), name
        for name in (f"{student}.network.json", f"{student}.answers.csv"):
            assert (tmp_path / "again/teacher" / name).read_bytes() == (
                root / "sheets/teacher" / name
            ).read_bytes()


def test_the_answer_key_is_the_chain_rule(graded) -> None:
    root = graded["root"]
    for student in ("s00", "s17"):
        net = json.loads((root / "sheets/teacher" / f"{student}.network.json").read_text())
        right = _world(net)
        key = list(
            csv.DictReader(
                io.StringIO((root / "sheets/teacher" / f"{student}.answers.csv").read_text())
            )
        )
        assert [row["quantity"] for row in key] == [_text(n, i) for _, n, i in ASKED]
        for row, (part, name, index) in zip(key, ASKED, strict=True):
            assert row["part"] == part
            assert float(row["exact"]) == pytest.approx(_entry(right, name, index), abs=1e-12)


def test_each_variant_is_on_the_grids_and_not_degenerate(graded) -> None:
    root = graded["root"]
    for student in CLASS:
        net = json.loads((root / "sheets/teacher" / f"{student}.network.json").read_text())
        w = np.concatenate([np.ravel(layer["w"]) for layer in net["params"]])
        b = np.concatenate([np.ravel(layer["b"]) for layer in net["params"]])
        x = np.ravel(net["x"])
        assert np.allclose(w * 20, np.round(w * 20)) and np.all(
            (np.abs(w) >= 0.1) & (np.abs(w) <= 1)
        )
        assert np.allclose(b * 10, np.round(b * 10)) and np.all(np.abs(b) <= 0.5)
        assert np.allclose(x * 2, np.round(x * 2)) and np.all((np.abs(x) >= 0.5) & (np.abs(x) <= 2))
        right = _world(net)
        assert np.all(np.abs(right["z1"]) <= 4)  # no saturated sigmoid
        for name in ("W1", "W2", "b1", "b2"):  # every step visible at 4 decimals
            assert np.all(np.abs(right[f"{name}_new"] - right[name]) >= 3 * TOL)
        assert net["y"] == BASE["y"] and net["lr"] == BASE["lr"]


# --- refusals ----------------------------------------------------------------------------------
def test_existing_sheets_are_not_replaced_without_force(graded, tmp_path, capsys) -> None:
    root = graded["root"]
    (tmp_path / "roster.csv").write_text("id\ns01\n")
    args = ["exercise", "--network", str(root / "base.json"), "--students",
            str(tmp_path / "roster.csv"), "--out", str(tmp_path / "sheets")]  # fmt: skip
    assert _run(*args) == 0
    sheet = tmp_path / "sheets/students/s01/worksheet.md"
    sheet.write_text("my edits")
    capsys.readouterr()
    assert _run(*args) == 2
    assert "exists" in capsys.readouterr().err and sheet.read_text() == "my edits"
    assert _run(*args, "--force") == 0 and sheet.read_text() != "my edits"
    assert not [p for p in (tmp_path / "sheets").rglob(".*.tmp")]  # no temporary file left


def test_a_symbolic_link_is_never_written_through(graded, tmp_path, capsys) -> None:
    root = graded["root"]
    (tmp_path / "roster.csv").write_text("id\ns01\n")
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    out = tmp_path / "sheets"
    (out / "students/s01").mkdir(parents=True)
    os.symlink(precious, out / "students/s01/worksheet.md")
    args = ["exercise", "--network", str(root / "base.json"), "--students",
            str(tmp_path / "roster.csv"), "--out", str(out), "--force"]  # fmt: skip
    assert _run(*args) == 2
    assert "symbolic link" in capsys.readouterr().err and precious.read_text() == "keep me"
    (out / "students/s01/worksheet.md").unlink()
    os.rmdir(out / "students/s01")
    os.symlink(tmp_path, out / "students/s01")  # a folder on the way
    assert _run(*args) == 2 and "symbolic link" in capsys.readouterr().err
    assert not (tmp_path / "worksheet.md").exists()


def test_grade_refuses_bad_folders_and_an_existing_gradebook(graded, tmp_path, capsys) -> None:
    root = graded["root"]
    assert _run("grade", str(tmp_path), str(root / "subs"), "--out", str(tmp_path / "b.csv")) == 2
    assert "course.json" in capsys.readouterr().err
    assert (
        _run("grade", str(root / "sheets"), str(tmp_path / "no"), "--out", str(tmp_path / "b.csv"))
        == 2
    )
    assert "no such folder" in capsys.readouterr().err
    book = root / "book.csv"
    before = book.read_bytes()
    assert _run("grade", str(root / "sheets"), str(root / "subs"), "--out", str(book)) == 2
    assert "exists" in capsys.readouterr().err and book.read_bytes() == before


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_a_gradebook_or_sheet_that_is_a_named_pipe_is_never_replaced(graded, tmp_path, capsys) -> None:  # fmt: skip
    root = graded["root"]
    book = tmp_path / "book.csv"
    os.mkfifo(book)
    args = ["grade", str(root / "sheets"), str(root / "subs"), "--out", str(book), "--force"]
    assert _run(*args) == 2
    err = capsys.readouterr().err
    assert "is a named pipe" in err and err.count("\n") == 1 and book.is_fifo(), err
    assert not (tmp_path / "feedback").exists()
    (tmp_path / "roster.csv").write_text("id\ns01\n")
    (tmp_path / "sheets/students/s01").mkdir(parents=True)
    os.mkfifo(tmp_path / "sheets/students/s01/blank.csv")
    assert _run("exercise", "--network", str(root / "base.json"), "--students",
                str(tmp_path / "roster.csv"), "--out", str(tmp_path / "sheets"), "--force") == 2  # fmt: skip
    assert "is a named pipe" in capsys.readouterr().err
    assert (tmp_path / "sheets/students/s01/blank.csv").is_fifo()
    assert not (tmp_path / "sheets/teacher").exists()


def test_the_gradebook_never_replaces_a_submission_or_a_sheet(graded, capsys) -> None:
    root = graded["root"]
    subs, sheets = root / "subs", root / "sheets"
    submission = next(p for p in sorted(subs.glob("*.csv")))
    key = next(iter(sorted((sheets / "teacher").glob("*.answers.csv"))))
    before = {path: path.read_bytes() for path in (submission, key)}
    for out, match in (
        (submission, "is a student's submission"),
        (subs / submission.name.upper(), "is a student's submission"),
        (key, "is inside"),
    ):
        assert _run("grade", str(sheets), str(subs), "--out", str(out), "--force") == 2
        err = capsys.readouterr().err
        assert match in err and err.count("\n") == 1, err
    assert {path: path.read_bytes() for path in before} == before
    assert not (subs / "feedback").exists() and not (sheets / "teacher/feedback").exists()


def test_a_full_disk_while_writing_sheets_or_grades_leaves_no_half_set(graded, tmp_path, capsys, monkeypatch) -> None:  # fmt: skip
    import errno

    from jaxbp.worked.course import files as course_files

    root = graded["root"]
    (tmp_path / "roster.csv").write_text("id\ns01\ns02\n")
    out = tmp_path / "sheets"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    replace, calls = os.replace, []

    def full_disk(source, target):  # the fourth file finds the disk full
        calls.append(target)
        if len(calls) == 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        replace(source, target)

    monkeypatch.setattr(course_files.os, "replace", full_disk)
    args = ["exercise", "--network", str(root / "base.json"), "--students",
            str(tmp_path / "roster.csv"), "--out", str(out)]  # fmt: skip
    assert _run(*args) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and err.count("\n") == 1, err
    assert sorted(p.name for p in out.rglob("*")) == ["notes.txt"]  # only the user's file
    monkeypatch.setattr(course_files.os, "replace", replace)
    assert _run(*args) == 0  # once there is room, no --force is needed
    book, calls[:] = tmp_path / "book.csv", []  # grade: the gradebook, then the feedback
    monkeypatch.setattr(course_files.os, "replace", full_disk)
    graded_args = ["grade", str(root / "sheets"), str(root / "subs"), "--out", str(book)]
    assert _run(*graded_args) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["roster.csv", "sheets"]


def test_ctrl_c_while_writing_sheets_or_grades_leaves_no_half_set(graded, tmp_path, capsys, monkeypatch) -> None:  # fmt: skip
    import signal

    from jaxbp.worked.course import files as course_files

    root = graded["root"]
    (tmp_path / "roster.csv").write_text("id\ns01\ns02\n")
    out = tmp_path / "sheets"
    replace, calls = os.replace, []

    def interrupted(source, target):  # Ctrl-C arrives while the third file is written
        calls.append(target)
        replace(source, target)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(course_files.os, "replace", interrupted)
    args = ["exercise", "--network", str(root / "base.json"), "--students",
            str(tmp_path / "roster.csv"), "--out", str(out)]  # fmt: skip
    assert _run(*args) == 130
    assert "stopped by Ctrl-C; the files this run made were removed" in capsys.readouterr().err
    assert not out.exists() and len(calls) == 3
    book, calls[:] = tmp_path / "book.csv", []
    assert _run("grade", str(root / "sheets"), str(root / "subs"), "--out", str(book)) == 130
    assert "stopped by Ctrl-C" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["roster.csv"]


EDITED_MANIFESTS = [
    ("out-of-range", lambda m: m["asked"].append(["forward", "W1[99,99]"]), "for student s00, the number asked 'W1[99,99]': index [99, 99] is out of range"),
    ("not-an-expression", lambda m: m["asked"].append(["forward", "z1[0,0]+"]), "asked quantity 'z1[0,0]+' is not an expression"),
    ("unknown-part", lambda m: m["parts"].append("bogus"), "unknown part 'bogus'"),
    ("part-not-given", lambda m: m["asked"].append(["bogus", "z1[0,0]"]), "'z1[0,0]' is asked in part 'bogus', which is not one of its parts"),
    ("no-students", lambda m: m.update(students=[]), "no students"),
    ("nothing-asked", lambda m: m.update(asked=[]), "no numbers asked"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "edit", "message"), EDITED_MANIFESTS, ids=[c[0] for c in EDITED_MANIFESTS])  # fmt: skip
def test_an_edited_manifest_gets_one_line_not_a_traceback(graded, tmp_path, capsys, case, edit, message) -> None:  # fmt: skip
    import shutil

    root = graded["root"]
    sheets = tmp_path / "sheets"
    shutil.copytree(root / "sheets", sheets)
    manifest = json.loads((sheets / "course.json").read_text())
    edit(manifest)
    (sheets / "course.json").write_text(json.dumps(manifest))
    book = tmp_path / "book.csv"
    assert _run("grade", str(sheets), str(root / "subs"), "--out", str(book)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "course.json" in err, err
    assert not book.exists() and not (tmp_path / "feedback").exists()


def test_exit_0_when_every_number_is_right(graded, tmp_path) -> None:
    root = graded["root"]
    (tmp_path / "roster.csv").write_text("id\ns00\ns01\n")
    assert _run("exercise", "--network", str(root / "base.json"), "--students",
                str(tmp_path / "roster.csv"), "--out", str(tmp_path / "sheets")) == 0  # fmt: skip
    subs = tmp_path / "subs"
    subs.mkdir()
    for student in ("s00", "s01"):
        (subs / f"{student}.csv").write_bytes((root / "subs" / "s01.csv").read_bytes())
        net = json.loads((tmp_path / "sheets/teacher" / f"{student}.network.json").read_text())
        written, _ = _expected(net, None)
        (subs / f"{student}.csv").write_text(_csv(list(written.items())))
    code = _run("grade", str(tmp_path / "sheets"), str(subs), "--out", str(tmp_path / "b.csv"))
    assert code == 0


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_a_submission_that_is_not_a_file_is_unreadable_not_missing(graded, tmp_path) -> None:
    """A folder, a named pipe or a link where a student's CSV belongs is named for what it is
    (the student handed something in), never read or followed; only an absent file is missing."""
    root = graded["root"]
    (tmp_path / "roster.csv").write_text("id\ns00\ns01\ns02\ns03\n")
    assert _run("exercise", "--network", str(root / "base.json"), "--students",
                str(tmp_path / "roster.csv"), "--out", str(tmp_path / "sheets")) == 0  # fmt: skip
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "s00.csv").mkdir()
    os.mkfifo(subs / "s01.csv")  # reading it would block forever
    (subs / "s02.csv").symlink_to(root / "subs" / "s02.csv")
    code = _run("grade", str(tmp_path / "sheets"), str(subs), "--out", str(tmp_path / "b.csv"))
    assert code == 1
    book = {row["student"]: row for row in csv.DictReader(io.StringIO((tmp_path / "b.csv").read_text()))}  # fmt: skip
    expected = {
        "s00": ("unreadable", "s00.csv is a folder, not a file"),
        "s01": ("unreadable", "s01.csv is a named pipe, not a file"),
        "s02": ("unreadable", "s02.csv is a symbolic link, not a file"),
        "s03": ("missing", "no file s03.csv"),
    }
    assert {s: (row["status"], row["problem"]) for s, row in book.items()} == expected


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--decimals": "0"}, "--decimals must be between 1 and 8"),
        ({"--parts": "forward,grading"}, "--parts 'forward,grading': expected some of"),
        ({"--network": "missing.json"}, "cannot read network file"),
        ({"--students": "bad_roster.csv"}, "row 2: id '../x' must be a letter or digit"),
    ],
    ids=["decimals", "parts", "network", "roster"],
)
def test_bad_exercise_input_is_one_line_exit_2_and_nothing_written(
    graded, tmp_path, capsys, change, message
) -> None:
    (tmp_path / "roster.csv").write_text("id\ns01\n")
    (tmp_path / "bad_roster.csv").write_text("id\n../x\n")
    options = {
        "--network": str(graded["root"] / "base.json"),
        "--students": str(tmp_path / "roster.csv"),
        "--out": str(tmp_path / "sheets"),
    }
    options |= {
        k: str(tmp_path / v) if k != "--decimals" and k != "--parts" else v
        for k, v in change.items()
    }
    code = _run("exercise", *[part for pair in options.items() for part in pair])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("jaxbp exercise: error: ") and err.count("\n") == 1
    assert message in err, err
    assert not (tmp_path / "sheets").exists()
