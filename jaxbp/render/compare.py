"""Published numbers of the seed documents beside the numbers a Trace computes.

Each :class:`jaxbp.worked.Published` record names the quantity it claims to be; it is evaluated on
the Trace's own numbers (:meth:`jaxbp.trace.Trace.names`). A published number matches when it is
within one unit of its last printed digit (the documents round and carry); otherwise it is marked
wrong and explained by the record's erratum.
"""

from __future__ import annotations

import dataclasses

from jaxbp.trace import Trace
from jaxbp.worked import WorkedExample, evaluate


@dataclasses.dataclass(frozen=True)
class Row:
    """One published number: ``computed_text`` is the computed value with two more decimals than
    the published one, ``correct_text`` at the published precision (the value a wrong one should
    have been)."""

    document: str
    step: str
    symbol: str
    published: str
    computed: float
    computed_text: str
    correct_text: str
    matches: bool
    explanation: str

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def compare(example: WorkedExample, trace: Trace) -> list[Row]:
    """Every published number of ``example``, in document order, against ``trace``."""
    names = trace.names()
    rows = []
    for record in example.published:
        computed = evaluate(record, names)
        matches = abs(computed - record.value) <= record.tolerance
        text, correct = _fixed(computed, record.decimals + 2), _fixed(computed, record.decimals)
        explanation = "" if matches else (record.erratum or "no erratum recorded for this number")
        rows.append(
            Row(
                document=record.document,
                step=record.step,
                symbol=record.symbol,
                published=record.text,
                computed=computed,
                computed_text=text,
                correct_text=correct,
                matches=matches,
                explanation=explanation,
            )
        )
    return rows


def _fixed(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text
