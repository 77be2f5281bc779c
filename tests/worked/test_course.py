"""The pieces of course mode: the roster, the draws, what counts as degenerate, the worksheets, the
covered page and the safe writes.

Oracles: SHA-256 called here for the draws; networks written out in the tests whose
degeneracy is plain from their numbers (a ReLU input of -1, a sigmoid input of 5); the roster
and worksheets as written here.
"""

from __future__ import annotations

import hashlib
import os
import re

import numpy as np
import pytest

from jaxbp.model.mlp import MLP
from jaxbp.worked import grading as worked
from jaxbp.worked import network_file
from jaxbp.worked.course import files, sheet, variant, worksheet
from jaxbp.worked.course.files import CourseError
from jaxbp.worked.course.roster import Student, parse_roster
from jaxbp.worked.render.html import page
from jaxbp.worked.trace import explain


# --- the roster --------------------------------------------------------------------------------
def test_a_roster_is_read_with_any_usual_separator() -> None:
    want = (Student("s01", "Ada Lovelace"), Student("s-02.b", ""))
    assert parse_roster(b"id,name\ns01,Ada Lovelace\ns-02.b,\n\n", "r.csv") == want
    assert parse_roster(b"\xef\xbb\xbfname;id\r\nAda Lovelace;s01\r\n;s-02.b\r\n", "r.csv") == want
    assert parse_roster(b"id\tname\ns01\tAda Lovelace\ns-02.b\t\n", "r.csv") == want


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"name\nAda\n", r"row 1: no id column"),
        (b"id\n../etc\n", r"row 2: id '../etc' must be a letter or digit"),
        (b"id\ns01\nS01\n", r"row 3: id 'S01' repeats row 2"),
        (b"id\n", "no students"),
        (b"name,id,id\nAda,s1,s2\n", r"row 1: 2 columns are named 'id' \(columns 2, 3\)"),
        (b"id;name;Name\ns1;Ada;Alan\n", r"row 1: 2 columns are named 'name' \(columns 2, 3\)"),
        (b"id\n\x00\x01", "NUL bytes"),
        (b"\x89PNG\r\n\x1a\n\xff", "not a UTF-8 text file"),
    ],
)
def test_a_bad_roster_names_the_file_and_row(data, message) -> None:
    with pytest.raises(CourseError, match=f"^r.csv.*{message}"):
        parse_roster(data, "r.csv")


# --- the draws ---------------------------------------------------------------------------------
def test_the_draws_are_sha256_of_the_seed_and_a_counter() -> None:
    seed = variant.student_seed(7, "s01")
    assert seed == hashlib.sha256(b"jaxbp exercise\x007\x00s01").digest()
    draw = variant.Draw(seed)
    blocks = [hashlib.sha256(seed + n.to_bytes(8, "little")).digest() for n in (1, 2)]
    assert draw.integer(0, 99) == int.from_bytes(blocks[0][:8], "little") % 100
    assert draw.integer(-5, 5) == -5 + int.from_bytes(blocks[1][:8], "little") % 11


def _base(name: str) -> tuple[dict, network_file.NetworkFile, tuple]:
    data = network_file.from_example(worked.EXAMPLES[name])
    net = network_file.parse(data)
    return data, net, sheet.asked(net.spec, 1, net.frozen)


def test_no_relu_is_dead_unless_asked() -> None:
    data, net, questions = _base("relu-sigmoid-linear")
    draws = [
        variant.draw_network(data, net.spec, f"s{n}", 0, questions, 4, allow_dead_relu=flag)
        for flag in (False, True)
        for n in range(12)
    ]
    z1 = [np.asarray(d["x"]) @ np.asarray(d["params"][0]["w"]) + d["params"][0]["b"] for d in draws]
    assert all(np.all(z > 0.05) for z in z1[:12])  # every ReLU unit on, away from the kink
    assert all(np.all(np.abs(z) >= 0.05) for z in z1[12:])
    assert any(np.any(z < 0) for z in z1[12:])  # allowed, some draws have one off


def test_the_same_id_and_seed_give_the_same_network_and_others_differ() -> None:
    data, net, questions = _base("sigmoid-softmax")
    first = variant.draw_network(data, net.spec, "s01", 3, questions, 4)
    assert variant.draw_network(data, net.spec, "s01", 3, questions, 4) == first
    assert variant.draw_network(data, net.spec, "s02", 3, questions, 4) != first
    assert variant.draw_network(data, net.spec, "s01", 4, questions, 4) != first


SPEC = MLP(sizes=(1, 2, 1), activations=("relu", "sigmoid"))


def _network(w1, b1, w2, b2, x=1.0, lr=0.5) -> dict:
    return {
        "sizes": [1, 2, 1], "activations": ["relu", "sigmoid"], "loss": "half_se", "lr": lr,
        "params": [{"w": [w1], "b": b1}, {"w": [[w2[0]], [w2[1]]], "b": [b2]}],
        "x": [[x]], "y": [[1.0]],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("network", "reason"),
    [
        (_network([1.0, -1.0], [0.0, 0.0], [0.5, 0.5], 0.0), "a dead ReLU unit"),
        (_network([1.0, 0.02], [0.0, 0.0], [0.5, 0.5], 0.0), "a ReLU pre-activation next to 0"),
        (_network([1.0, 1.0], [0.0, 0.0], [3.0, 2.5], 0.0), "a saturated sigmoid"),  # z = 5.5
        (_network([1.0, 1.0], [0.0, 0.0], [0.5, 0.5], 0.0, lr=1e-4), "an update step too small"),
        (_network([1.0, 1.0], [0.0, 0.0], [0.5, 0.5], 0.0), None),
    ],
)
def test_degenerate_names_what_a_hand_calculation_would_trip_on(network, reason) -> None:
    questions = sheet.asked(SPEC, 1)
    found = variant.degenerate(network, SPEC, questions, 4)
    assert (found is None) if reason is None else found.startswith(reason), found


# --- sheets and worksheets ---------------------------------------------------------------------
def test_the_questions_by_part() -> None:
    spec = MLP(sizes=(2, 3, 1), activations=("tanh", "linear"), bias=(True, False))
    questions = sheet.asked(spec, 2, frozen=("W2",), parts=("loss", "update"))
    assert questions == (
        ("loss", "loss"),
        *[("update", f"W1_new[{i},{j}]") for i in range(2) for j in range(3)],
        *[("update", f"b1_new[{j}]") for j in range(3)],
    )
    every = sheet.asked(spec, 2)
    assert sum(p == "forward" for p, _ in every) == 2 * 2 * (3 + 1)  # z, a for 2 examples


def _student_sheets():
    data, net, questions = _base("sigmoid-softmax")
    drawn = variant.draw_network(data, net.spec, "s01", 0, questions, 4)
    mine = network_file.parse(drawn)
    trace = explain(mine.spec, mine.loss, mine.params, mine.x, mine.y, mine.learning_rate)
    return drawn, questions, trace


def test_the_worksheets_show_the_initial_values_and_no_answer() -> None:
    drawn, questions, trace = _student_sheets()
    student = Student("s01", "Ada & Co_1")
    md = worksheet.markdown(drawn, student, questions, 4)
    tex = worksheet.latex(drawn, student, questions, 4)
    names = trace.names()
    for text in (md, tex):
        for w in np.ravel(drawn["params"][0]["w"]):
            assert f"{w:g}" in text
        for _, q in questions:
            value = worked.expression.parse(q).evaluate(names)
            if abs(value * 100 - round(value * 100)) > 1e-6:  # not a short number by chance
                assert f"{value:.4f}" not in text, q
    assert all(f"`{q}`" in md for _, q in questions)
    assert r"Ada \& Co\_1" in tex and r"\texttt{W2\_new[1,0]}" in tex
    assert tex.count("{") == tex.count("}") and tex.rstrip().endswith(r"\end{document}")
    assert len(re.findall(r"\\begin\{longtable\}", tex)) == 4


def test_the_covered_page_holds_no_answer_python_wrote() -> None:
    _, _, trace = _student_sheets()
    html = page(trace, "s01", digits=6)
    covered = worksheet.covered(html)
    assert 'data-value="' in html and 'data-value="' not in covered
    cells = re.findall(r'<(?:td|span)\b[^>]*\bdata-q="([^"]*)"[^>]*>([^<]*)<', covered)
    assert cells and all(text == "?" for _, text in cells)
    assert 'class="jaxbp-answers-toggle"' in covered and "jaxbpPage(" in covered
    assert f"{trace.loss:.6g}" not in covered
    # the inputs keep their values: the page recomputes everything from them
    assert re.search(r'<input data-q="W1\[0,0\]" value="[^"?]+"', covered)


# --- writing files -----------------------------------------------------------------------------
def test_writes_are_atomic_and_refuse_links_and_existing_files(tmp_path) -> None:
    target = tmp_path / "out" / "a" / "f.txt"
    files.plan(tmp_path / "out", [target], force=False, flag="--out")
    files.write(target, "one")
    assert target.read_text() == "one" and os.listdir(target.parent) == ["f.txt"]
    with pytest.raises(CourseError, match=r"exists; .* pass --force"):
        files.plan(tmp_path / "out", [target], force=False, flag="--out")
    files.plan(tmp_path / "out", [target], force=True, flag="--out")
    files.write(target, "two")
    assert target.read_text() == "two"
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("mine")
    link = tmp_path / "out" / "a" / "link.txt"
    link.symlink_to(elsewhere)
    for force in (False, True):
        with pytest.raises(CourseError, match="symbolic link"):
            files.plan(tmp_path / "out", [link], force=force, flag="--out")
    with pytest.raises(CourseError, match="symbolic link"):
        files.write(link, "x")
    assert elsewhere.read_text() == "mine"


def test_a_folder_that_is_a_link_is_refused(tmp_path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "out").symlink_to(tmp_path / "real")
    with pytest.raises(CourseError, match="symbolic link"):
        files.check_folder(tmp_path / "out", "--out", create=True)
    (tmp_path / "out2").mkdir()
    (tmp_path / "out2" / "students").symlink_to(tmp_path / "real")
    with pytest.raises(CourseError, match="symbolic link"):
        files.plan(tmp_path / "out2", [tmp_path / "out2/students/s01/w.md"], True, "--out")
    (tmp_path / "afile").write_text("")
    with pytest.raises(CourseError, match="is a file, not a folder"):
        files.check_folder(tmp_path / "afile", "--out", create=True)
