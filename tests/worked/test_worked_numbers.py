"""The safe expression parser and the numbers files (CSV) of ``jaxbp.worked.grading``.

Oracles: arithmetic written out in the tests, and the shapes of the arrays given.
"""

from __future__ import annotations

import csv
import io
from importlib import resources

import numpy as np
import pytest

from jaxbp.worked import grading as worked
from jaxbp.worked.grading import expression
from jaxbp.worked.grading.expression import ExpressionError, parse
from jaxbp.worked.grading.numbers import NumbersFileError, parse_numbers, read_numbers

NAMES = {
    "y": np.array([[3.0]]),
    "a2": np.array([[0.5, 0.25]]),
    "W2_new": np.array([[1.0, 2.0], [3.0, 4.0]]),
    "da_dz2": np.arange(8.0).reshape(2, 2, 2),
    "loss": 0.128,
    "np": np,
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("loss", 0.128),
        ("W2_new[0, 1]", 2.0),
        ("W2_new[1,0]", 3.0),
        ("W2_new[-1, -1]", 4.0),
        ("da_dz2[1, 0, 1]", 5.0),
        ("0.5*(y[0,0]-a2[0,0])**2", 0.5 * (3.0 - 0.5) ** 2),
        ("-a2[0, 1] + 2 * (1 - 0.5) / 4", -0.25 + 0.25),
        ("+loss - -1e-3", 0.129),
        ("2 ** -2", 0.25),
        ("W2_new[0:1, 1]", 2.0),
    ],
)
def test_allowed_expressions_evaluate_like_the_arithmetic(text, expected) -> None:
    assert parse(text).evaluate(NAMES) == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("np.exp(1)", "Call is not allowed"),
        ("loss.__class__", "Attribute is not allowed"),
        ("__import__('os').system('true')", "Call is not allowed"),
        ("(lambda: 1)()", "Call is not allowed"),
        ("lambda: 1", "Lambda is not allowed"),
        ("[x for x in ()]", "ListComp is not allowed"),
        ("loss if 1 else 2", "IfExp is not allowed"),
        ("loss > 1", "Compare is not allowed"),
        ("'text'", "is not a number"),
        ("True + 1", "is not a number"),
        ("1j", "is not a number"),
        ("loss // 2", "BinOp is not allowed"),
        ("loss % 2", "BinOp is not allowed"),
        ("W2_new[loss]", "indices must be small integers"),
        ("W2_new[0.5, 1]", "indices must be small integers"),
        ("W2_new[0:1][1]", "only a name can be indexed"),
        ("9 ** 99999", "exponents are limited"),
        ("1" * 400, "at most 200"),
        ("(" * 30 + "1" + " + 1)" * 30, "nested more than"),
        ("(" * 150 + "1" + ")" * 150, "at most 200"),
        ("-" * 100 + "1", "nested more than"),
        ("1 +", "is not an expression"),
        ("", "empty expression"),
        ("x = 1", "is not an expression"),
        ("f'{loss}'", "JoinedStr is not allowed"),
        ("W2_new[0, 0, 0, 0]", "at most 3 indices"),
    ],
)
def test_hostile_or_malformed_expressions_are_refused_before_evaluation(text, message) -> None:
    with pytest.raises(ExpressionError, match=message):
        parse(text)


@pytest.mark.parametrize("text", ["2 ** (W2_new[1, 1] * 100)", "2 ** 10 ** 10", "2 ** (99 - -99)"])
def test_an_exponent_computed_from_names_is_bounded_when_evaluated(text) -> None:
    with pytest.raises(ExpressionError, match="exponents are limited"):
        parse(text).evaluate(NAMES)


def test_parentheses_alone_add_no_depth() -> None:
    assert parse("(" * 50 + "loss" + ")" * 50).evaluate(NAMES) == 0.128


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("np", "unknown name 'np'"),
        ("b7", "unknown name 'b7'; this network has W2_new, a2, da_dz2, loss, y"),
        ("W2_new[2, 0]", r"index \[2, 0\] is out of range for W2_new of shape \(2, 2\)"),
        ("a2", r"is an array of shape \(1, 2\), not one number"),
    ],
)
def test_evaluation_errors_name_the_problem(text, message) -> None:
    with pytest.raises(ExpressionError, match=message):
        parse(text).evaluate(NAMES)


def test_overflow_is_an_expression_error_not_inf() -> None:
    with pytest.raises(ExpressionError, match="not a finite number"):
        parse("1e300 * 1e300").evaluate({})


def test_the_parser_never_reaches_eval(monkeypatch) -> None:
    import builtins

    def refuse(*args, **kwargs):  # pragma: no cover - called only on failure
        raise AssertionError("eval was called")

    monkeypatch.setattr(builtins, "eval", refuse)
    assert parse("W2_new[1, 1] - loss").evaluate(NAMES) == pytest.approx(4.0 - 0.128)
    assert expression.MAX_LENGTH == 200


def test_tolerance_is_one_unit_of_the_last_written_digit() -> None:
    records = parse_numbers(
        b"quantity,value\nloss,0.128\nloss,1.25e-3\nloss,2\nloss,-0.50\n", "numbers.csv"
    )
    assert [r.tolerance for r in records] == pytest.approx([1e-3, 1e-5, 1.0, 1e-2])
    assert records[1].written_like(0.0012834) == "1.28e-03"
    assert records[0].written_like(0.12834, extra_digits=2) == "0.12834"


def test_a_numbers_file_is_read_with_its_symbols_and_row_numbers(tmp_path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text('symbol,quantity,value,note\nh1,"z1[0, 0]",1.23,first\n\n,loss,0.3\n')
    first, second = read_numbers(path)
    assert (first.symbol, first.expression, first.text, first.row) == ("h1", "z1[0, 0]", "1.23", 2)
    assert (second.symbol, second.expression, second.row) == ("loss", "loss", 4)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"quantity,number\nloss,1\n", "row 1: .* lacks the column\\(s\\) value"),
        (b"quantity,value\n", "no rows of numbers"),
        (b"quantity,value\nloss,abc\n", "row 2: value 'abc' is not a number"),
        (b"quantity,value\nloss,nan\n", "row 2: value 'nan' is not a number"),
        (b"quantity,value\nloss,0.1\nloss,2,extra\n", "row 3: 3 fields for 2 columns"),
        (b"quantity,value\nloss,1,5\n", "row 2: 3 fields for 2 columns"),
        (b"quantity,value\nloss.real,1\n", "row 2: quantity .*Attribute is not allowed"),
        (b"quantity,value\n" + b"\x89PNG\r\n\x1a\n\x00", "not a UTF-8 text file"),
        (b"quantity,value\nloss,1\x00\n", "NUL bytes"),
        (b"quantity,value\n" + b"loss,1\n" * 10_001, "at most 10,000"),
        (b"quantity,value\n" + b"1" * 1_000_001, "larger than 1,000,000 bytes"),
    ],
)
def test_bad_numbers_files_name_the_file_row_and_problem(data, message) -> None:
    with pytest.raises(NumbersFileError, match=f"^numbers.csv.*{message}"):
        parse_numbers(data, "numbers.csv")


def test_a_folder_or_missing_file_is_refused_by_name(tmp_path) -> None:
    with pytest.raises(NumbersFileError, match="is a folder"):
        read_numbers(tmp_path)
    with pytest.raises(NumbersFileError, match=r"cannot read numbers file .*missing\.csv"):
        read_numbers(tmp_path / "missing.csv")


def test_published_numbers_are_package_data_in_the_check_format() -> None:
    counts = {}
    for document in ("000", "001", "002", "003", "004"):
        data = (
            resources.files("jaxbp.worked.grading")
            .joinpath(f"published_{document}.csv")
            .read_text()
        )
        header = next(csv.reader(io.StringIO(data)))
        assert header[:3] == ["quantity", "value", "symbol"]
        counts[document] = sum(1 for _ in csv.DictReader(io.StringIO(data)))
    assert counts == {"000": 93, "001": 19, "002": 85, "003": 34, "004": 87}
    assert sum(len(e.published) for e in worked.EXAMPLES.values()) == sum(counts.values())


def test_the_docstring_example_runs() -> None:
    import doctest

    result = doctest.testmod(expression, verbose=False)
    assert result.attempted > 0 and result.failed == 0
