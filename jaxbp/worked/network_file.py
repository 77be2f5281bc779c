"""A user's network as a JSON file for ``jaxbp explain --network FILE``: read and validated.

The file is one JSON object::

    {
      "sizes": [2, 2, 1],                    # units per layer, input first
      "activations": ["relu", "linear"],      # one per layer, names in jaxbp.ACTIVATIONS
      "bias": false,                          # optional (default true): a bool or one per layer
      "params": [{"w": [[0.12, 0.15], [0.33, 0.09]]}, {"w": [[0.11], [0.12]]}],
      "x": [[2, 3]],                          # (batch, sizes[0]) or (sizes[0],)
      "y": [[1]],                             # (batch, sizes[-1]) or (sizes[-1],)
      "loss": "half_se",                      # a name in jaxbp.LOSSES
      "lr": 0.05,                             # SGD learning rate > 0
      "units": ["i", "h", "o"],               # optional: one letter per layer, the documents' notation
      "name": "my network",                   # optional title
      "frozen": ["b1", "b2"]                  # optional: parameters that take no update
    }

``params[l - 1]`` is ``{"w": (fan_in, fan_out), "b": (fan_out,)}``, the layout of ``MLP.init``.
Every problem raises :class:`NetworkFileError` with the file name, the key, what was expected and
what came, before anything is computed.

``jaxbp explain`` prints every number of the step, so a network file is limited to what is worth
printing: at most ``MAX_UNITS`` units per layer, ``MAX_LAYERS`` layers and ``MAX_EXAMPLES``
examples, in a file of at most ``MAX_BYTES`` nested at most ``MAX_NESTING`` deep (a network file
needs 5); each limit is checked before the part it guards is read.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxbp.model import checks as _checks
from jaxbp.model.losses import LOSSES
from jaxbp.model.mlp import MLP
from jaxbp.worked._read import read_bounded
from jaxbp.worked.names import UNIT_NAME, check_frozen
from jaxbp.worked.shown import MAX_SHOWN, printable

if TYPE_CHECKING:
    from jaxbp.worked.grading import WorkedExample

REQUIRED = {
    "sizes": "units per layer, input first, e.g. [2, 2, 1]",
    "activations": 'one name per layer, e.g. ["relu", "linear"]',
    "params": 'one {"w": ..., "b": ...} object per layer',
    "x": "the input, e.g. [[2, 3]]",
    "y": "the target, e.g. [[1]]",
    "loss": 'a loss name, e.g. "half_se"',
    "lr": "the SGD learning rate, e.g. 0.1",
}
OPTIONAL = ("bias", "units", "name", "frozen")
MAX_BYTES = 1_000_000
MAX_NESTING = 8
MAX_UNITS = 16
MAX_LAYERS = 6
MAX_EXAMPLES = 16
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


class NetworkFileError(ValueError):
    """A network file that cannot be used; the message says where and how to fix it."""


@dataclasses.dataclass(frozen=True)
class NetworkFile:
    """A validated network file, ready for :func:`jaxbp.worked.trace.explain`."""

    name: str
    spec: MLP
    params: list[dict[str, np.ndarray]]
    x: np.ndarray
    y: np.ndarray
    loss: str
    learning_rate: float
    units: tuple[str, ...] | None
    frozen: tuple[str, ...] = ()


def load(path: str | Path) -> NetworkFile:
    """Read and validate a network file.

    Raises:
        NetworkFileError: on a missing file, invalid JSON, or any problem :func:`parse` finds.
    """
    return parse(read(path), where=str(path))


def read(path: str | Path) -> Any:
    """The decoded JSON of a network file, within the size and nesting limits.

    Raises:
        NetworkFileError: on a missing file, a binary file, a file over the limits, invalid JSON.
    """
    path = Path(path)
    raw = read_bounded(path, MAX_BYTES, NetworkFileError, "network file")
    if len(raw) > MAX_BYTES:
        raise NetworkFileError(
            f"{path} is larger than {MAX_BYTES:,} bytes; a network file for jaxbp explain holds "
            f"at most {MAX_UNITS} units per layer."
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise NetworkFileError(
            f"{path} is not a UTF-8 text file; a network file is JSON text "
            "(write one with jaxbp explain EXAMPLE --write-network FILE.json)."
        ) from None
    depth = _nesting(text)
    if depth > MAX_NESTING:
        raise NetworkFileError(
            f"{path}: brackets nested {depth} deep; a network file needs 5 at most "
            f"(limit {MAX_NESTING})."
        )
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as error:
        raise NetworkFileError(
            f"{path} is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}."
        ) from None
    except ValueError as error:  # a duplicate key, or an integer of thousands of digits
        reason = (
            str(error)
            if str(error).startswith("the key")
            else ("a number too long to read (over 4300 digits); write numbers like 0.1.")
        )
        raise NetworkFileError(f"{path}: {reason}") from None
    return data


def _check_keys(
    data: dict[str, Any],
    where: str,
    required: dict[str, str],
    optional: Any,
    kind: str,
    unknown_note: str = "",
) -> None:
    """Refuse an unknown key (naming the closest valid one) or a missing required one."""
    for key in data:
        if key not in required and key not in optional:
            valid = [*required, *optional]
            close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise NetworkFileError(
                f"{where}: unknown key {_short(key)}{hint}{unknown_note}; valid keys are "
                f"{', '.join(valid)}."
            )
    for key, meaning in required.items():
        if key not in data:
            raise NetworkFileError(
                f"{where}: missing key {key!r} ({meaning}); a {kind} needs {', '.join(required)}."
            )


def _check_example_counts(data: dict[str, Any], where: str) -> None:
    """Refuse more than MAX_EXAMPLES examples in x or y."""
    for key in ("x", "y"):
        if isinstance(data[key], list) and len(data[key]) > MAX_EXAMPLES:
            raise NetworkFileError(
                f"{where}: {key} holds {len(data[key])} examples; jaxbp explain prints every "
                f"number of the step for at most {MAX_EXAMPLES} examples."
            )


def parse(data: Any, where: str = "network") -> NetworkFile:
    """Validate the decoded JSON object of a network file (see the module docstring)."""
    if not isinstance(data, dict):
        raise NetworkFileError(f"{where}: expected a JSON object {{...}}, got {_kind(data)}.")
    _check_keys(data, where, REQUIRED, OPTIONAL, "network file")
    spec = _spec(data, where)
    _check_example_counts(data, where)
    params = _params(data["params"], spec, where)
    try:
        x = _checks.check_input(where, spec, _numeric(data["x"], "x", where))
        y = _checks.check_target(where, spec, x, _numeric(data["y"], "y", where))
        loss = _checks.check_name(where, "loss", data["loss"], LOSSES)
        if isinstance(data["lr"], bool) or not isinstance(data["lr"], int | float):
            raise NetworkFileError(
                f"{where}: lr must be a number like 0.1, got {_short(data['lr'])}."
            )
        _checks.check_learning_rate(where, data["lr"])
        frozen = check_frozen(where, spec, _names(data.get("frozen", []), "frozen", where))
    except (ValueError, TypeError) as error:
        raise NetworkFileError(str(error)) from None
    return NetworkFile(
        name=title_of(data, where),
        spec=spec,
        params=params,
        x=np.asarray(x),
        y=np.asarray(y),
        loss=loss,
        learning_rate=float(data["lr"]),
        units=_units(data.get("units"), spec, where),
        frozen=frozen,
    )


def title_of(data: dict[str, Any], where: str) -> str:
    """The file's ``name`` (default: the file's stem), made safe to print
    (:func:`jaxbp.worked.shown.printable`).

    Raises:
        NetworkFileError: when ``name`` is not text.
    """
    name = data.get("name", Path(where).stem)
    if not isinstance(name, str):
        raise NetworkFileError(f'{where}: name must be text like "my network", got {_kind(name)}.')
    return printable(name, MAX_SHOWN)


def _names(value: Any, key: str, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise NetworkFileError(
            f'{where}: {key} must be a list of parameter names like ["b1", "b2"], got {_short(value)}.'
        )
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    for key in keys:
        if keys.count(key) > 1:
            raise ValueError(f"the key {_short(key)} appears twice in one object; keep one.")
    return dict(pairs)


def _nesting(text: str) -> int:
    """The deepest nesting of ``[`` and ``{`` outside JSON strings, without recursion."""
    depth = deepest = 0
    for char in _STRING.sub('""', text):
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), repr(value)
    )


def _spec(data: dict[str, Any], where: str) -> MLP:
    sizes, activations = data["sizes"], data["activations"]
    if not isinstance(sizes, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sizes
    ):
        raise NetworkFileError(
            f"{where}: sizes must be a list of positive integers like [2, 2, 1], got {_short(sizes)}."
        )
    if not isinstance(activations, list) or not all(isinstance(a, str) for a in activations):
        raise NetworkFileError(
            f'{where}: activations must be a list of names like ["relu", "linear"], '
            f"got {_short(activations)}."
        )
    if len(sizes) - 1 > MAX_LAYERS or max(sizes, default=0) > MAX_UNITS:
        raise NetworkFileError(
            f"{where}: sizes {_short(sizes)} is larger than jaxbp explain prints: at most "
            f"{MAX_UNITS} units per layer and {MAX_LAYERS} layers (every number of the step is "
            "shown); train larger networks with jaxbp train."
        )
    bias = data.get("bias", True)
    if isinstance(bias, list):
        bias = tuple(bias)
    elif not isinstance(bias, bool):
        raise NetworkFileError(
            f"{where}: bias must be true, false or one of them per layer, got {_short(bias)}."
        )
    try:
        return MLP(sizes=tuple(sizes), activations=tuple(activations), bias=bias)
    except (ValueError, TypeError) as error:
        raise NetworkFileError(f"{where}: {str(error).removeprefix('MLP: ')}") from None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _numeric(value: Any, name: str, where: str) -> np.ndarray:
    """A nested list of numbers as a float64 array; names the first entry that is not a number."""

    def walk(item: Any, path: str) -> None:
        if isinstance(item, list):
            for index, entry in enumerate(item):
                walk(entry, f"{path}[{index}]")
        elif isinstance(item, bool) or not isinstance(item, int | float):
            raise NetworkFileError(f"{where}: {path} is {_short(item)}, not a number.")
        elif not math.isfinite(item):
            raise NetworkFileError(f"{where}: {path} is {item!r}; use finite numbers.")

    walk(value, name)
    try:
        return np.asarray(value, np.float64)
    except ValueError:
        raise NetworkFileError(
            f"{where}: {name} is not a rectangular array (its rows have different lengths)."
        ) from None


def _params(value: Any, spec: MLP, where: str) -> list[dict[str, np.ndarray]]:
    if not isinstance(value, list):
        raise NetworkFileError(
            f'{where}: params must be a list with one {{"w": ..., "b": ...}} object per layer, '
            f"got {_kind(value)}."
        )
    params = []
    for index, layer in enumerate(value):
        if not isinstance(layer, dict):
            raise NetworkFileError(
                f'{where}: params[{index}] must be an object {{"w": ..., "b": ...}}, '
                f"got {_kind(layer)}."
            )
        params.append(
            {
                key: _numeric(entry, f'params[{index}]["{key}"]', where)
                for key, entry in layer.items()
            }
        )
    try:
        _checks.check_params(where, spec, params)
    except (ValueError, TypeError) as error:
        raise NetworkFileError(str(error)) from None
    return params


def _units(value: Any, spec: MLP, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) != len(spec.sizes)
        or not all(isinstance(u, str) and UNIT_NAME.fullmatch(u) for u in value)
    ):
        raise NetworkFileError(
            f"{where}: units must be a list of {len(spec.sizes)} names (one per layer of units, "
            f'input first, e.g. ["i", "h", "o"]; a letter and up to 7 letters, digits or _), '
            f"got {_short(value)}."
        )
    return tuple(value)


def from_example(example: WorkedExample) -> dict[str, Any]:
    """A built-in worked example as a network-file object (a starting point to edit)."""
    biases = example.biases or [None] * len(example.weights)
    return {
        "name": example.name,
        "sizes": list(example.sizes),
        "activations": list(example.activations),
        "bias": example.bias,
        "params": [
            {"w": [list(row) for row in w]} | ({} if b is None else {"b": list(b)})
            for w, b in zip(example.weights, biases, strict=True)
        ],
        "x": [list(row) for row in example.x],
        "y": [list(row) for row in example.y],
        "loss": example.loss,
        "lr": example.learning_rate,
    }
