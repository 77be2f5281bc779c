"""Reading a checkpoint's payload safely: bounded members, checked arrays, checked metadata.

The payload is a zip archive of ``.npy`` members. :func:`read_members` accepts only stored
(uncompressed) members whose declared sizes fit in the payload, reads each ``.npy`` header before
its data and checks that the data is exactly as long as the header's shape and dtype say, refuses
any dtype other than bool, integers and floats, and any NaN or infinity. :func:`read_meta`
checks every field of the JSON metadata. :func:`flatten` and :func:`to_tree` name leaves by their
``jax.tree_util.keystr`` path and put them back into a template tree.
"""

from __future__ import annotations

import ast
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

MAX_MEMBERS = 100_000
MAX_META_BYTES = 64 * 2**20
DTYPE_KINDS = "biuf"
_KEY = re.compile(r"\[(\d+|'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")\]")


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not fit; nothing was changed."""


def flatten(prefix: str, tree: Any) -> dict[str, np.ndarray]:
    """``{prefix + keystr(path): leaf}`` for every leaf of ``tree`` (none for ``None``)."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {prefix + jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in leaves}


def take(members: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """Remove and return the members under ``prefix`` (``params`` takes ``params[0]['w']``)."""
    names = [n for n in members if n == prefix or n.startswith((prefix + "[", prefix + "."))]
    return {name: members.pop(name) for name in names}


def to_tree(path: Path, prefix: str, saved: dict[str, np.ndarray], template: Any) -> Any:
    """The saved leaves in ``template``'s structure, or rebuilt from list/dict paths (no template)."""
    if template is None:
        return _rebuild(path, prefix, saved)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    result = []
    for leaf_path, leaf in leaves:
        name = prefix + jax.tree_util.keystr(leaf_path)
        got = saved.get(name)
        want = f"{np.dtype(leaf.dtype)}{list(np.shape(leaf))}"
        if got is None or got.shape != tuple(np.shape(leaf)) or got.dtype != np.dtype(leaf.dtype):
            found = "missing" if got is None else f"{got.dtype}{list(got.shape)}"
            raise CheckpointError(f"{path}: {name} is {found} but the model needs {want}")
        result.append(got)
    extra = sorted(set(saved) - {prefix + jax.tree_util.keystr(p) for p, _ in leaves})
    if extra:
        raise CheckpointError(
            f"{path}: {extra[0]} is saved but the model has no such leaf ({len(extra)} extra); "
            f"resume with the model and optimizer that wrote the checkpoint"
        )
    return jax.tree_util.tree_unflatten(treedef, result)


def _rebuild(path: Path, prefix: str, saved: dict[str, np.ndarray]) -> Any:
    """Nested lists and dicts from paths such as ``[0]['w']``; ``None`` when nothing is saved."""
    if not saved:
        return None
    root: dict[Any, Any] = {}
    for name, leaf in saved.items():
        keys = _parse_keys(path, name, name[len(prefix) :])
        node = root
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise CheckpointError(f"{path}: {name} clashes with another member")
        if keys[-1] in node:
            raise CheckpointError(f"{path}: {name} clashes with another member")
        node[keys[-1]] = leaf
    return _lists(path, root)[()]


def _parse_keys(path: Path, name: str, rest: str) -> list[Any]:
    keys: list[Any] = [()]
    position = 0
    for match in _KEY.finditer(rest):
        if match.start() != position:
            break
        text = match.group(1)
        keys.append(int(text) if text.isdigit() else ast.literal_eval(text))
        position = match.end()
    if position != len(rest):
        raise CheckpointError(
            f"{path}: cannot rebuild {name} without a template; pass load(..., params=template)"
        )
    return keys


def _lists(path: Path, node: Any) -> Any:
    """Dicts whose keys are exactly 0..n-1 (ints) become lists."""
    if not isinstance(node, dict):
        return node
    node = {key: _lists(path, value) for key, value in node.items()}
    keys = list(node)
    if keys and all(isinstance(k, int) for k in keys):
        if sorted(keys) != list(range(len(keys))):
            raise CheckpointError(f"{path}: list indices {sorted(keys)[:5]} have gaps")
        return [node[i] for i in range(len(keys))]
    if any(isinstance(k, int) for k in keys) and keys != [()]:
        raise CheckpointError(f"{path}: a tree node mixes list indices and names")
    return node


def read_members(path: Path, payload: bytes) -> dict[str, np.ndarray]:
    """Every member of the payload as a checked array (see the module docstring)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise CheckpointError(f"{path}: the payload is not a readable archive ({error})") from None
    if len(infos) > MAX_MEMBERS:
        raise CheckpointError(f"{path}: {len(infos)} members; the limit is {MAX_MEMBERS}")
    members: dict[str, np.ndarray] = {}
    for info in infos:
        name = info.filename.removesuffix(".npy")
        if not info.filename.endswith(".npy") or name in members:
            raise CheckpointError(f"{path}: unexpected or repeated member {info.filename[:80]!r}")
        if info.compress_type != zipfile.ZIP_STORED:
            raise CheckpointError(
                f"{path}: member {name[:80]!r} is compressed; jaxbp writes uncompressed members "
                f"only, so no member can expand beyond the file's size"
            )
        if info.file_size != info.compress_size or info.file_size > len(payload):
            raise CheckpointError(f"{path}: member {name[:80]!r} declares a wrong size")
        members[name] = _read_array(path, archive, info, name)
    return members


def _read_array(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str):
    where = f"{path}: member {name[:80]!r}"
    try:
        with archive.open(info) as file:
            version = np.lib.format.read_magic(file)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(file)
            if dtype.kind not in DTYPE_KINDS or dtype.hasobject or dtype.fields:
                raise CheckpointError(f"{where} has dtype {dtype}; only numbers are read")
            count = int(np.prod(shape, dtype=object))
            remaining = info.file_size - file.tell()
            if count * dtype.itemsize != remaining:
                raise CheckpointError(
                    f"{where}: its header says {dtype}{list(shape)} ({count * dtype.itemsize} "
                    f"bytes) but it holds {remaining} bytes"
                )
            array = np.frombuffer(file.read(remaining), dtype)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        if isinstance(error, CheckpointError):
            raise
        raise CheckpointError(f"{where} is not a readable array ({error})") from None
    array = array.reshape(shape, order="F" if fortran else "C").copy()
    if name != "meta" and array.dtype.kind == "f" and not np.isfinite(array).all():
        raise CheckpointError(
            f"{where} holds {int((~np.isfinite(array)).sum())} NaN or infinite values; a "
            f"checkpoint keeps only finite state"
        )
    return array


def read_meta(path: Path, meta: np.ndarray | None, max_epoch: int, max_step: int) -> dict:
    """The checked metadata: ``epoch``, ``step`` (ints in range), ``config``, ``metrics`` (dicts),
    ``spec`` (an :class:`MLP`, a :class:`jaxbp.Sequential` or ``None``)."""
    if meta is None or meta.dtype != np.uint8 or meta.ndim != 1:
        raise CheckpointError(f"{path}: no readable meta member")
    if meta.size > MAX_META_BYTES:
        raise CheckpointError(
            f"{path}: meta is {meta.size:,} bytes; the limit is {MAX_META_BYTES:,}"
        )
    try:
        data = json.loads(meta.tobytes().decode())
    except (ValueError, RecursionError) as error:
        raise CheckpointError(f"{path}: meta is not readable JSON ({str(error)[:80]})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: meta is not a JSON object")
    for name, limit in (("epoch", max_epoch), ("step", max_step)):
        value = data.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
            raise CheckpointError(
                f"{path}: meta {name} is {str(value)[:30]}; expected an integer from 0 to {limit}"
            )
    for name in ("config", "metrics"):
        if not isinstance(data.get(name), dict):
            raise CheckpointError(f"{path}: meta {name} is not a JSON object")
    return data
