"""The output folder of ``jaxbp train``: a run writes only into a folder that is new or its own.

A run folder holds a marker file, :data:`MARKER`, that identifies it as a jaxbp run. Before
anything is written, :func:`check` refuses a folder that exists, is not empty and has no marker
(someone else's files: a ``metrics.json`` or ``curves.png`` there is never overwritten), unless it
holds only files a run writes, a checkpoint among them (a run copied without its marker), and
:func:`default_for` keeps the default folder ``runs/<name>`` inside ``runs/`` whatever the data
file is called. :func:`claim` then creates the folder and the marker and holds an exclusive
``fcntl.flock`` on the marker for the life of the process: a second run into the same folder is
refused, and since the operating system drops the lock when a process ends, however it ends, a
crashed run never leaves the folder locked. Holding the lock, it removes temporary files that a
write cut short (a kill during a checkpoint write) left behind: only names of the form
``.<file jaxbp writes>.<random>.tmp``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import re
from pathlib import Path

try:
    import fcntl
except ModuleNotFoundError:  # Windows: no advisory locks; one run per folder is not enforced
    fcntl = None  # type: ignore[assignment]

MARKER = ".jaxbp-run"
_MARKER_TEXT = json.dumps({"jaxbp": "run folder", "format_version": 1}) + "\n"
_MAX_MARKER_BYTES = 4096
#: Temporary files of jaxbp.training.files.atomic_write for the files a run writes (mkstemp's suffix).
TEMPORARY = re.compile(
    r"^\.(checkpoint-\d{8}\.jaxbp|metrics\.json|curves\.png|last_finite_params\.npz)"
    r"\.[A-Za-z0-9_]{1,32}\.tmp$"
)


class FolderError(ValueError):
    """The folder cannot take this run; ``errno`` is set when the file system refused a write."""

    def __init__(self, message: str, errno_value: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno_value


@dataclasses.dataclass
class Claim:
    """A claimed run folder; the lock lasts while the process runs (or until :meth:`release`)."""

    path: Path
    handle: int | None
    removed_temporaries: list[str]

    def release(self) -> None:
        if self.handle is not None:
            os.close(self.handle)
            self.handle = None


def default_for(data: str) -> Path:
    """``runs/<name>`` for a data file (``runs/digits`` for the bundled data), inside ``runs/``.

    The name is the file's stem with every character other than letters, digits, ``.``, ``_``
    and ``-`` replaced by ``_`` and leading dots dropped, so no name reaches outside ``runs/``.
    """
    stem = "digits" if data == "digits" else Path(data).stem
    name = re.sub(r"[^A-Za-z0-9._-]", "_", stem).lstrip(".")[:100] or "data"
    folder = Path("runs") / name
    with contextlib.suppress(OSError):
        if not folder.resolve().is_relative_to(Path("runs").resolve()):
            raise FolderError(
                f"the default output folder {folder} leads outside runs/ (a link?); pass --out DIR"
            )
    return folder


def is_run(folder: Path) -> bool:
    """True when ``folder`` holds a jaxbp marker (or an empty one, being claimed right now)."""
    marker = folder / MARKER
    try:
        if not marker.is_file() or marker.stat().st_size > _MAX_MARKER_BYTES:
            return False
        text = marker.read_text(errors="replace")
    except OSError:
        return False
    return text in ("", _MARKER_TEXT)


def check(folder: Path) -> None:
    """Refuse, writing nothing, a folder this run may not write into."""
    try:
        _check(folder)
    except OSError as error:  # a name too long, a loop of links, no permission to look
        raise FolderError(f"cannot use output folder {folder} ({error.strerror})") from None


def _check(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise FolderError(f"cannot write to output folder {folder} (not a folder); pass --out DIR")
    if not folder.is_dir() or is_run(folder):
        return
    try:
        entries = sorted(entry.name for entry in os.scandir(folder))
    except OSError as error:
        raise FolderError(f"cannot read output folder {folder} ({error.strerror})") from None
    if entries and _unmarked_run(entries):
        return
    if entries:
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise FolderError(
            f"{folder} is not empty ({shown}) and is not a jaxbp run folder (no {MARKER} file); "
            f"nothing there is overwritten: pass a new --out"
        )


_OWN = re.compile(r"^(checkpoint-\d{8}\.jaxbp|metrics\.json|curves\.png|last_finite_params\.npz)$")


def _unmarked_run(entries: list[str]) -> bool:
    """A run folder copied without its marker: only files jaxbp writes, a checkpoint among them."""
    own = all(_OWN.match(name) or TEMPORARY.match(name) for name in entries)
    return own and any(name.endswith(".jaxbp") for name in entries)


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def claim(folder: Path) -> Claim:
    """Check ``folder``, create it and its marker, lock it, and remove stale temporary files."""
    check(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = os.open(folder / MARKER, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o666)
    except OSError as error:
        if error.errno == errno.ELOOP:  # a link planted as the marker: never written through
            raise FolderError(
                f"{folder / MARKER} is a symbolic link; a run's marker is never a link (it may "
                f"point at one of your files): remove it or pass another --out"
            ) from None
        raise FolderError(
            f"cannot write to output folder {folder} ({error.strerror})", error.errno
        ) from None
    if fcntl is not None:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(handle)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise FolderError(
                    f"another jaxbp train is running in {folder}; wait for it to end, or pass "
                    f"another --out"
                ) from None
            raise FolderError(f"cannot lock {folder / MARKER} ({error.strerror})") from None
    try:
        if os.fstat(handle).st_size == 0:
            os.write(handle, _MARKER_TEXT.encode())
            os.fsync(handle)
    except OSError as error:
        os.close(handle)
        raise FolderError(
            f"cannot write to output folder {folder} ({error.strerror})", error.errno
        ) from None
    removed = []
    for entry in os.scandir(folder):
        if TEMPORARY.match(entry.name) and entry.is_file(follow_symlinks=False):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(entry.name)
    return Claim(folder, handle, sorted(removed))
