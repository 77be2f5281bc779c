"""Published or hand-computed numbers beside the numbers a Trace computes.

Each :class:`jaxbp.worked.grading.Published` record names the quantity it claims to be, an expression
evaluated safely on the Trace's own numbers (:meth:`jaxbp.worked.trace.Trace.names`). A number matches
when it is within one unit of its last written digit (the documents round and carry); otherwise it
is marked wrong, explained by the record's erratum when it has one, and in any case classified by
:class:`jaxbp.worked.grading.mistakes.Diagnosis` (carried forward, no step, the wrong direction, a
sign, a transposed index, the learning rate, a missing activation derivative, rounding, or plain
arithmetic).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from jaxbp.worked.grading import Published, WorkedExample
from jaxbp.worked.grading.expression import ExpressionError, parse
from jaxbp.worked.grading.mistakes import Diagnosis
from jaxbp.worked.grading.numbers import SIGNIFICANT, NumbersFileError
from jaxbp.worked.grading.numbers import allowed as numbers_allowed

if TYPE_CHECKING:
    from jaxbp.worked.trace import Trace


@dataclasses.dataclass(frozen=True)
class Row:
    """One number: ``computed_text`` is the computed value with two more decimals than the
    written one, ``correct_text`` at the written precision (the value a wrong one should have
    been); ``quantity`` the expression it claims to be; ``mistake`` the kind of slip that
    reproduces a wrong one (``""`` when it matches)."""

    document: str
    step: str
    symbol: str
    published: str
    computed: float
    computed_text: str
    correct_text: str
    matches: bool
    explanation: str
    quantity: str = ""
    mistake: str = ""

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def compare(
    numbers: WorkedExample | Sequence[Published],
    trace: Trace,
    where: str = "numbers",
    tolerance: float | None = None,
    hand_computed: bool = False,
) -> list[Row]:
    """Every number of ``numbers`` (a worked example's published ones, or records read by
    :func:`jaxbp.worked.grading.numbers.read_numbers`), in order, against ``trace``.

    The numbers of one ``document`` are one sheet: a wrong number that is right given the
    sheet's earlier wrong numbers is diagnosed as carried forward.

    Args:
        numbers: the records.
        trace: the worked example.
        where: the file, for messages.
        tolerance: the same tolerance for every number (a course sheet asks for a fixed number
            of decimals); default one unit of each number's last written digit.
        hand_computed: a student's own numbers (``--check``): each must also agree with the
            correct value to ``SIGNIFICANT`` significant digits
            (:func:`jaxbp.worked.grading.numbers.allowed`), so no written form passes a wrong one.

    Raises:
        NumbersFileError: when a quantity does not exist in this network (``where``, the row).
    """
    records = numbers.published if isinstance(numbers, WorkedExample) else numbers
    names, diagnosis = trace.names(), Diagnosis(trace)
    graded = []
    for record in records:
        expression = parse(record.expression)
        try:
            computed = expression.evaluate(names)
        except ExpressionError as error:
            raise NumbersFileError(f"{where}, row {record.row}: quantity {error}") from None
        allowed = record.tolerance if tolerance is None else tolerance
        if hand_computed and tolerance is None:
            allowed = numbers_allowed(record, computed)
        graded.append(
            (record, expression, computed, allowed, abs(computed - record.value) <= allowed)
        )
    sheets = {
        document: diagnosis.sheet(
            [(e, r.value, t, ok) for r, e, _, t, ok in graded if r.document == document]
        )
        for document in dict.fromkeys(r.document for r, *_ in graded)
    }
    rows = []
    for record, expression, computed, allowed, matches in graded:
        mistake, explanation, correct_text = "", "", record.written_like(computed)
        if not matches and abs(computed - record.value) <= record.tolerance:
            mistake, correct_text = "rounding", f"{computed:.{SIGNIFICANT}g}"
            explanation = (
                f"too few significant digits: {record.text} is within one unit of its last digit, "
                f"but a number must agree with the correct value to {SIGNIFICANT} significant "
                "digits; write more digits"
            )
        elif not matches:
            mistake, explanation = diagnosis.explain(
                expression, record.value, allowed, computed, sheets[record.document]
            )
            explanation = record.erratum or explanation
        rows.append(
            Row(
                document=record.document,
                step=record.step,
                symbol=record.symbol,
                published=record.text,
                computed=computed,
                computed_text=record.written_like(computed, extra_digits=2),
                correct_text=correct_text,
                matches=matches,
                explanation=explanation,
                quantity=record.expression,
                mistake=mistake,
            )
        )
    return rows
