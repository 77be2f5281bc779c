"""Checkpoints: one self-checking file per save, written atomically, the last K kept.

A checkpoint file ``checkpoint-<epoch>.jaxbp`` (taken after ``epoch`` whole epochs), or
``checkpoint-<epoch>.s<step>.jaxbp`` (``step`` batches into the epoch after them), is::

    b"JAXBPCKPT\\n"                                              magic line
    {"format_version": 2, "payload_bytes": N, "payload_sha256": "..."}\\n   header line (JSON)
    N bytes of payload: an uncompressed .npz archive (no pickles)

The payload holds every array as one ``.npy`` member named by its place in its tree: ``params``
followed by the leaf's ``jax.tree_util.keystr`` path (``params[0]['w']``, ``params['conv']['b']``),
likewise ``opt_state[0].mu[0]['w']``; ``key`` (``jax.random.key_data``), ``arrays/<name>``, and
``meta``: UTF-8 JSON with the epoch, the step, the spec (or null), the config and the metrics. Any
params pytree and any optimizer state fit: :func:`load` puts the arrays back into a template tree
by path, so a renamed, missing or extra leaf is refused by name.

Nothing is trusted before it is checked, and every size is bounded before it is read: the file
size, the magic, the header, the payload length and SHA-256, then each member's declared size
(stored, never compressed, so no member can expand), its ``.npy`` header (shape and dtype against
the template; plain numeric dtypes only), finite values, and every field of ``meta``. Any problem
raises :class:`CheckpointError` with one line and changes no file. Writes go through
:func:`jaxbp.training.files.atomic_write`, so the previous checkpoint survives a crash at any moment.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import io
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxbp.layers import model_file
from jaxbp.layers.sequential import Sequential
from jaxbp.model.mlp import MLP
from jaxbp.training import checkpoint_format
from jaxbp.training import files as _files
from jaxbp.training.checkpoint_format import CheckpointError
from jaxbp.training.run_checks import MAX_STEPS

FORMAT_VERSION = 2
MAGIC = b"JAXBPCKPT\n"
SUFFIX = ".jaxbp"
#: The largest checkpoint file :func:`load` reads (pass ``max_bytes`` to change it).
MAX_FILE_BYTES = 2**30
MAX_EPOCH = 10**8 - 1  # eight digits in the file name
_NAME = re.compile(r"^checkpoint-(\d{8})(?:\.s(\d{10}))?\.jaxbp$")

__all__ = ("MAGIC", "Checkpoint", "CheckpointError", "list_checkpoints", "load", "path_for")


@dataclasses.dataclass
class Checkpoint:
    """Everything needed to continue a run exactly.

    ``params`` and ``opt_state`` are pytrees (``opt_state`` ``None`` for plain SGD); ``key`` is
    ``jax.random.key_data`` of the shuffling key; ``arrays`` holds extra named arrays (e.g. the
    feature scaling); ``spec`` is the MLP or the layer network (:class:`jaxbp.Sequential`) when the
    model is one (``None`` for another model).
    """

    params: Any
    opt_state: Any
    key: np.ndarray
    epoch: int
    step: int
    config: dict[str, Any]
    metrics: dict[str, Any]
    arrays: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    spec: MLP | Sequential | None = None


def path_for(directory: str | os.PathLike[str], epoch: int, step_in_epoch: int = 0) -> Path:
    """The file name of the checkpoint taken after ``epoch`` epochs and ``step_in_epoch`` batches
    of the next one; names sort in training order (see :func:`list_checkpoints`)."""
    inside = f".s{step_in_epoch:010d}" if step_in_epoch else ""
    return Path(directory) / f"checkpoint-{epoch:08d}{inside}{SUFFIX}"


def order_key(path: str | os.PathLike[str]) -> tuple[int, int]:
    """``(epoch, step in the epoch)`` of a checkpoint file name, to order checkpoints by."""
    match = _NAME.match(Path(path).name)
    if match is None:
        raise ValueError(f"{Path(path).name} is not a checkpoint file name")
    return int(match.group(1)), int(match.group(2) or 0)


def list_checkpoints(directory: str | os.PathLike[str]) -> list[Path]:
    """Checkpoint files in ``directory``, oldest (fewest steps) first."""
    directory = Path(directory)
    try:
        found = [(order_key(p), p) for p in directory.iterdir() if _NAME.match(p.name)]
    except OSError:  # not a folder, not there, a name too long: no checkpoints
        return []
    return [path for _, path in sorted(found)]


def _written_by_jaxbp(path: Path) -> bool:
    """Whether ``path`` is a regular file (not a link) that starts with the checkpoint header."""
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return False
        with path.open("rb") as file:
            return file.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


class NameTakenError(_files.WriteError, ValueError):
    """A file that is not a jaxbp checkpoint (a user's file, a symbolic link) has the name a
    checkpoint is to be saved under; nothing was written. An ``OSError`` (``EEXIST``), as any
    failed write, and a ``ValueError``."""

    def __init__(self, path: Path) -> None:
        reason = OSError(errno.EEXIST, "exists and is not a jaxbp checkpoint")
        super().__init__(path, 0, reason)

    def __str__(self) -> str:
        return (
            f"checkpoint.save: {self.filename} exists and is not a jaxbp checkpoint (not a "
            f"regular file starting with the JAXBPCKPT header); move it away or save into "
            f"another folder, so nothing was written"
        )


def save(
    directory: str | os.PathLike[str],
    checkpoint: Checkpoint,
    *,
    keep: int,
    step_in_epoch: int = 0,
) -> Path:
    """Write ``checkpoint`` atomically to ``directory``; then keep only the newest ``keep`` files.

    ``step_in_epoch``: the batches of epoch ``checkpoint.epoch`` already done (a checkpoint
    inside an epoch), which goes into the file name (:func:`path_for`).

    Raises:
        ValueError: an array holds a NaN or an infinity, or a file that is not a checkpoint
            has the name (nothing is written).
        jaxbp.training.files.WriteError: the file system refused the write; earlier files are intact.
    """
    check_position(checkpoint.epoch, checkpoint.step, step_in_epoch, keep)
    key = checkpoint.key
    if isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)  # a typed key is stored as its data, as load gives it
    arrays: dict[str, np.ndarray] = {"key": np.asarray(key)}
    arrays.update(checkpoint_format.flatten("params", checkpoint.params))
    arrays.update(checkpoint_format.flatten("opt_state", checkpoint.opt_state))
    for name, value in checkpoint.arrays.items():
        arrays[f"arrays/{name}"] = np.asarray(value)
    for name, array in arrays.items():
        if array.dtype.kind not in checkpoint_format.DTYPE_KINDS or array.dtype.fields:
            raise ValueError(
                f"checkpoint.save: {name} has dtype {array.dtype}, which load cannot read (plain "
                f"NumPy bool, int or float only; bfloat16 is not one): cast it, e.g. "
                f"jax.tree.map(lambda p: p.astype(jnp.float32), params), so nothing was written"
            )
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ValueError(
                f"checkpoint.save: {name} holds NaN or infinite values; a checkpoint keeps only "
                f"finite state (load would refuse it), so nothing was written"
            )
    meta = {
        "epoch": checkpoint.epoch,
        "step": checkpoint.step,
        "spec": None if checkpoint.spec is None else spec_to_json(checkpoint.spec),
        "config": checkpoint.config,
        "metrics": checkpoint.metrics,
    }
    meta_text = _meta_json(meta)
    target = path_for(directory, checkpoint.epoch, step_in_epoch)
    if os.path.lexists(target) and not _written_by_jaxbp(target):
        raise NameTakenError(target)
    arrays["meta"] = np.frombuffer(meta_text.encode(), np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    payload = buffer.getvalue()
    header = {
        "format_version": FORMAT_VERSION,
        "payload_bytes": len(payload),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }
    path = _files.atomic_write(
        target,
        MAGIC + json.dumps(header).encode() + b"\n" + payload,
    )
    for old in list_checkpoints(directory)[:-keep]:
        if old != path and _written_by_jaxbp(old):  # never a user's file that only has the name
            with contextlib.suppress(FileNotFoundError):
                old.unlink()
    _files.fsync_directory(directory)
    return path


def _meta_json(meta: dict[str, Any]) -> str:
    """``meta`` as JSON; a NumPy or JAX number (``np.float32(0.5)``, a 0-d array) is written as the
    Python number it holds, anything else JSON cannot hold is refused naming its type."""

    def number(value: Any) -> Any:
        if isinstance(value, np.generic | np.ndarray | jax.Array) and np.ndim(value) == 0:
            item = np.asarray(value).item()
            if isinstance(item, bool | int | float | str):
                return item
        raise TypeError(f"found a {type(value).__name__} ({value!r:.40})")

    try:
        return json.dumps(meta, default=number)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"checkpoint.save: config and metrics must be JSON (numbers, strings, bools, None, "
            f"lists, dicts with string keys); {error}: convert it (e.g. float(value)); nothing "
            f"was written"
        ) from None


def check_position(epoch: Any, step: Any, step_in_epoch: Any, keep: Any) -> None:
    """What a file name and :func:`load` can hold: epoch 0 to ``MAX_EPOCH``, step and step in
    the epoch 0 to ``MAX_STEPS``; and ``keep``, at least 1 file to keep."""
    for name, value, low, high in (
        ("epoch", epoch, 0, MAX_EPOCH),
        ("step", step, 0, MAX_STEPS),
        ("step_in_epoch", step_in_epoch, 0, MAX_STEPS),
        ("keep", keep, 1, None),
    ):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | np.integer)
            or value < low
            or (high is not None and value > high)
        ):
            bound = f"{low} to {high}" if high is not None else f">= {low}"
            raise ValueError(
                f"checkpoint.save: {name} must be an int {bound} (what a checkpoint's file name "
                f"and load hold), got {value!r}, so nothing was written"
            )


def resolve(location: str | os.PathLike[str]) -> Path:
    """A checkpoint file itself, or the newest checkpoint in a run directory."""
    location = Path(location)
    if location.is_file():
        return location
    if location.exists() and not location.is_dir():  # a named pipe, a device, a socket
        raise CheckpointError(f"{location}: not a regular file nor a directory; give a run directory or a checkpoint file")  # fmt: skip
    if not location.is_dir():
        raise CheckpointError(f"{location}: no such run directory or checkpoint file")
    found = list_checkpoints(location)
    if not found:
        raise CheckpointError(f"{location}: no checkpoint-*.jaxbp file in this directory")
    return found[-1]


def load(
    path: str | os.PathLike[str],
    *,
    params: Any = None,
    opt_state: Any = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> Checkpoint:
    """Read and verify one checkpoint file; raises :class:`CheckpointError` on any problem.

    Args:
        path: the checkpoint file.
        params: a template tree (arrays or ``jax.ShapeDtypeStruct``): the saved params are put
            into its structure by path, each leaf checked for shape and dtype. ``None``: the
            structure of the saved layer network (:class:`jaxbp.Sequential`), or else the tree
            rebuilt from the paths, which works for nested lists and dicts (an MLP's).
        opt_state: a template of the optimizer state (``optimizer.init(params)``), likewise.
            ``None``: ``opt_state`` is a dict from path to array (or ``None`` when empty).
        max_bytes: refuse a larger file before reading it.

    Returns:
        The :class:`Checkpoint`; every array is finite and of a plain numeric dtype.

    Raises:
        CheckpointError: one line naming the file and the problem.
    """
    path = Path(path)
    payload = _verified_payload(path, _read_file(path, max_bytes))
    members = checkpoint_format.read_members(path, payload)
    meta = checkpoint_format.read_meta(path, members.pop("meta", None), MAX_EPOCH, MAX_STEPS)
    named = _NAME.match(path.name)
    if named is not None and int(named.group(1)) != meta["epoch"]:  # the newest is found by name
        raise CheckpointError(
            f"{path}: its name says epoch {int(named.group(1))} but it holds the state after "
            f"epoch {meta['epoch']} (renamed or copied?); checkpoints are ordered by name, so it "
            f"would be taken for another: move it aside, or name it for its epoch "
            f"({path_for('', meta['epoch']).name})"
        )
    meta["spec"] = None if meta.get("spec") is None else spec_from_json(path, meta["spec"])
    key = _shuffling_key(path, members.pop("key", None))
    arrays = {name[7:]: members.pop(name) for name in list(members) if name.startswith("arrays/")}
    saved_params = checkpoint_format.take(members, "params")
    saved_state = checkpoint_format.take(members, "opt_state")
    if params is None and isinstance(meta["spec"], Sequential) and saved_params:
        params = _template(path, meta["spec"], next(iter(saved_params.values())).dtype)
    if members:
        raise CheckpointError(f"{path}: unexpected member {sorted(members)[0]!r}")
    return Checkpoint(
        params=checkpoint_format.to_tree(path, "params", saved_params, params),
        opt_state=(
            checkpoint_format.to_tree(path, "opt_state", saved_state, opt_state)
            if opt_state is not None
            else (saved_state or None)
        ),
        key=key,
        epoch=meta["epoch"],
        step=meta["step"],
        config=meta["config"],
        metrics=meta["metrics"],
        arrays=arrays,
        spec=meta["spec"],
    )


def _read_file(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, refused when it is not a regular file or larger than ``max_bytes``."""
    try:
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):  # a FIFO would block, /dev/zero never end
            raise CheckpointError(f"{path}: not a regular file")
        if status.st_size > max_bytes:
            raise CheckpointError(
                f"{path}: {status.st_size:,} bytes, more than the {max_bytes:,} a checkpoint may "
                f"have (load(..., max_bytes=...) raises the limit)"
            )
        with path.open("rb") as file:
            data = file.read(max_bytes + 1)
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read ({error.strerror or error})") from error
    if len(data) > max_bytes:
        raise CheckpointError(f"{path}: grew beyond {max_bytes:,} bytes while being read")
    return data


def _shuffling_key(path: Path, key: np.ndarray | None) -> np.ndarray:
    """The saved key data, refused unless it has the shape and dtype of ``jax.random.key``'s."""
    template_key = np.asarray(jax.random.key_data(jax.random.key(0)))
    if key is None or key.shape != template_key.shape or key.dtype != template_key.dtype:
        found = "missing" if key is None else f"{key.dtype}{list(key.shape)}"
        raise CheckpointError(
            f"{path}: the shuffling key is {found}; expected "
            f"{template_key.dtype}{list(template_key.shape)}"
        )
    return key


def _template(path: Path, spec: Sequential, dtype: np.dtype) -> Any:
    """The params structure a layer network's spec gives (its layers without parameters hold
    ``{}``, which paths alone cannot show), as shapes only."""
    if dtype.kind != "f":
        raise CheckpointError(f"{path}: params are {dtype}, not floating point")
    return jax.eval_shape(lambda: spec.init(jax.random.key(0), dtype))


def _verified_payload(path: Path, data: bytes) -> bytes:
    damaged = f"{path}: damaged checkpoint"
    if not data.startswith(MAGIC):
        raise CheckpointError(f"{path}: not a jaxbp checkpoint (no {MAGIC[:-1].decode()} header)")
    end = data.find(b"\n", len(MAGIC), len(MAGIC) + 1024)
    try:
        if end < 0:
            raise ValueError("no header line")
        header = json.loads(data[len(MAGIC) : end])
        version, size, digest = (
            header["format_version"],
            header["payload_bytes"],
            header["payload_sha256"],
        )
    except (ValueError, KeyError, TypeError, RecursionError):
        raise CheckpointError(f"{damaged} (unreadable header)") from None
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {str(version)[:20]}, but this jaxbp reads version "
            f"{FORMAT_VERSION}; use the jaxbp release that wrote it"
        )
    payload = data[end + 1 :]
    if not isinstance(size, int) or isinstance(size, bool) or len(payload) != size:
        raise CheckpointError(
            f"{damaged} (truncated: {len(payload)} of {size!s:.20} payload bytes)"
        )
    if hashlib.sha256(payload).hexdigest() != digest:
        raise CheckpointError(f"{damaged} (SHA-256 checksum mismatch)")
    return payload


def _describe(spec: MLP | Sequential) -> str:
    if isinstance(spec, Sequential):
        return f"{len(spec.layers)}-layer {'-'.join(type(layer).__name__ for layer in spec.layers)}"
    return f"{'-'.join(map(str, spec.sizes))} ({', '.join(spec.activations)})"


def check_spec(path: Path, saved: Checkpoint, spec: MLP | Sequential) -> None:
    """Refuse a checkpoint whose architecture is not ``spec``."""
    if saved.spec != spec:
        held = "no known" if saved.spec is None else f"a {_describe(saved.spec)}"
        raise CheckpointError(
            f"{path}: the checkpoint holds {held} network but a {_describe(spec)} network was "
            f"asked for; resume with the checkpoint's settings"
        )


def spec_to_json(spec: MLP | Sequential) -> dict[str, Any]:
    """An MLP as its fields; a layer network as its model description (:mod:`jaxbp.layers.model_file`)."""
    if isinstance(spec, Sequential):
        return model_file.to_dict(spec)
    return {
        "sizes": list(spec.sizes),
        "activations": list(spec.activations),
        "bias": spec.bias if isinstance(spec.bias, bool) else list(spec.bias),
        "init_scheme": spec.init_scheme if spec.init_scheme is None else list(spec.init_scheme),
    }


def spec_from_json(path: Path, data: Any) -> MLP | Sequential:
    """The MLP or layer network of a saved spec, refused with one line when any field is wrong."""
    if isinstance(data, dict) and "layers" in data:
        try:
            return model_file.from_dict(data, where="meta spec")
        except (model_file.ModelFileError, RecursionError) as error:
            raise CheckpointError(f"{path}: {str(error)[:200]}") from None
    try:
        bias = data["bias"] if isinstance(data["bias"], bool) else tuple(data["bias"])
        scheme = data["init_scheme"]
        scheme = scheme if scheme is None else tuple(scheme)
        return MLP(tuple(data["sizes"]), tuple(data["activations"]), bias, scheme)
    except (KeyError, TypeError, ValueError, RecursionError) as error:
        raise CheckpointError(
            f"{path}: meta spec is not a valid MLP ({str(error)[:120]})"
        ) from None
