"""Numbers files as students and spreadsheets write them: unquoted brackets, ``;`` and tabs, decimal
commas, a spreadsheet's export. Oracle: the rows written out in each test."""

from __future__ import annotations

import pytest

from jaxbp.worked.grading.numbers import NumbersFileError, parse_numbers

EXPECTED = [("W1[0,1]", "0.25"), ("max(z2[0,0], z2[0,1])", "1.5"), ("loss", "-0.125")]


def _read(data: bytes) -> list[tuple[str, str]]:
    return [(r.expression, r.text) for r in parse_numbers(data, "mine.csv")]


@pytest.mark.parametrize(
    "data",
    [
        b"quantity,value\nW1[0,1],0.25\nmax(z2[0,0], z2[0,1]),1.5\nloss,-0.125\n",
        b'quantity,value\n"W1[0,1]",0.25\n"max(z2[0,0], z2[0,1])",1.5\nloss,-0.125\n',
        b"quantity;value\nW1[0,1];0,25\nmax(z2[0,0], z2[0,1]);1,5\nloss;-0,125\n",
        b"quantity\tvalue\nW1[0,1]\t0,25\nmax(z2[0,0], z2[0,1])\t1.5\nloss\t-0.125\n",
        # a spreadsheet's export: byte-order mark, CRLF, empty columns, quoted cells
        b'\xef\xbb\xbfquantity,value,,\r\n"W1[0,1]",0.25,,\r\n"max(z2[0,0], z2[0,1])",1.5,,\r\n'
        b"loss,-0.125,,\r\n,,,\r\n",
        # "Unicode text": UTF-16 with its byte-order mark, tab-separated
        "quantity\tvalue\r\nW1[0,1]\t0,25\r\nmax(z2[0,0], z2[0,1])\t1,5\r\nloss\t-0,125\r\n".encode(
            "utf-16"
        ),
    ],
    ids=["unquoted", "quoted", "semicolon", "tab", "spreadsheet", "utf-16"],
)
def test_a_students_file_is_read_in_every_usual_form(data) -> None:
    assert _read(data) == EXPECTED


def test_a_decimal_comma_is_read_only_where_the_comma_cannot_separate() -> None:
    with pytest.raises(NumbersFileError, match="row 2: 3 fields for 2 columns"):
        parse_numbers(b"quantity,value\nloss,0,25\n", "mine.csv")


def test_an_unbalanced_bracket_is_one_quantity_error_naming_the_row() -> None:
    with pytest.raises(NumbersFileError, match=r"mine.csv, row 2: quantity 'W1\[0,1,0.25'"):
        parse_numbers(b"quantity,value\nW1[0,1,0.25\n", "mine.csv")


def test_the_tolerance_of_a_decimal_comma_is_its_written_digits() -> None:
    (record,) = parse_numbers(b"quantity;value\nloss;0,1250\n", "mine.csv")
    assert (record.text, record.tolerance) == ("0.1250", pytest.approx(1e-4))


def test_explain_check_reads_a_students_unquoted_file(tmp_path, capsys) -> None:
    from jaxbp import cli

    # document 001's h1 = 1.23 and its updated w2 (W1_new[1, 0]) = 0.3431, unquoted
    path = tmp_path / "mine.csv"
    path.write_text("quantity,value\nz1[0,0],1.23\nW1_new[1,0],0.3431\n")
    assert cli.main(["explain", "relu-2-2-1", "--check", str(path), "--format", "json"]) == 0
    assert '"matches": true' in capsys.readouterr().out
