"""Carried forward: a number right given the writer's own earlier numbers.

A :class:`Sheet` holds the numbers of one sheet (a student's file, a document's published
numbers) and puts each one written for a single entry in place of the computed entry
(:func:`jaxbp.worked.grading.replay.run` with ``overrides``), so every later quantity is
recomputed from the writer's own earlier numbers. A wrong number that matches its value so
recomputed (within its tolerance, widened by how far the rounding of the numbers before it can
move it) was computed right from a wrong input: the step is right, the input was wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from jaxbp.worked.grading.expression import Expression, ExpressionError
from jaxbp.worked.grading.replay import run

if TYPE_CHECKING:
    from jaxbp.worked.grading.canonical import Canonical
    from jaxbp.worked.grading.replay import Step

_MAX_NAMED = 3


class Sheet:
    """The numbers of one sheet, put in place of the computed ones: what each later number is
    when computed from the writer's own earlier numbers (:func:`jaxbp.worked.grading.replay.run`).

    Every number written for a single entry takes its place, right or wrong (a right ``dW2``
    stops a wrong ``delta2`` from reaching ``W2_new``); only the wrong ones are named as the
    input a carried-forward number was computed from.
    """

    def __init__(
        self,
        step: Step,
        names: Mapping[str, Any],
        canonical_of: Callable[[Expression], Canonical | None],
        written: Sequence[tuple[Expression, float, float, bool]],
    ):
        self.overrides: dict[str, dict[tuple[int, ...], float]] = {}
        # (name, index, tolerance, "name[index] = value" when the number is wrong, else "")
        self.entries: list[tuple[str, tuple[int, ...], float, str]] = []
        if all(right for *_, right in written):
            self.worlds: list[tuple[dict[str, Any], dict[str, Any]]] = []
            return
        for expression, value, tolerance, right in written:
            form = canonical_of(expression)
            if form is None or not form.computed or form.index in self.overrides.get(form.name, {}):
                continue
            entry = form.entry_of(value, names)
            self.overrides.setdefault(form.name, {})[form.index] = entry
            text = "" if right else f"{form.entry} = {entry:.6g}"
            self.entries.append((form.name, form.index, tolerance, text))
        # a single entry is compared with its value computed from the earlier numbers; any
        # other expression (a sum of entries) with the sheet's own numbers in place
        self.worlds = [run(step, overrides=self.overrides)]
        for name, index, tolerance, _ in self.entries:
            moved = {k: dict(v) for k, v in self.overrides.items()}
            moved[name][index] += tolerance
            self.worlds.append(run(step, overrides=moved))

    def carried(
        self, form: Expression, single: bool, value: float, tolerance: float, correct: float
    ) -> str | None:
        """Why ``value`` is right given the sheet's earlier wrong numbers, or None.

        ``single``: ``form`` is one entry (compared with its value implied by the numbers before
        it), not an expression over several (evaluated with the sheet's numbers in place).
        """
        if not any(text for *_, text in self.entries):
            return None
        try:
            implied, *moved = (form.evaluate(world[1 if single else 0]) for world in self.worlds)
        except ExpressionError:
            return None
        changes = [abs(m - implied) for m in moved]
        scale = 1e-12 * (1.0 + abs(implied))
        inputs = [
            entry[3]
            for entry, change in zip(self.entries, changes, strict=True)
            if entry[3] and change > scale
        ]
        off = abs(value - implied)
        if not inputs or off >= abs(value - correct) or off > tolerance + sum(changes):
            return None
        named = ", ".join(inputs[:_MAX_NAMED])
        more = f" and {len(inputs) - _MAX_NAMED} more" if len(inputs) > _MAX_NAMED else ""
        return (
            f"carried forward: right given your earlier wrong number(s) {named}{more}; this step "
            "is right, the input was wrong"
        )
