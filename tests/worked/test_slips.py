"""The diagnoses of a wrong hand-computed number: carried forward, no step, the wrong direction,
and the same reason however the quantity is written; the functions of the expression language.

Oracles: the right numbers come from ``jaxbp.manual`` (the chain rule in NumPy) and one SGD step
written here; every wrong number is made from them by the slip under test, written out in the
test (``W + lr*dW``, ``W`` copied, ``sigmoid`` of the student's own wrong ``z``, ...). The seeds'
errata, written by hand, are the oracle for the published numbers.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from jaxbp import manual
from jaxbp.model.mlp import MLP
from jaxbp.worked import grading as worked
from jaxbp.worked import render
from jaxbp.worked.grading._records import Published
from jaxbp.worked.grading.expression import ExpressionError, parse
from jaxbp.worked.trace import explain

SPEC = MLP(sizes=(2, 3, 2), activations=("sigmoid", "linear"))
PARAMS = [
    {"w": np.array([[0.1, -0.4, 0.3], [0.5, 0.2, -0.6]]), "b": np.array([0.1, -0.2, 0.05])},
    {"w": np.array([[0.7, -0.3], [0.2, 0.4], [-0.5, 0.6]]), "b": np.array([0.3, -0.1])},
]
X, Y, LR = np.array([[1.5, -2.0]]), np.array([[1.0, 0.0]]), 0.1
TRACE = explain(SPEC, "half_se", PARAMS, X, Y, LR)


def _right() -> dict[str, np.ndarray | float]:
    record = manual.backward(SPEC, "half_se", PARAMS, X, Y)
    new = [{k: v - LR * record.grads[i][k] for k, v in p.items()} for i, p in enumerate(PARAMS)]
    after = manual.forward(SPEC, new, X)
    return {
        "z1": record.forward.pre_activations[0],
        "a1": record.forward.activations[0],
        "z2": record.forward.pre_activations[1],
        "a2": record.forward.activations[1],
        "loss": record.loss,
        "delta2": record.deltas[1],
        "delta1": record.deltas[0],
        "dW1": record.grads[0]["w"],
        "dW2": record.grads[1]["w"],
        "db2": record.grads[1]["b"],
        "W1_new": new[0]["w"],
        "W2_new": new[1]["w"],
        "z1_new": after.pre_activations[0],
        "loss_new": manual.loss_value("half_se", after.activations[-1], Y),
    }


R = _right()


def _grade(rows: list[tuple[str, float | str]], trace=TRACE) -> list[render.Row]:
    """Grade ``(quantity, value)`` rows, values written to 6 decimals unless given as text."""
    records = [
        Published("sheet", "", q, q, v if isinstance(v, str) else f"{v:.6f}", row=i + 2)
        for i, (q, v) in enumerate(rows)
    ]
    return render.compare(records, trace)


def test_a_step_in_the_wrong_direction_is_named() -> None:
    wrong = PARAMS[0]["w"][0, 1] + LR * R["dW1"][0, 1]  # W + lr*dW
    (row,) = _grade([("W1_new[0, 1]", wrong)])
    assert not row.matches and row.mistake == "direction", row.explanation
    assert "W + lr·dW" in row.explanation


def test_a_number_copied_from_before_the_step_is_no_step_not_the_learning_rate_twice() -> None:
    # an entry and a precision at which W - lr*lr*dW is also within the written tolerance
    w, dw = PARAMS[0]["w"], R["dW1"]
    i, j, decimals = next(
        (i, j, d)
        for (i, j), g in np.ndenumerate(dw)
        for d in range(1, 8)
        if LR * LR * abs(g) <= 0.9 * 10.0**-d and LR * abs(g) >= 1.5 * 10.0**-d
    )
    written = f"{w[i, j]:.{decimals}f}"  # W exactly: its digits are few
    assert abs(w[i, j] - LR * LR * dw[i, j] - float(written)) <= 10.0**-decimals  # lr twice fits
    assert abs(R["W1_new"][i, j] - float(written)) > 10.0**-decimals  # but it is wrong
    rows = _grade(
        [
            (f"W1_new[{i}, {j}]", written),
            ("z1_new[0, 1]", R["z1"][0, 1]),  # the forward pass before the step, copied
            ("loss_new", R["loss"]),
        ]
    )
    assert [row.mistake for row in rows] == ["no step"] * 3, [r.explanation for r in rows]
    assert f"it is W1[{i}, {j}] = {w[i, j]:.6g}, the value before the update" in rows[0].explanation


def test_a_number_right_given_an_earlier_wrong_number_is_carried_forward() -> None:
    z = R["z1"][0, 0] + 0.1  # an arithmetic slip in the forward pass
    a = 1 / (1 + np.exp(-z))  # then every step right from it
    z2 = np.array([[a, *R["a1"][0, 1:]]]) @ PARAMS[1]["w"] + PARAMS[1]["b"]
    rows = _grade(
        [("z1[0, 0]", z), ("a1[0, 0]", a), ("a1[0, 1]", R["a1"][0, 1]), ("z2[0, 1]", z2[0, 1])]
    )
    assert [row.matches for row in rows] == [False, False, True, False]
    assert [row.mistake for row in rows] == ["arithmetic", "carried forward", "", "carried forward"]
    assert f"z1[0, 0] = {z:.6g}" in rows[1].explanation
    assert "this step is right, the input was wrong" in rows[1].explanation
    assert "a1[0, 0]" in rows[3].explanation  # the input it was computed from


def test_a_wrong_gradient_carried_into_the_update_is_not_a_wrong_direction() -> None:
    dw = -R["dW2"][1, 0]  # the gradient with its sign flipped, then the update right from it
    rows = _grade([("dW2[1, 0]", dw), ("W2_new[1, 0]", PARAMS[1]["w"][1, 0] - LR * dw)])
    assert [row.mistake for row in rows] == ["sign", "carried forward"]


def test_without_the_earlier_wrong_number_on_the_sheet_nothing_is_carried() -> None:
    a = 1 / (1 + np.exp(-(R["z1"][0, 0] + 0.1)))
    (row,) = _grade([("a1[0, 0]", a)])
    assert row.mistake == "arithmetic"


def test_a_right_number_on_the_sheet_stops_a_wrong_one_from_being_carried_past_it() -> None:
    delta = R["delta2"][0, 0] * 1.5  # wrong delta2, but dW2 written right
    wrong_update = PARAMS[1]["w"][0, 0] - LR * R["a1"][0, 0] * delta  # W2_new from the wrong delta
    rows = _grade(
        [("delta2[0, 0]", delta), ("dW2[0, 0]", R["dW2"][0, 0]), ("W2_new[0, 0]", wrong_update)]
    )
    assert [row.matches for row in rows] == [False, True, False]
    assert rows[2].mistake != "carried forward", rows[2].explanation


def _step_forms(i: int, j: int, step: float) -> list[tuple[str, float]]:
    """One step of W1[i, j] written four ways, with the value each form then has."""
    w = PARAMS[0]["w"][i, j]
    return [
        (f"W1_new[{i},{j}]-W1[{i},{j}]", step),
        (f"-{LR}*dW1[{i},{j}]", step),  # the same quantity when the step is right
        (f"W1[{i},{j}] - W1_new[{i},{j}]", -step),
        (f"W1_new[{i}, {j}]", w + step),
    ]


@pytest.mark.parametrize(
    ("slip", "step", "mistake"),
    [
        ("direction", +LR * R["dW1"][1, 0], "direction"),
        ("lr-twice", -LR * LR * R["dW1"][1, 0], "learning rate"),
        ("lr-left-out", -R["dW1"][1, 0], "learning rate"),
        ("no-step", 0.0, "no step"),
        ("transposed", -LR * R["dW1"][0, 1], "transposed index"),
        ("arithmetic", -LR * R["dW1"][1, 0] * 1.7, "arithmetic"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_the_reason_does_not_depend_on_how_the_quantity_is_written(slip, step, mistake) -> None:
    forms = _step_forms(1, 0, step)
    rows = [_grade([form])[0] for form in forms]
    assert all(not row.matches for row in rows)
    assert [row.mistake for row in rows] == [mistake] * 4, [r.explanation for r in rows]
    assert len({row.explanation for row in rows[:3]}) == 1  # the three step forms: one reason


def test_the_canonical_form_of_a_rewritten_quantity() -> None:
    from jaxbp.worked.grading.mistakes import Diagnosis

    diagnosis = Diagnosis(TRACE)
    cases = {
        f"-{LR}*dW1[1, 0]": "W1_new[1, 0] - W1[1, 0]",
        "W1[1,0]-W1_new[1,0]": "-(W1_new[1, 0] - W1[1, 0])",
        "0.5*(y[0,0]-a2[0,0])**2 + 0.5*(y[0,1]-a2[0,1])**2": "loss",
        "sigmoid(z1[0, 2])": "a1[0, 2]",
        "z1[0, -1]": "z1[0, 2]",
        "a1[0, 0] * (1 - a1[0, 0])": "da_dz1[0, 0]",
    }
    for text, form in cases.items():
        found = diagnosis.canonical(parse(text))
        assert found is not None and found.expression.text == form, text
    assert diagnosis.canonical(parse("z1[0, 0] + z1[0, 1]")) is None


# --- functions in expressions ------------------------------------------------------------------
NAMES = {"z": np.array([[0.5, -1.0, 2.0]]), "a": np.array([[0.25, 0.75]]), "loss": 0.5}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("exp(z[0, 0])", np.exp(0.5)),
        ("log(a[0, 1])", np.log(0.75)),
        ("tanh(z[0, 1])", np.tanh(-1.0)),
        ("sigmoid(z[0, 2])", 1 / (1 + np.exp(-2.0))),
        ("sum(z[0])", 1.5),
        ("mean(z[0])", 0.5),
        ("max(z[0])", 2.0),
        ("min(z[0])", -1.0),
        ("max(z[0, 0], 0)", 0.5),
        ("max(z[0, 1], 0)", 0.0),
        ("sqrt(abs(z[0, 1]))", 1.0),
        ("exp(z[0, 2]) / sum(exp(z[0]))", np.exp(2.0) / (np.exp(0.5) + np.exp(-1.0) + np.exp(2.0))),
        ("-log(a[0, 0]) * 1 - 0 * log(a[0, 1])", -np.log(0.25)),
    ],
)
def test_functions_evaluate_like_the_arithmetic(text, expected) -> None:
    assert parse(text).evaluate(NAMES) == pytest.approx(expected, rel=1e-14, abs=1e-15)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("open('f')", "Call is not allowed to 'open'"),
        ("np.exp(1)", "Call is not allowed except of a function by its name"),
        ("exp(x=1)", r"exp\(\) takes plain arguments"),
        ("sum(*z)", r"sum\(\) takes plain arguments"),
        ("exp(1, 2)", r"exp\(\) takes 1 argument\(s\), got 2"),
        ("max()", r"max\(\) takes 1 to 8 argument\(s\), got 0"),
        ("exp.__class__", "Attribute is not allowed"),
        ("exp", "unknown name 'exp'"),
    ],
)
def test_other_calls_are_refused_before_evaluation(text, message) -> None:
    with pytest.raises(ExpressionError, match=message):
        parse(text).evaluate(NAMES)


def test_exp_overflow_and_log_of_a_negative_are_expression_errors_never_inf_or_nan() -> None:
    # an inf or nan cannot be graded against a written number: an error naming the row, no crash
    with pytest.raises(ExpressionError, match="not a finite number"):
        parse("exp(1000)").evaluate({})
    with pytest.raises(ExpressionError, match="not a finite number"):
        parse("log(-1)").evaluate({})
    with pytest.raises(ExpressionError, match="do not combine"):
        parse("max(z[0], a[0])").evaluate(NAMES)


def test_softmax_and_cross_entropy_written_as_students_write_them() -> None:
    example = worked.EXAMPLES["sigmoid-softmax"]
    params = [
        {"w": np.asarray(w), "b": np.asarray(b)}
        for w, b in zip(example.weights, example.biases, strict=True)
    ]
    trace = explain(worked.spec_of(example), example.loss, params, example.x, example.y, 0.02)
    z2 = trace.layers[1].pre_activations[0]
    softmax = np.exp(z2) / np.exp(z2).sum()  # written out here
    rows = _grade(
        [
            ("exp(z2[0,1])/sum(exp(z2[0]))", softmax[1]),
            ("-log(a2[0, 0])", -np.log(softmax[0])),
            ("exp(z2[0,0])/sum(exp(z2[0]))", softmax[1]),  # the other unit's value
        ],
        trace,
    )
    assert [row.matches for row in rows] == [True, True, False]


# --- the published numbers ---------------------------------------------------------------------
def _published_rows():
    for example in worked.EXAMPLES.values():
        params = [
            {"w": np.asarray(w)} | ({} if b is None else {"b": np.asarray(b)})
            for w, b in zip(example.weights, example.biases or [None] * 3, strict=False)
        ]
        trace = explain(
            worked.spec_of(example), example.loss, params, example.x, example.y,
            example.learning_rate,
        )  # fmt: skip
        yield from zip(example.published, render.compare(example, trace), strict=True)


def test_published_numbers_are_still_marked_by_their_errata_and_carried_ones_named() -> None:
    carried = 0
    for record, row in _published_rows():
        assert row.matches == (record.erratum is None), record
        if record.erratum:
            assert row.correct_text == record.correct and row.explanation == record.erratum
        if row.mistake == "carried forward":
            carried += 1  # the erratum, written by hand, says the number was carried
            assert re.search(r"carried|wrong|in place of", record.erratum or ""), record
    assert carried == 66  # as docs/explain.md says
