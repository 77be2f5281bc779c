"""Checkpoints: one self-checking file per save, written atomically, the last K kept.

A checkpoint file ``checkpoint-<epoch>.jaxbp`` is::

    b"JAXBPCKPT\\n"                                              magic line
    {"format_version": 1, "payload_bytes": N, "payload_sha256": "..."}\\n   header line (JSON)
    N bytes of payload: an uncompressed .npz archive (no pickles)

The payload holds every array by name (``params/<layer>/<w|b>``, ``opt_state/<i>``, ``key``) and a
``meta`` array with UTF-8 JSON (epoch, step, the spec, the training config, metrics so far). A
file is only trusted when its magic, header, length and SHA-256 all agree; anything else raises
:class:`CheckpointError` without changing a file. Writes go through :func:`jaxbp._files.atomic_write`,
so the previous checkpoint survives a crash at any moment; older files beyond ``keep`` are removed
only after the new one is durable.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxbp import _files
from jaxbp._types import Params
from jaxbp.mlp import MLP

FORMAT_VERSION = 1
MAGIC = b"JAXBPCKPT\n"
SUFFIX = ".jaxbp"
_NAME = re.compile(r"^checkpoint-(\d+)\.jaxbp$")


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not fit; nothing was changed."""


@dataclasses.dataclass
class Checkpoint:
    """Everything needed to continue a run exactly.

    ``opt_state`` holds the optimizer state's leaves in ``jax.tree.leaves`` order (the structure
    comes back from ``optimizer.init(params)``); ``key`` is ``jax.random.key_data`` of the
    shuffling key; ``arrays`` holds extra named arrays (e.g. feature scaling).
    """

    spec: MLP
    params: Params
    opt_state: list[np.ndarray]
    key: np.ndarray
    epoch: int
    step: int
    config: dict[str, Any]
    metrics: dict[str, Any]
    arrays: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


def path_for(directory: str | os.PathLike[str], epoch: int) -> Path:
    """The file name of the checkpoint taken after ``epoch`` epochs."""
    return Path(directory) / f"checkpoint-{epoch:08d}{SUFFIX}"


def list_checkpoints(directory: str | os.PathLike[str]) -> list[Path]:
    """Checkpoint files in ``directory``, oldest (fewest epochs) first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return [path for _, path in sorted(found)]


def save(directory: str | os.PathLike[str], checkpoint: Checkpoint, *, keep: int) -> Path:
    """Write ``checkpoint`` atomically to ``directory``; then keep only the newest ``keep`` files."""
    arrays: dict[str, np.ndarray] = {"key": np.asarray(checkpoint.key)}
    for i, layer in enumerate(checkpoint.params):
        for name, leaf in layer.items():
            arrays[f"params/{i}/{name}"] = np.asarray(leaf)
    for i, leaf in enumerate(checkpoint.opt_state):
        arrays[f"opt_state/{i}"] = np.asarray(leaf)
    for name, value in checkpoint.arrays.items():
        arrays[f"arrays/{name}"] = np.asarray(value)
    meta = {
        "epoch": checkpoint.epoch,
        "step": checkpoint.step,
        "spec": _spec_to_json(checkpoint.spec),
        "num_opt_state": len(checkpoint.opt_state),
        "config": checkpoint.config,
        "metrics": checkpoint.metrics,
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    payload = buffer.getvalue()
    header = {
        "format_version": FORMAT_VERSION,
        "payload_bytes": len(payload),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }
    path = _files.atomic_write(
        path_for(directory, checkpoint.epoch),
        MAGIC + json.dumps(header).encode() + b"\n" + payload,
    )
    for old in list_checkpoints(directory)[:-keep]:
        old.unlink()
    _files.fsync_directory(directory)
    return path


def resolve(location: str | os.PathLike[str]) -> Path:
    """A checkpoint file itself, or the newest checkpoint in a run directory."""
    location = Path(location)
    if location.is_file():
        return location
    if not location.is_dir():
        raise CheckpointError(f"{location}: no such run directory or checkpoint file")
    found = list_checkpoints(location)
    if not found:
        raise CheckpointError(f"{location}: no checkpoint-*.jaxbp file in this directory")
    return found[-1]


def load(path: str | os.PathLike[str]) -> Checkpoint:
    """Read and verify one checkpoint file; raises :class:`CheckpointError` on any damage."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read ({error.strerror or error})") from error
    payload = _verified_payload(path, data)
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode())
        spec = _spec_from_json(meta["spec"])
        params = [
            {
                name: arrays[f"params/{i}/{name}"]
                for name in ("w", "b")
                if f"params/{i}/{name}" in arrays
            }
            for i in range(spec.num_layers)
        ]
        opt_state = [arrays[f"opt_state/{i}"] for i in range(meta["num_opt_state"])]
        extra = {name[7:]: value for name, value in arrays.items() if name.startswith("arrays/")}
        return Checkpoint(
            spec, params, opt_state, arrays["key"], int(meta["epoch"]), int(meta["step"]),
            meta["config"], meta["metrics"], extra,
        )  # fmt: skip
    except (KeyError, ValueError, TypeError) as error:
        raise CheckpointError(
            f"{path}: checksum fine but the contents are malformed ({error})"
        ) from error


def _verified_payload(path: Path, data: bytes) -> bytes:
    damaged = f"{path}: damaged checkpoint"
    if not data.startswith(MAGIC):
        raise CheckpointError(f"{path}: not a jaxbp checkpoint (no {MAGIC[:-1].decode()} header)")
    end = data.find(b"\n", len(MAGIC))
    try:
        header = json.loads(data[len(MAGIC) : end])
        version, size, digest = (
            header["format_version"],
            header["payload_bytes"],
            header["payload_sha256"],
        )
    except (ValueError, KeyError, TypeError):
        raise CheckpointError(f"{damaged} (unreadable header)") from None
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version}, but this jaxbp reads version "
            f"{FORMAT_VERSION}; use the jaxbp release that wrote it"
        )
    payload = data[end + 1 :]
    if len(payload) != size:
        raise CheckpointError(f"{damaged} (truncated: {len(payload)} of {size} payload bytes)")
    if hashlib.sha256(payload).hexdigest() != digest:
        raise CheckpointError(f"{damaged} (SHA-256 checksum mismatch)")
    return payload


def check_compatible(path: Path, checkpoint: Checkpoint, spec: MLP, params: Params) -> None:
    """Check the checkpoint's architecture and every leaf's shape and dtype against a fresh model."""
    if checkpoint.spec != spec:
        raise CheckpointError(
            f"{path}: the checkpoint holds a {_describe(checkpoint.spec)} network but a "
            f"{_describe(spec)} network was asked for; resume with the checkpoint's settings"
        )
    for i, (saved, fresh) in enumerate(zip(checkpoint.params, params, strict=True)):
        for name in fresh:
            got, want = saved.get(name), fresh[name]
            if got is None or got.shape != want.shape or got.dtype != want.dtype:
                found = "missing" if got is None else f"{got.dtype}{list(got.shape)}"
                raise CheckpointError(
                    f"{path}: params[{i}][{name!r}] is {found} but the model needs "
                    f"{want.dtype}{list(want.shape)}"
                )


def restore_opt_state(path: Path, checkpoint: Checkpoint, template: Any) -> Any:
    """Put the saved optimizer-state leaves into the structure of ``template`` (a fresh init)."""
    leaves, treedef = jax.tree.flatten(template)
    saved = checkpoint.opt_state
    if len(saved) != len(leaves) or any(
        np.shape(a) != np.shape(b) or np.asarray(a).dtype != np.asarray(b).dtype
        for a, b in zip(saved, leaves, strict=False)
    ):
        raise CheckpointError(
            f"{path}: the saved optimizer state ({len(saved)} arrays) does not fit the "
            f"optimizer's ({len(leaves)} arrays); resume with the checkpoint's --optimizer"
        )
    return jax.tree.unflatten(treedef, [jax.numpy.asarray(leaf) for leaf in saved])


def _describe(spec: MLP) -> str:
    return f"{'-'.join(map(str, spec.sizes))} ({', '.join(spec.activations)})"


def _spec_to_json(spec: MLP) -> dict[str, Any]:
    return {
        "sizes": list(spec.sizes),
        "activations": list(spec.activations),
        "bias": spec.bias if isinstance(spec.bias, bool) else list(spec.bias),
        "init_scheme": spec.init_scheme if spec.init_scheme is None else list(spec.init_scheme),
    }


def _spec_from_json(data: dict[str, Any]) -> MLP:
    bias = data["bias"] if isinstance(data["bias"], bool) else tuple(data["bias"])
    scheme = data["init_scheme"] if data["init_scheme"] is None else tuple(data["init_scheme"])
    return MLP(tuple(data["sizes"]), tuple(data["activations"]), bias, scheme)
