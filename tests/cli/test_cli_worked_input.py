"""``jaxbp explain``, ``--check`` and ``python -m jaxbp`` with missing, hostile or odd input.

Oracles: the network of ``relu-2-2-1`` (document 001: W1 = [[0.12, 0.15], [0.33, 0.09]],
W2 = [[0.11], [0.12]], x = [[2, 3]], y = [[1]], lr 0.05) worked here by hand in plain Python;
nothing is taken from the code under test.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from jaxbp import cli

# document 001 by hand: z1 = x @ W1 = [0.24 + 0.99, 0.30 + 0.27] = [1.23, 0.57]; ReLU keeps both;
# z2 = 1.23*0.11 + 0.57*0.12 = 0.1353 + 0.0684 = 0.2037; loss = 0.5*(1 - 0.2037)**2.
Z1 = (1.23, 0.57)
Z2 = 1.23 * 0.11 + 0.57 * 0.12
LOSS = 0.5 * (1.0 - Z2) ** 2


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["explain", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def numbers(tmp_path, text: str, name: str = "answers.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_explain_without_an_example_names_every_network_conv1d_too(capsys) -> None:
    code, out, err = run(capsys)
    assert (code, out) == (2, "")
    for name in ("relu-sigmoid-linear", "relu-2-2-1", "sigmoid-softmax", "conv1d"):
        assert name in err, err


def test_an_unknown_example_names_every_network_conv1d_too(capsys) -> None:
    code, _, err = run(capsys, "relu-9-9-9")
    assert code == 2 and "conv1d" in err and "relu-2-2-1" in err


def test_python_m_jaxbp_without_a_command_prints_the_usage_on_stderr_and_exits_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "jaxbp"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("usage: jaxbp") and "explain" in done.stderr


def test_check_grades_on_the_html_page(tmp_path, capsys) -> None:
    # z1[0, 0] = 2*0.12 + 3*0.33 = 1.23 is right; the loss 0.5*(1 - 0.2037)**2 = 0.317 is not 0.1
    assert f"{Z1[0]:.2f}" == "1.23" and f"{LOSS:.1f}" == "0.3"
    path = numbers(tmp_path, "quantity,value,symbol\nz1[0, 0],1.23,h1<in>\nloss,0.1,E\n")
    code, out, err = run(capsys, "relu-2-2-1", "--check", path, "--format", "html")
    assert code == 1 and "1 of 2 numbers" in err
    assert out.startswith("<!DOCTYPE html>") and out.rstrip().endswith("</html>")
    table = out[out.index("answers.csv: written against computed") :]
    assert "<td>h1&lt;in&gt;</td><td>1.23</td>" in table
    assert '<td class="jaxbp-right">✓</td>' in table
    assert "<td>E</td><td>0.1</td>" in table and "✗ should be 0.3:" in table


def test_division_by_zero_in_a_check_expression_is_an_error_on_its_line(tmp_path, capsys) -> None:
    path = numbers(tmp_path, "quantity,value\nloss,0.3171\n1/0,1\n")
    code, out, err = run(capsys, "relu-2-2-1", "--check", path)
    assert (code, out) == (2, "")
    assert err == (
        f"jaxbp explain: error: {path}, row 3: quantity '1/0': division by zero in the "
        "expression.\n"
    )


def test_a_chained_index_is_graded_as_the_one_entry(tmp_path, capsys) -> None:
    # W1 of document 001 is [[0.12, 0.15], [0.33, 0.09]]: W1[0][1] is 0.15, z1[0][0] is 1.23
    path = numbers(tmp_path, "quantity,value\nW1[0][1],0.15\nz1[0][0],1.23\n")
    code, out, err = run(capsys, "relu-2-2-1", "--check", path, "--format", "json")
    assert (code, err) == (0, "")
    assert [row["matches"] for row in json.loads(out)["published"]] == [True, True]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "symbol,value,value\nE,0.3171,0.1\n",
            "row 1: the header names the column 'value' 2 times (columns 2, 3)",
        ),
        (
            "quantity,value,Value\nloss,0.3171,0.1\n",
            "row 1: the header names the column 'value' 2 times (columns 2, 3)",
        ),
        (
            "quantity,value,symbol\nW1[0, 1],0.15,w\nloss,0.3171,E\nW1[0, 1],0.16,w\n",
            "rows 2 and 4: the symbol 'w' for W1[0, 1] is given twice, as 0.15 and 0.16",
        ),
        (
            "quantity,value\nloss,0.3171\nz1[0, 0],1.23\nloss,0.1\n",
            "rows 2 and 4: loss is given twice, as 0.3171 and 0.1",
        ),
        (
            "quantity,value\nW1[0][1],0.15\nW1[0,1],0.16\n",
            "rows 2 and 3: W1[0,1] is given twice, as 0.15 and 0.16",
        ),
    ],
    ids=["value-twice", "value-twice-any-case", "symbol-twice", "quantity-twice", "same-entry"],
)
def test_a_repeated_column_or_number_is_refused_naming_the_lines(
    text, message, tmp_path, capsys
) -> None:
    path = numbers(tmp_path, text.replace("symbol,value,value", "quantity,value,value"))
    code, out, err = run(capsys, "relu-2-2-1", "--check", path)
    assert (code, out) == (2, "")
    assert err.startswith(f"jaxbp explain: error: {path}, ") and message in err, err


def test_one_quantity_on_two_rows_is_graded_on_each_row(tmp_path, capsys) -> None:
    # loss = 0.5*(1 - 0.2037)**2 = 0.3170468...: 0.3171 is right to its 4 decimals; 0.31710
    # claims 5 and is 5.3e-5 off, more than one unit (1e-5) of its last digit
    assert abs(LOSS - 0.3171) <= 1e-4 < abs(LOSS - 0.31710) + 1e-4 and abs(LOSS - 0.31710) > 1e-5
    path = numbers(tmp_path, "quantity,value,symbol\nloss,0.3171,E\nloss,0.31710,E2\n")
    code, out, _ = run(capsys, "relu-2-2-1", "--check", path, "--format", "json")
    rows = json.loads(out)["published"]
    assert code == 1
    assert [(row["published"], row["matches"]) for row in rows] == [
        ("0.3171", True),
        ("0.31710", False),
    ]


# --- user text shown to a terminal or written into a document ----------------------------------

HOSTILE = "net\x1b[2J\x1b]0;pwned\x07\u202e <img src=x onerror=alert(1)> & `x` $\\_%"
CONTROL = ("\x1b", "\x07", "\u202e")


def _relu_221_file(tmp_path, name: str) -> str:
    """Document 001's network as a network file, written here from its numbers."""
    data = {
        "name": name,
        "sizes": [2, 2, 1],
        "activations": ["relu", "linear"],
        "bias": False,
        "params": [{"w": [[0.12, 0.15], [0.33, 0.09]]}, {"w": [[0.11], [0.12]]}],
        "x": [[2, 3]],
        "y": [[1]],
        "loss": "half_se",
        "lr": 0.05,
    }
    path = tmp_path / "net.json"
    path.write_text(json.dumps(data))
    return str(path)


@pytest.mark.parametrize("form", ["text", "markdown", "latex", "json", "html"])
def test_a_hostile_network_name_and_symbol_reach_no_terminal_or_document_raw(
    form, tmp_path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    network = _relu_221_file(tmp_path, HOSTILE)
    symbol = HOSTILE.replace('"', "")
    path = numbers(tmp_path, f'quantity,value,symbol\nloss,0.1,"{symbol}"\n')
    code, out, err = run(capsys, "--network", network, "--check", path, "--format", form)
    assert code == 1
    for char in CONTROL:
        assert char not in out and char not in err
    if form in ("text", "markdown", "html"):  # JSON escapes the text itself, LaTeX the \
        assert "net\\x1b[2J\\x1b]0;pwned\\x07\\u202e" in out
    if form == "markdown":  # as text outside code spans; inside one (the symbol) it is inert
        shown = "net\\x1b[2J\\x1b]0;pwned\\x07\\u202e &lt;img src=x onerror=alert(1)> &amp; `x`"
        assert out.startswith(f"# {shown}")
        assert f"| `` {shown.replace('&lt;', '<').replace('&amp;', '&')}" in out
        assert [
            line for line in out.splitlines() if "<img" in line and "| `` net" not in line
        ] == []
    if form == "html":
        assert "<img" not in out
        assert "net\\x1b[2J\\x1b]0;pwned\\x07\\u202e &lt;img src=x onerror=alert(1)&gt;" in out
    if form == "latex":
        assert "net\\textbackslash{}x1b[2J" in out
        assert "\\$\\textbackslash{}\\_\\%" in out


@pytest.mark.parametrize("form", ["text", "markdown", "json"])
def test_a_hostile_conv_network_name_reaches_no_terminal_raw(form, tmp_path, capsys) -> None:
    assert cli.main(["explain", "conv1d", "--write-network", str(tmp_path / "cnn.json")]) == 0
    data = json.loads((tmp_path / "cnn.json").read_text()) | {"name": HOSTILE}
    (tmp_path / "cnn.json").write_text(json.dumps(data))
    capsys.readouterr()
    code, out, err = run(capsys, "--network", str(tmp_path / "cnn.json"), "--format", form)
    assert code == 0, err
    for char in CONTROL:
        assert char not in out and char not in err
    assert "<img" not in out if form == "markdown" else True


def test_a_network_name_that_is_not_text_is_refused(tmp_path, capsys) -> None:
    path = _relu_221_file(tmp_path, "x")
    with open(path) as file:
        network = json.load(file) | {"name": {"a": [1]}}
    with open(path, "w") as file:
        json.dump(network, file)
    code, out, err = run(capsys, "--network", path)
    assert (code, out) == (2, "") and "name must be text" in err


def test_hostile_names_in_a_course_are_shown_escaped_in_every_worksheet(tmp_path) -> None:
    network = _relu_221_file(tmp_path, "net\x1b[2J <b>")
    roster = tmp_path / "roster.csv"
    roster.write_text('id,name\ns01,"Ada\x1b]0;x\x07 <i>Lo</i> & \\_%"\n')
    out = tmp_path / "sheets"
    argv = ["exercise", "--network", network, "--students", str(roster), "--out", str(out)]
    assert cli.main(argv) == 0
    folder = out / "students" / "s01"
    for path in folder.iterdir():
        text = path.read_text()
        assert "\x1b" not in text and "\x07" not in text, path.name
    markdown = (folder / "worksheet.md").read_text()
    assert markdown.startswith("# net\\x1b[2J &lt;b>: Ada\\x1b]0;x\\x07 &lt;i>Lo&lt;/i> &amp; \\_%")
    latex = (folder / "worksheet.tex").read_text()
    student = (
        r"\textbf{Student:} Ada\textbackslash{}x1b]0;x\textbackslash{}x07 "
        r"\textless{}i\textgreater{}Lo\textless{}/i\textgreater{} \& \textbackslash{}\_\%"
    )
    assert student in latex
    assert "<i>" not in (folder / "worksheet.html").read_text()


@pytest.mark.parametrize("written", ["0", "-0", "1", "1e0", "0e300", "0e999", "0.3"])
def test_a_short_or_zero_written_form_does_not_pass_a_wrong_loss(written, tmp_path, capsys) -> None:
    # loss = 0.5*(1 - 0.2037)**2 = 0.3170468...: none of these holds 2 of its significant digits
    path = numbers(tmp_path, f"quantity,value\nloss,{written}\n")
    code, out, _ = run(capsys, "relu-2-2-1", "--check", path, "--format", "json")
    (row,) = json.loads(out)["published"]
    assert (code, row["matches"]) == (1, False), row
    assert row["correct_text"] == "0.32" and row["computed"] == pytest.approx(LOSS, abs=1e-12)


# --- output files ------------------------------------------------------------------------------


def test_plot_onto_a_link_to_a_users_file_is_refused_before_anything_is_done(
    tmp_path, capsys
) -> None:
    pytest.importorskip("matplotlib")
    mine = tmp_path / "thesis.txt"
    mine.write_text("my thesis")
    (tmp_path / "loss.png").symlink_to(mine)
    code, out, err = run(capsys, "relu-2-2-1", "--steps", "3", "--plot", str(tmp_path / "loss.png"))
    assert (code, out) == (2, "") and "is a symbolic link" in err
    assert mine.read_text() == "my thesis"


def test_write_network_onto_a_dangling_link_is_refused_as_a_link(tmp_path, capsys) -> None:
    (tmp_path / "net.json").symlink_to(tmp_path / "elsewhere.json")
    code, out, err = run(capsys, "relu-2-2-1", "--write-network", str(tmp_path / "net.json"))
    assert (code, out) == (2, "") and "is a symbolic link" in err
    assert not (tmp_path / "elsewhere.json").exists()


@pytest.mark.parametrize("suffix", [".png", ".pdf", ".svg"])
def test_plot_of_a_network_named_like_math_is_written_whole(suffix, tmp_path, capsys) -> None:
    pytest.importorskip("matplotlib")
    network = _relu_221_file(tmp_path, "a $\\frac{$ b")  # "$" would start math mode
    plot = tmp_path / f"loss{suffix}"
    code, _, err = run(capsys, "--network", network, "--steps", "3", "--plot", str(plot))
    assert code == 0 and "Traceback" not in err
    head = plot.read_bytes()[:5]
    assert head == {".png": b"\x89PNG\r", ".pdf": b"%PDF-", ".svg": b"<?xml"}[suffix]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["net.json", plot.name])


def test_a_header_of_100000_repeated_columns_is_refused_in_one_short_line(tmp_path, capsys) -> None:
    path = numbers(tmp_path, "quantity,value" + ",x" * 100_000 + "\nloss,0.3171\n")
    code, out, err = run(capsys, "relu-2-2-1", "--check", path)
    assert (code, out) == (2, "") and err.count("\n") == 1 and len(err) < 400
    assert "'x' 100000 times (columns 3, 4, 5, 6, 7 and 99995 more)" in err


def test_a_long_conv_run_reports_progress_like_an_mlp(capsys) -> None:
    code, _, err = run(capsys, "conv1d", "--steps", "1000", "--format", "json")
    lines = err.splitlines()
    assert code == 0 and len(lines) == 10
    assert lines[0].startswith("jaxbp explain: step 100/1000, loss ")
    assert lines[-1].startswith("jaxbp explain: step 1000/1000, loss ")


def test_hostile_submissions_are_graded_as_such_and_shown_escaped(tmp_path, capsys) -> None:
    network = _relu_221_file(tmp_path, "course")
    roster = tmp_path / "roster.csv"
    roster.write_text("id,name\ns01,Ada\ns02,Bob\n")
    sheets, subs = tmp_path / "sheets", tmp_path / "subs"
    argv = ["exercise", "--network", network, "--students", str(roster), "--out", str(sheets)]
    assert cli.main(argv) == 0
    subs.mkdir()
    (subs / "s01.csv").write_text('quantity,value\nloss,"<img src=x>\x1b[2J|"\n1/0,1\n')
    (subs / "s02.csv").symlink_to(roster)  # never read through a link
    (subs / "\x1b[2Jstray.csv").write_text("x")
    capsys.readouterr()
    code = cli.main(["grade", str(sheets), str(subs), "--out", str(tmp_path / "book.csv")])
    err = capsys.readouterr().err
    assert code == 1 and "\x1b" not in err and "\\x1b[2Jstray.csv" in err
    feedback = (tmp_path / "feedback" / "s01.md").read_text()
    assert "\x1b" not in feedback and "<img" not in feedback
    assert "| &lt;img src=x>\\x1b[2J\\| |" in feedback
    assert "row 3: quantity '1/0': division by zero in the expression" in feedback
    book = (tmp_path / "book.csv").read_text()
    assert "s02,Bob,unreadable,0,0,25" in book and "s02.csv is a symbolic link, not a file" in book


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        ("z1[1]", "index [1] is out of range for z1 of shape (1, 2); the first index is the "
         "example (there is one), so the entry is z1[0, 1]."),
        ("W1[0:2]", "takes a slice (':') and gives an array of shape (2, 2)"),
        ("W1[:, 1]", "takes a slice (':') and gives an array of shape (2,)"),
        ("W1[0:1][0]", "only a name can be indexed, once, with all its indices"),
    ],
)  # fmt: skip
def test_an_index_a_student_gets_wrong_is_an_error_with_advice(
    quantity, message, tmp_path, capsys
) -> None:
    path = numbers(tmp_path, f'quantity,value\n"{quantity}",0.5\n')
    code, out, err = run(capsys, "relu-2-2-1", "--check", path)
    assert (code, out) == (2, "") and err.count("\n") == 1
    assert f"row 2: quantity '{quantity}'" in err and message in err, err


def test_a_name_a_spreadsheet_would_read_as_a_formula_is_written_as_text(tmp_path) -> None:
    network = _relu_221_file(tmp_path, "net")
    roster = tmp_path / "roster.csv"
    roster.write_text('id,name\ns01,"=HYPERLINK(""http://x"",""y"")"\ns02,@SUM(A1)\ns03,Ada\n')
    sheets, subs = tmp_path / "sheets", tmp_path / "subs"
    assert cli.main(["exercise", "--network", network, "--students", str(roster), "--out", str(sheets)]) == 0  # fmt: skip
    subs.mkdir()
    book = tmp_path / "book.csv"
    cli.main(["grade", str(sheets), str(subs), "--out", str(book)])
    rows = {row["student"]: row for row in csv.DictReader(book.read_text().splitlines())}
    assert rows["s01"]["name"] == '\'=HYPERLINK("http://x","y")'
    assert rows["s02"]["name"] == "'@SUM(A1)"
    assert rows["s03"]["name"] == "Ada"
