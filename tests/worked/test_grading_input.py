"""The expressions and numbers of a numbers file as students write them: what is read, what is
refused and with which advice, and that no written form of a number widens its tolerance.

Oracles: small arrays written out here and arithmetic done by hand in the comments.
"""

from __future__ import annotations

import numpy as np
import pytest

from jaxbp.worked.grading.expression import ExpressionError, parse
from jaxbp.worked.grading.numbers import NumbersFileError, allowed, parse_numbers

# one example (batch 1): z1 has shape (1, 3); W1 is 2 x 3
NAMES = {
    "z1": np.array([[0.5, -1.0, 2.0]]),
    "W1": np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]),
    "x": np.array([[2.0, 0.0]]),
    "loss": 0.25,
}


@pytest.mark.parametrize(
    ("chained", "entry"),
    [("W1[0][1]", 0.2), ("W1[1][2]", 0.6), ("z1[0][2]", 2.0), ("W1[-1][0]", 0.4)],
)
def test_a_chain_of_indices_is_read_as_one_subscript(chained, entry) -> None:
    assert parse(chained).evaluate(NAMES) == entry


def test_a_chained_weight_index_is_transposed_like_a_plain_one() -> None:
    # the slip W1[j, i] for W1[i, j] must be found for W1[0][1] as for W1[0, 1]
    variants = [text for text, _ in parse("W1[0][1]").transposed()]
    assert variants == ["W1[1, 0]"]


def test_one_index_on_one_example_suggests_the_example_index() -> None:
    with pytest.raises(ExpressionError, match=r"the entry is z1\[0, 1\]"):
        parse("z1[1]").evaluate(NAMES)
    with pytest.raises(ExpressionError, match=r"the entry is z1\[0, 2\]"):
        parse("z1[2]").evaluate(NAMES)


def test_an_index_out_of_range_for_every_reading_gets_no_suggestion() -> None:
    with pytest.raises(ExpressionError, match="out of range") as raised:
        parse("z1[7]").evaluate(NAMES)
    assert "the entry is" not in str(raised.value)


@pytest.mark.parametrize("text", ["W1[0:2]", "W1[:, 1]", "z1[0, :]", "W1[0, 1:]"])
def test_a_slice_as_a_graded_number_is_refused_with_advice(text) -> None:
    with pytest.raises(ExpressionError, match=r"takes a slice .* reduce the slice with sum\(\)"):
        parse(text).evaluate(NAMES)


def test_a_slice_reduced_by_a_function_is_read() -> None:
    assert parse("sum(W1[:, 1])").evaluate(NAMES) == pytest.approx(0.2 + 0.5, abs=1e-15)
    assert parse("max(z1[0, :])").evaluate(NAMES) == 2.0


@pytest.mark.parametrize("text", ["sum(W1[::0])", "sum(W1[0, ::0])", "W1[0:2:0]", "max(z1[0, 0:3:-0])"])  # fmt: skip
def test_a_slice_step_of_zero_is_refused_when_parsed(text) -> None:
    with pytest.raises(ExpressionError, match="a slice's step cannot be 0"):
        parse(text)


def test_a_slice_then_an_index_is_refused() -> None:
    with pytest.raises(ExpressionError, match="only a name can be indexed"):
        parse("W1[0:1][0]")


@pytest.mark.parametrize("text", ["1/0", "loss/0", "loss/x[0, 1]", "1/(x[0, 0] - 2)", "0**-1"])
def test_division_by_zero_is_an_error_never_inf(text) -> None:
    with pytest.raises(ExpressionError, match="division by zero in the expression"):
        parse(text).evaluate(NAMES)


@pytest.mark.parametrize("text", ["log(0)", "log(-1)", "sqrt(-1)", "exp(1000)", "1e300*1e300"])
def test_a_result_that_is_not_finite_is_an_error(text) -> None:
    with pytest.raises(ExpressionError, match="not a finite number"):
        parse(text).evaluate(NAMES)


def test_dividing_by_a_nonzero_number_still_works() -> None:
    assert parse("loss/x[0, 0]").evaluate(NAMES) == 0.125  # 0.25 / 2


# --- the tolerance of a written number ---------------------------------------------------------


def _passes(text: str, correct: float, delimiter: str = ",") -> bool:
    """Whether ``text``, as a student's number in a numbers file, passes for ``correct``."""
    data = f"quantity{delimiter}value\nloss{delimiter}{text}\n".encode()
    (record,) = parse_numbers(data, "answers.csv")
    return abs(record.value - correct) <= allowed(record, correct)


@pytest.mark.parametrize(
    ("text", "correct", "passes"),
    [
        # the same value in every form a student writes it
        ("0.5", 0.5, True),
        ("0.5000000000", 0.5, True),
        ("0.50", 0.5, True),
        ("5e-1", 0.5, True),
        (".5", 0.5, True),
        ("+0.5", 0.5, True),
        ("0.5" + "0" * 5000, 0.5, True),  # 5001 decimals: tolerance 0, the value is exact
        # fewer digits never pass a value a correct rounding to 2 significant digits would not
        ("0.5", 0.54, False),  # 0.54 rounds to 0.54; 0.5 is 0.04 off, one unit of 0.0X is 0.01
        ("5e-1", 0.54, False),
        ("0.54", 0.54, True),
        ("1e0", 1.4, False),  # 1.4 needs 1.4; 1 is 0.4 off
        ("1", 1.4, False),
        ("1.4", 1.4, True),
        ("14e-1", 1.4, True),
        ("1.3", 1.4, True),  # one unit of the last digit: a rounded value carried one step
        ("1.2", 1.4, False),
        ("0", 0.317, False),
        ("-0", 0.317, False),
        ("0e300", 0.317, False),  # 0 with a tolerance of 1e300 if the exponent counted
        ("0e999", 0.317, False),
        ("0.3", 0.317, False),
        ("0.32", 0.317, True),
        ("3.17e-1", 0.317, True),
        ("0.01", 0.0123, False),
        ("0.012", 0.0123, True),
        # exact values need no digits, and 0 is 0 however written
        ("2", 2.0, True),
        ("2e0", 2.0, True),
        ("0", 0.0, True),
        ("-0", 0.0, True),
        ("0e300", 0.0, True),
        ("0.001", 0.0, False),
        ("1e-3", 0.0, False),
        ("0", 1e-17, True),  # float64 round-off of a quantity that is 0 by the algebra
    ],
)
def test_no_written_form_widens_the_tolerance(text, correct, passes) -> None:
    assert _passes(text, correct) is passes


def test_a_decimal_comma_is_the_same_number_in_a_semicolon_file() -> None:
    assert _passes("0,54", 0.54, delimiter=";") and not _passes("0,5", 0.54, delimiter=";")


@pytest.mark.parametrize("text", ["1e400", "nan", "inf", "-inf", "1/2", "1" + "0" * 400, "0x1"])
def test_a_value_that_is_no_finite_number_is_refused(text) -> None:
    with pytest.raises(NumbersFileError, match="is not a number"):
        parse_numbers(f"quantity,value\nloss,{text}\n".encode(), "answers.csv")
