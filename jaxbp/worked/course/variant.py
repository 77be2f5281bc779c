"""Each student's own network: the base network with weights and inputs drawn for them.

The architecture, loss, learning rate, targets, unit letters and frozen parameters are the base
network's. Drawn, from a stream of SHA-256 blocks seeded by the course seed and the student id
(the same on every machine and every NumPy version), on grids a hand calculation carries:

- weights: multiples of 0.05 from 0.1 to 1 in magnitude, either sign;
- biases (of layers that have them): multiples of 0.1 from -0.5 to 0.5;
- inputs: multiples of 0.5 from 0.5 to 2 in magnitude, either sign.

A draw is kept only when no quantity of it is degenerate (:func:`degenerate` says which), else
the next one is drawn; the same roster gives the same networks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxbp.model.mlp import MLP
from jaxbp.worked.course.files import CourseError
from jaxbp.worked.course.sheet import smallest_asked
from jaxbp.worked.grading.replay import Step, run

MAX_TRIES = 5000
RELU_MARGIN = 0.05  # |z| of a ReLU unit: a kink at 0 makes f'(z) ambiguous by hand
SATURATION = {"sigmoid": 4.0, "tanh": 2.0}  # |z| beyond: f'(z) below 0.018 or 0.071
SOFTMAX_RANGE = (0.02, 0.98)


class Draw:
    """Integers from SHA-256 of a seed and a counter: reproducible everywhere."""

    def __init__(self, seed: bytes):
        self.seed, self.counter = seed, 0

    def integer(self, low: int, high: int) -> int:
        """A uniform integer in ``[low, high]``."""
        self.counter += 1
        block = hashlib.sha256(self.seed + self.counter.to_bytes(8, "little")).digest()
        return low + int.from_bytes(block[:8], "little") % (high - low + 1)

    def magnitude(self, step: float, smallest: int, largest: int) -> float:
        """``±k * step`` with ``k`` in ``[smallest, largest]``, the sign drawn too."""
        sign = 1 if self.integer(0, 1) else -1
        return round(sign * self.integer(smallest, largest) * step, 2)


def student_seed(course_seed: int, student_id: str) -> bytes:
    """The seed of one student's draws."""
    return hashlib.sha256(f"jaxbp exercise\0{course_seed}\0{student_id}".encode()).digest()


def draw_network(
    base: dict[str, Any],
    spec: MLP,
    student_id: str,
    course_seed: int,
    questions: Sequence[tuple[str, str]],
    decimals: int,
    allow_dead_relu: bool = False,
) -> dict[str, Any]:
    """The student's network-file object: ``base`` with its ``params`` and ``x`` drawn.

    Args:
        base: a validated network-file object (:func:`jaxbp.worked.network_file.parse` took it).
        spec: its architecture.
        student_id: the roster id.
        course_seed: the course seed.
        questions: the quantities the worksheet asks, ``(part, quantity)``.
        decimals: the decimals each answer is written to.
        allow_dead_relu: keep draws where a ReLU unit is off for every example.

    Raises:
        CourseError: when no draw in ``MAX_TRIES`` is free of degenerate quantities.
    """
    draw = Draw(student_seed(course_seed, student_id))
    batch = np.atleast_2d(np.asarray(base["x"], np.float64)).shape[0]
    reasons: dict[str, int] = {}
    for _ in range(MAX_TRIES):
        params = []
        for n in range(spec.num_layers):
            fan_in, fan_out = spec.sizes[n], spec.sizes[n + 1]
            w = [[draw.magnitude(0.05, 2, 20) for _ in range(fan_out)] for _ in range(fan_in)]
            layer: dict[str, Any] = {"w": w}
            if spec.layer_bias[n]:
                layer["b"] = [round(draw.integer(-5, 5) * 0.1, 1) for _ in range(fan_out)]
            params.append(layer)
        x = [[draw.magnitude(0.5, 1, 4) for _ in range(spec.sizes[0])] for _ in range(batch)]
        candidate = dict(base) | {"params": params, "x": x}
        reason = degenerate(candidate, spec, questions, decimals, allow_dead_relu)
        if reason is None:
            return candidate
        reasons[reason] = reasons.get(reason, 0) + 1
    common = max(reasons, key=lambda r: reasons[r])
    raise CourseError(
        f"no variant of the network for {student_id!r} in {MAX_TRIES} draws is free of degenerate "
        f"quantities (most often: {common}); ask for more --decimals, fewer layers or units, or "
        "--allow-dead-relu."
    )


def degenerate(
    network: dict[str, Any],
    spec: MLP,
    questions: Sequence[tuple[str, str]],
    decimals: int,
    allow_dead_relu: bool = False,
) -> str | None:
    """Why a network is degenerate for a hand calculation, or None when it is not.

    Degenerate: a ReLU pre-activation within ``RELU_MARGIN`` of 0, or a ReLU unit off for every
    example (unless ``allow_dead_relu``); a sigmoid or tanh pre-activation beyond
    ``SATURATION``; a softmax probability outside ``SOFTMAX_RANGE``; a number asked that is not
    zero but below ten units of its last decimal; an update step below three units of it (a
    number copied from before the step would pass as right; a step of exactly 0, a dead unit's,
    is allowed with it); anything not finite.
    """
    step = _step(network, spec)
    names = run(step)[0]
    for n, activation in enumerate(spec.activations, start=1):
        z = np.asarray(names[f"z{n}"])
        if activation == "relu":
            if np.any(np.abs(z) < RELU_MARGIN):
                return "a ReLU pre-activation next to 0"
            if not allow_dead_relu and np.any(np.all(z <= 0, axis=0)):
                return "a dead ReLU unit"
        elif activation in SATURATION and np.any(np.abs(z) > SATURATION[activation]):
            return f"a saturated {activation}"
        elif activation == "softmax":
            a = np.asarray(names[f"a{n}"])
            if np.any((a < SOFTMAX_RANGE[0]) | (a > SOFTMAX_RANGE[1])):
                return "a softmax probability near 0 or 1"
    if not all(np.all(np.isfinite(np.asarray(v, np.float64))) for v in names.values()):
        return "a number that is not finite"
    unit = 10.0**-decimals
    if any(part == "update" for part, _ in questions):
        for n in range(1, spec.num_layers + 1):
            for key in ("W", "b"):
                if f"{key}{n}_new" in names and f"{key}{n}" not in step.frozen:
                    change = np.abs(np.asarray(names[f"{key}{n}_new"]) - names[f"{key}{n}"])
                    if np.any((change < 3 * unit) & (change > 1e-12)):  # 0: a dead unit
                        return "an update step too small to see at the decimals written"
    smallest = smallest_asked(names, questions)
    if 0 < smallest < 10 * unit:
        return "a number asked too small for the decimals written"
    return None


def _step(network: dict[str, Any], spec: MLP) -> Step:
    params = tuple(
        {key: np.asarray(value, np.float64) for key, value in layer.items()}
        for layer in network["params"]
    )
    x = np.atleast_2d(np.asarray(network["x"], np.float64))
    y = np.atleast_2d(np.asarray(network["y"], np.float64))
    frozen = tuple(network.get("frozen", ()))
    return Step(spec, network["loss"], params, x, y, float(network["lr"]), frozen)


def answers(network: dict[str, Any], spec: MLP) -> dict[str, Any]:
    """Every quantity of the network's step, by the manual chain rule (:mod:`jaxbp.manual`'s
    arithmetic, replayed with no slip), under the names of the grading expressions."""
    return run(_step(network, spec))[0]


def network_json(network: dict[str, Any]) -> str:
    """A network-file object as text, one key a line (as ``jaxbp explain --write-network``)."""
    lines = [f"  {json.dumps(key)}: {json.dumps(value)}" for key, value in network.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"
