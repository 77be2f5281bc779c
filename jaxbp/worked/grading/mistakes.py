"""What went wrong in a hand-computed number: the usual slips of a backprop worked by hand.

A number that does not match its quantity (within one unit of its last written digit) is
recomputed under each slip in turn; the first that reproduces it names the mistake:

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

The slips are replayed by :func:`replay`, one forward pass, loss, backward pass and update in
NumPy float64 with three knobs (a rounding of every intermediate, a layer whose activation
derivative is dropped, a factor on the learning rate); with no knob it gives the numbers of the
Trace itself, which the tests check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxbp import manual
from jaxbp.worked.grading.expression import Expression, ExpressionError

if TYPE_CHECKING:
    from jaxbp.model.mlp import MLP
    from jaxbp.worked.trace import Trace

Rounding = Callable[[np.ndarray], np.ndarray]

_LR_SLIPS = (
    ("lr*lr", "the learning rate applied twice: it matches W - lr·lr·dW"),
    ("2*lr", "the learning rate applied twice: it matches the step taken twice, W - 2·lr·dW"),
    ("none", "the learning rate left out: it matches W - dW"),
)


def _exact(values: np.ndarray) -> np.ndarray:
    return values


def round_decimals(decimals: int) -> Rounding:
    """Round to ``decimals`` places, as a student who writes 4 decimals carries them on."""

    def rounding(values: np.ndarray) -> np.ndarray:
        return np.round(values, decimals)

    return rounding


def round_significant(digits: int) -> Rounding:
    """Round to ``digits`` significant digits."""

    def rounding(values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, np.float64)
        with np.errstate(all="ignore"):
            magnitude = np.floor(np.log10(np.abs(np.where(values == 0, 1.0, values))))
            scale = 10.0 ** (magnitude - digits + 1)
            return np.where(np.isfinite(values), np.round(values / scale) * scale, values)

    return rounding


def replay(
    trace: Trace,
    rounding: Rounding = _exact,
    skip_derivative: int | None = None,
    lr_slip: str | None = None,
) -> dict[str, Any]:
    """The step of ``trace`` recomputed with a slip, under the names of :meth:`Trace.names`.

    Args:
        trace: the network, its parameters and example.
        rounding: applied to every intermediate result where it is used further (the stored
            result itself is exact from rounded inputs, as a student carries rounded numbers on
            but writes the last result to any precision).
        skip_derivative: a layer ``l`` whose ``delta_l`` is taken as ``dL/da_l``.
        lr_slip: ``"lr*lr"``, ``"2*lr"`` or ``"none"`` for a wrong learning-rate factor.
    """
    r, spec, lr = rounding, trace.spec, trace.learning_rate
    names: dict[str, Any] = {"x": trace.x, "y": trace.y, "a0": trace.x}
    params = [{"w": layer.weights} | _bias(layer.bias) for layer in trace.layers]
    with np.errstate(all="ignore"):
        inputs = _forward(spec, params, trace.x, r, names, "")
        output = r(names[f"a{spec.num_layers}"])
        names["loss"] = manual.loss_value(trace.loss_name, output, trace.y)
        upstream = manual.loss_derivative(trace.loss_name, output, trace.y)
        grads: list[dict[str, np.ndarray]] = [{} for _ in params]
        for l in reversed(range(spec.num_layers)):  # noqa: E741  (layer index of the equations)
            n = l + 1
            derivative = manual.activation_derivative(spec.activations[l], r(names[f"z{n}"]))
            if skip_derivative == n:
                delta = upstream
            elif derivative.ndim == 3:  # softmax: J^T dL/da per example
                delta = np.einsum("nij,ni->nj", r(derivative), r(upstream))
            else:
                delta = r(upstream) * r(derivative)
            names |= {f"dL_da{n}": upstream, f"da_dz{n}": derivative, f"delta{n}": delta}
            grads[l]["w"] = r(inputs[l]).T @ r(delta)
            names[f"dW{n}"] = grads[l]["w"]
            if "b" in params[l]:
                grads[l]["b"] = names[f"db{n}"] = r(delta).sum(axis=0)
            upstream = r(delta) @ params[l]["w"].T
        names["dL_da0"] = upstream
        factor = {None: lr, "lr*lr": lr * lr, "2*lr": 2 * lr, "none": 1.0}[lr_slip]
        new = [
            {key: value - factor * r(grads[l][key]) for key, value in layer.items()}
            for l, layer in enumerate(params)  # noqa: E741
        ]
        for name in trace.frozen:
            new[int(name[1:]) - 1][name[0].lower()] = params[int(name[1:]) - 1][name[0].lower()]
        for n, (old, layer) in enumerate(zip(params, new, strict=True), start=1):
            names |= {f"W{n}": old["w"], f"W{n}_new": layer["w"]}
            if "b" in layer:
                names |= {f"b{n}": old["b"], f"b{n}_new": layer["b"]}
        rounded_new = [{key: r(value) for key, value in layer.items()} for layer in new]
        _forward(spec, rounded_new, trace.x, r, names, "_new")
        output = r(names[f"a{spec.num_layers}_new"])
        names["loss_new"] = manual.loss_value(trace.loss_name, output, trace.y)
    return names


def _bias(bias: np.ndarray | None) -> dict[str, np.ndarray]:
    return {} if bias is None else {"b": bias}


def _forward(
    spec: MLP,
    params: list[dict[str, np.ndarray]],
    a: np.ndarray,
    r: Rounding,
    names: dict[str, Any],
    tail: str,
) -> list[np.ndarray]:
    """The forward pass, each step computed exactly from the rounded results of the step before."""
    inputs = []
    for n, (layer, activation) in enumerate(zip(params, spec.activations, strict=True), start=1):
        inputs.append(a)
        product = r(a) @ layer["w"]
        z = r(product) + layer["b"] if "b" in layer else product
        a = manual.ACTIVATIONS[activation](r(z))
        names |= {f"xw{n}{tail}": product, f"z{n}{tail}": z, f"a{n}{tail}": a}
    return inputs


class Diagnosis:
    """Finds the slip behind wrong numbers of one trace (the replays are computed once, lazily)."""

    def __init__(self, trace: Trace):
        self.trace = trace
        self._replays: list[tuple[str, str, dict[str, Any]]] | None = None

    def replays(self) -> list[tuple[str, str, dict[str, Any]]]:
        """``(kind, sentence, names)`` for every slip, in the order they are tried."""
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
                    replays.append(
                        (
                            "activation derivative",
                            sentence,
                            replay(trace, skip_derivative=layer.index),
                        )
                    )
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
        self, expression: Expression, value: float, tolerance: float, correct: float
    ) -> tuple[str, str]:
        """``(kind, sentence)`` for a number ``value`` that should have been ``correct``."""
        if abs(-correct - value) <= tolerance:
            return (
                "sign",
                f"sign flipped: {-correct:.6g} is the correct value with its sign changed",
            )
        names = self.trace.names()
        for text, variant in expression.transposed():
            if _matches(variant, names, value, tolerance):
                return "transposed index", (
                    f"transposed index: it matches {text}; W[i, j] joins unit i of the layer "
                    "below to unit j of the layer above"
                )
        for kind, sentence, replayed in self.replays():
            if _matches(expression, replayed, value, tolerance):
                return kind, sentence
        for fewer in (1, 2):
            coarse = tolerance * 10.0**fewer
            if abs(value - correct) <= coarse and coarse <= 0.01 * abs(correct):
                return "rounding", (
                    f"rounding carried forward: right to {fewer} digit(s) fewer than written "
                    f"(within {coarse:g}); an intermediate was probably rounded"
                )
        return "arithmetic", (
            "plain arithmetic: no usual slip (sign, learning rate, transposed index, activation "
            "derivative, rounding) reproduces it; redo this step"
        )


def _matches(expression: Expression, names: dict[str, Any], value: float, tolerance: float) -> bool:
    try:
        return abs(expression.evaluate(names) - value) <= tolerance
    except ExpressionError:
        return False
