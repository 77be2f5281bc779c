"""The expressions and numbers of a numbers file as students write them: what is read, what is
refused and with which advice, and that no written form of a number widens its tolerance.

Oracles: small arrays written out here and arithmetic done by hand in the comments.
"""

from __future__ import annotations

import numpy as np
import pytest

from jaxbp.worked.grading.expression import ExpressionError, parse

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
