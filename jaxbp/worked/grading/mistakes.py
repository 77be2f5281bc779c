"""What went wrong in a hand-computed number: the usual slips of a backprop worked by hand.

A number that does not match its quantity (within its tolerance) is diagnosed on the quantity's
canonical form (:mod:`jaxbp.worked.grading.canonical`), so the reason does not depend on how it is
written (``W1_new[1, 0] - W1[1, 0]`` or ``-0.1*dW1[1, 0]``). The slips are tried in this order;
the first that reproduces the number names the mistake:

- ``carried forward``: the number is right given the writer's own earlier wrong numbers (the
  step is right, the input was wrong): every wrong number of the sheet is put in place of the
  computed one and everything after it recomputed (:func:`jaxbp.worked.grading.replay.run`);
- ``no step``: the value before the update, copied from the previous pass (``W' = W``);
- ``direction``: the step taken the wrong way, ``W + lr*dW``;
- ``sign``: the correct value with its sign flipped;
- ``transposed index``: ``W[j, i]`` (or ``dW``, ``W_new``) read for ``W[i, j]``;
- ``learning rate``: the update with the learning rate applied twice (``W - lr*lr*dW`` or the
  step taken twice, ``W - 2*lr*dW``) or left out (``W - dW``), and everything computed from it;
- ``activation derivative``: ``delta_l = dL/da_l`` without the factor ``f_l'(z_l)``, and
  everything computed from it below layer ``l`` and in the update;
- ``rounding``: every intermediate rounded to 1..4 decimals or 2..4 significant digits and carried
  forward, or the value right to one or two fewer decimals than written (when that is still
  within 1% of the correct value);
- ``arithmetic``: none of the above.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxbp.worked.grading import canonical
from jaxbp.worked.grading.canonical import Canonical
from jaxbp.worked.grading.carried import Sheet
from jaxbp.worked.grading.expression import Expression, ExpressionError, parse
from jaxbp.worked.grading.replay import (
    Rounding,
    exact,
    perturbed,
    round_decimals,
    round_significant,
    run,
    step_of,
)

if TYPE_CHECKING:
    from jaxbp.worked.trace import Trace

__all__ = ("Diagnosis", "Sheet", "replay", "round_decimals", "round_significant")

_LR_SLIPS = (
    ("lr*lr", "the learning rate applied twice: it matches W - lr·lr·dW"),
    ("2*lr", "the learning rate applied twice: it matches the step taken twice, W - 2·lr·dW"),
    ("none", "the learning rate left out: it matches W - dW"),
)


def replay(
    trace: Trace,
    rounding: Rounding = exact,
    skip_derivative: int | None = None,
    lr_slip: str | None = None,
) -> dict[str, Any]:
    """The step of ``trace`` recomputed with a slip, under the names of :meth:`Trace.names`.

    Args:
        trace: the network, its parameters and example.
        rounding: applied to every intermediate result where it is used further.
        skip_derivative: a layer ``l`` whose ``delta_l`` is taken as ``dL/da_l``.
        lr_slip: ``"lr*lr"``, ``"2*lr"``, ``"none"``, ``"-lr"`` (the wrong direction) or
            ``"0"`` (no step) for a wrong learning-rate factor.
    """
    return run(step_of(trace), rounding, skip_derivative, _factor(trace.learning_rate, lr_slip))[0]


def _factor(lr: float, slip: str | None) -> float | None:
    factors = {None: None, "lr*lr": lr * lr, "2*lr": 2 * lr, "none": 1.0, "-lr": -lr, "0": 0.0}
    return factors[slip]


class Diagnosis:
    """Finds the slip behind wrong numbers of one trace (the replays are computed once, lazily)."""

    def __init__(self, trace: Trace):
        self.trace = trace
        self.step = step_of(trace)
        self._replays: list[tuple[str, str, dict[str, Any]]] | None = None
        self._worlds: list[dict[str, Any]] | None = None
        self._forms: dict[str, Canonical | None] = {}
        self._steps: dict[str, dict[str, Any]] = {}

    def worlds(self) -> list[dict[str, Any]]:
        """The trace's quantities and those of two perturbations of its network."""
        if self._worlds is None:
            self._worlds = [self.trace.names()] + [
                run(perturbed(self.step, salt))[0] for salt in (1, 2)
            ]
        return self._worlds

    def canonical(self, expression: Expression) -> Canonical | None:
        """The single entry (or step) ``expression`` is, or None (cached by its text)."""
        if expression.text not in self._forms:
            form = canonical.plain(expression, self.trace.names())
            self._forms[expression.text] = form or canonical.find(expression, self.worlds())
        return self._forms[expression.text]

    def sheet(self, written: Sequence[tuple[Expression, float, float, bool]]) -> Sheet:
        """The carried-forward replay of a sheet's numbers ``(expression, value, tolerance,
        right)``."""
        return Sheet(self.step, self.trace.names(), self.canonical, written)

    def _step_slip(self, factor: str) -> dict[str, Any]:
        """The replay with no step (``"0"``) or the step reversed (``"-lr"``), computed once."""
        if factor not in self._steps:
            self._steps[factor] = replay(self.trace, lr_slip=factor)
        return self._steps[factor]

    def replays(self) -> list[tuple[str, str, dict[str, Any]]]:
        """``(kind, sentence, names)`` for every slip after the sign and the index, in order."""
        if self._replays is None:
            trace, replays = self.trace, []
            for slip, sentence in _LR_SLIPS:
                replays.append(("learning rate", sentence, replay(trace, lr_slip=slip)))
            for layer in trace.layers:
                if layer.activation != "linear":
                    sentence = (
                        f"missing activation derivative: it matches delta{layer.index} = "
                        f"dL/da{layer.index} without the factor f'(z{layer.index}) "
                        f"(da_dz{layer.index}, {layer.activation})"
                    )
                    replayed = replay(trace, skip_derivative=layer.index)
                    replays.append(("activation derivative", sentence, replayed))
            for decimals in (4, 3, 2, 1):
                sentence = (
                    f"rounding carried forward: it matches the computation with every "
                    f"intermediate rounded to {decimals} decimals; keep more digits until the end"
                )
                replays.append(("rounding", sentence, replay(trace, round_decimals(decimals))))
            for digits in (4, 3, 2):
                sentence = (
                    f"rounding carried forward: it matches the computation with every "
                    f"intermediate rounded to {digits} significant digits; keep more digits "
                    "until the end"
                )
                replays.append(("rounding", sentence, replay(trace, round_significant(digits))))
            self._replays = replays
        return self._replays

    def explain(
        self,
        expression: Expression,
        value: float,
        tolerance: float,
        correct: float,
        sheet: Sheet | None = None,
    ) -> tuple[str, str]:
        """``(kind, sentence)`` for a number ``value`` that should have been ``correct``.

        ``sheet`` holds the other wrong numbers of the same sheet, for ``carried forward``.
        """
        form = self.canonical(expression)
        written = form.expression if form is not None else expression
        if sheet is not None:
            reason = sheet.carried(written, form is not None, value, tolerance, correct)
            if reason:
                return "carried forward", reason
        for kind, reason, factor in (
            ("no step", _no_step(form, self.trace.names()), "0"),
            ("direction", _DIRECTION, "-lr"),
        ):
            if _matches(written, self._step_slip(factor), value, tolerance):
                return kind, reason
        if abs(-correct - value) <= tolerance:
            return (
                "sign",
                f"sign flipped: {-correct:.6g} is the correct value with its sign changed",
            )
        names = self.trace.names()
        for text, variant in _transposed(written, form):
            if _matches(variant, names, value, tolerance):
                return "transposed index", (
                    f"transposed index: it matches {text}; W[i, j] joins unit i of the layer "
                    "below to unit j of the layer above"
                )
        for kind, sentence, replayed in self.replays():
            if _matches(written, replayed, value, tolerance):
                return kind, sentence
        for fewer in (1, 2):
            coarse = tolerance * 10.0**fewer
            if abs(value - correct) <= coarse and coarse <= 0.01 * abs(correct):
                return "rounding", (
                    f"rounding carried forward: right to {fewer} digit(s) fewer than written "
                    f"(within {coarse:g}); an intermediate was probably rounded"
                )
        return "arithmetic", (
            "plain arithmetic: no usual slip (carried forward, no step, direction, sign, "
            "transposed index, learning rate, activation derivative, rounding) reproduces it; "
            "redo this step"
        )


_DIRECTION = (
    "step in the wrong direction: it matches W + lr·dW; gradient descent steps against the "
    "gradient, W − lr·dW"
)


def _no_step(form: Canonical | None, names: dict[str, Any]) -> str:
    if form is not None and form.name.endswith("_new") and not form.step:
        before = canonical.text_of(form.name.removesuffix("_new"), form.index)
        value = float(np.asarray(names[form.name.removesuffix("_new")])[form.index])
        return (
            f"no step taken: it is {before} = {value:.6g}, the value before the update, copied "
            "from the previous pass; take the step W − lr·dW first"
        )
    return (
        "no step taken: it matches the numbers before the update, copied from the previous "
        "pass; take the step W − lr·dW first"
    )


def _transposed(written: Expression, form: Canonical | None) -> list[tuple[str, Expression]]:
    """The weight subscripts swapped; for an updated weight ``W_new[i, j]`` also the update
    with the gradient read at ``[j, i]``."""
    variants = written.transposed()
    if form is not None and form.step and form.sign < 0:  # name the step, whatever its sign
        variants = [(text.removeprefix("-(").removesuffix(")"), v) for text, v in variants]
    if form is not None and not form.step and form.name.startswith("W") and len(form.index) == 2:
        i, j = form.index
        if i != j:
            base = form.base
            text = f"{base}[{i}, {j}] + {form.name}[{j}, {i}] - {base}[{j}, {i}]"
            variant = parse(f"{form.sign:+g} * ({text})")
            variants.append((f"{base}[{i}, {j}] − lr·d{base}[{j}, {i}]", variant))
    return variants


def _matches(expression: Expression, names: dict[str, Any], value: float, tolerance: float) -> bool:
    try:
        return abs(expression.evaluate(names) - value) <= tolerance
    except ExpressionError:
        return False
