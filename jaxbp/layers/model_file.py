"""A network description as JSON: write a :class:`jaxbp.Sequential` to a file and read it back.

The file is one JSON object; each layer is an object with ``"type"`` (the layer's class name) and
that layer's arguments, a residual block lists its own layers::

    {
      "input_shape": [40],
      "layers": [
        {"type": "Reshape", "shape": [40, 1]},
        {"type": "Conv1D", "features": 25, "kernel_size": 5, "stride": 2, "padding": 1,
         "activation": "relu"},
        {"type": "Residual", "layers": [{"type": "Conv1D", "features": 25, "kernel_size": 3,
                                          "padding": "SAME", "activation": "relu"}]},
        {"type": "Flatten"},
        {"type": "Dense", "features": 10}
      ],
      "conv_impl": "auto"
    }

Arguments left out take the layer's defaults. Only the architecture is stored; parameters are
data (save them with :mod:`jaxbp.training.checkpoint`). Every problem raises :class:`ModelFileError`
naming the file and the layer.
"""

from __future__ import annotations

import dataclasses
import json
import stat
from pathlib import Path
from typing import Any

from jaxbp.layers import specs
from jaxbp.layers.sequential import Sequential
from jaxbp.training import files as _files

LAYERS = {layer_type.__name__: layer_type for layer_type in specs.LAYER_TYPES}
#: The deepest nesting of residual blocks a description may have: building, initialising and
#: running a network recurse once per level, within Python's recursion limit.
MAX_RESIDUAL_DEPTH = 100
#: The largest model description file read (a description is a few KiB).
MAX_FILE_BYTES = 2**20


class ModelFileError(ValueError):
    """A model description that cannot be used; the message says where and how to fix it."""


def to_dict(spec: Sequential) -> dict[str, Any]:
    """The JSON-ready description of ``spec`` (every argument written out).

    Example:
        >>> from jaxbp.layers import Dense, Flatten, Sequential
        >>> to_dict(Sequential(layers=(Flatten(), Dense(3)), input_shape=(2, 2)))["layers"][1]
        {'type': 'Dense', 'features': 3, 'activation': 'linear', 'bias': True, 'init_scheme': None}
    """
    return {
        "input_shape": list(spec.input_shape),
        "layers": [_layer_to_dict(layer) for layer in spec.layers],
        "conv_impl": spec.conv_impl,
    }


def _layer_to_dict(layer: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": type(layer).__name__}
    for field in dataclasses.fields(layer):
        value = getattr(layer, field.name)
        if isinstance(layer, specs.Residual):
            value = [_layer_to_dict(sub) for sub in value]
        entry[field.name] = json.loads(json.dumps(value))  # tuples become lists
    return entry


def from_dict(data: Any, where: str = "model") -> Sequential:
    """The network a description describes.

    Raises:
        ModelFileError: on a missing or unknown key, an unknown layer type, a bad argument, or
            shapes that do not fit (the message names the layer).
    """
    if not isinstance(data, dict):
        raise ModelFileError(f"{where}: expected a JSON object {{...}}, got {type(data).__name__}.")
    unknown = set(data) - {"input_shape", "layers", "conv_impl"}
    if unknown or "input_shape" not in data or "layers" not in data:
        raise ModelFileError(
            f"{where}: a model description has keys input_shape, layers and optionally "
            f"conv_impl; got {sorted(data)}."
        )
    layers = _layers(data["layers"], f"{where}: layers")
    try:
        return Sequential(
            layers=layers,
            input_shape=_tuple(data["input_shape"]),
            conv_impl=data.get("conv_impl", "auto"),
        )
    except (ValueError, TypeError) as error:
        raise ModelFileError(f"{where}: {error}") from None


def _tuple(value: Any) -> Any:
    """JSON lists as tuples, nested (padding pairs), so specs stay hashable."""
    return tuple(_tuple(v) for v in value) if isinstance(value, list) else value


def _layers(value: Any, where: str, depth: int = 0) -> tuple[Any, ...]:
    if depth > MAX_RESIDUAL_DEPTH:
        outermost = where.split(".layers")[0]  # the path would repeat .layers a hundred times
        raise ModelFileError(
            f"{outermost}: residual blocks nested too deeply, more than {MAX_RESIDUAL_DEPTH} "
            f"levels; put blocks one after another rather than inside each other"
        )
    if not isinstance(value, list) or not value:
        raise ModelFileError(f"{where} must be a non-empty list of layer objects, got {value!r}.")
    layers = []
    for index, entry in enumerate(value):
        label = f"{where}[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str) or entry["type"] not in LAYERS:  # fmt: skip
            got = entry.get("type") if isinstance(entry, dict) else entry
            raise ModelFileError(
                f'{label}: expected an object with "type" one of {", ".join(sorted(LAYERS))}, '
                f"got {got!r}."
            )
        layer_type = LAYERS[entry["type"]]
        arguments = {key: _tuple(v) for key, v in entry.items() if key != "type"}
        valid = [field.name for field in dataclasses.fields(layer_type)]
        for key in arguments:
            if key not in valid:
                raise ModelFileError(
                    f"{label}: {entry['type']} has no argument {key!r}; valid: {', '.join(valid)}."
                )
        if layer_type is specs.Residual and isinstance(entry.get("layers"), list):
            arguments["layers"] = _layers(entry["layers"], f"{label}.layers", depth + 1)
        try:
            layers.append(layer_type(**arguments))
        except (ValueError, TypeError) as error:
            raise ModelFileError(f"{label}: {error}") from None
    return tuple(layers)


def save(path: str | Path, spec: Sequential) -> None:
    """Write ``spec``'s description to ``path`` as indented JSON, atomically: a file already at
    ``path`` is replaced whole or, when the write fails, left as it was.

    Raises:
        jaxbp.training.files.WriteError: the file system refused the write.
    """
    _files.atomic_write(path, (json.dumps(to_dict(spec), indent=2) + "\n").encode())


def load(path: str | Path) -> Sequential:
    """Read a model description file.

    Raises:
        ModelFileError: on a missing file, invalid JSON, JSON nested too deeply for Python, or
            any problem :func:`from_dict` finds.
    """
    path = Path(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ModelFileError(f"{path} is not a regular file; pass a .json model description.")
        if info.st_size > MAX_FILE_BYTES:
            raise ModelFileError(
                f"{path} has {info.st_size:,} bytes; a model description is a few KiB of JSON "
                f"(at most {MAX_FILE_BYTES:,} bytes)."
            )
        text = path.read_bytes()[: MAX_FILE_BYTES + 1].decode("utf-8-sig")  # a BOM is allowed
    except OSError as error:
        raise ModelFileError(f"cannot read model file {path}: {error.strerror}.") from None
    except UnicodeDecodeError as error:
        raise ModelFileError(
            f"{path} is not UTF-8 text (byte {error.start}); pass a .json model description."
        ) from None
    try:
        data = json.loads(
            text, parse_constant=_no_constant, parse_int=_int, object_pairs_hook=_unique_keys
        )
    except json.JSONDecodeError as error:
        raise ModelFileError(
            f"{path} is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}."
        ) from None
    except ValueError as error:  # a NaN, a repeated key, an int of thousands of digits
        raise ModelFileError(f"{path}: {error}") from None
    except RecursionError:  # Python's json decoder recurses once per nested list or object
        raise ModelFileError(
            f"{path}: nested too deeply for Python's JSON reader; a model description nests "
            f"residual blocks a few hundred deep at most"
        ) from None
    return from_dict(data, where=str(path))


def _no_constant(name: str) -> Any:
    """``NaN``, ``Infinity``, ``-Infinity``: Python's json reads them, JSON has no such value."""
    raise ValueError(f"{name} is not a JSON value; every number in a model file is finite")


def _int(digits: str) -> int:
    """An int of at most 30 digits: far past any size, and Python refuses thousands of digits."""
    if len(digits.lstrip("-")) > 30:
        raise ValueError(
            f"an integer of {len(digits.lstrip('-'))} digits; sizes are at most 2,147,483,647"
        )
    return int(digits)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different (json keeps the last of a repeated key)."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"the key {key!r} appears twice in one object; keep one")
        seen[key] = value
    return seen
