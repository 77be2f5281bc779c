"""The output folder of ``jaxbp train``: a run writes only into a folder that is new or its own.

A run folder holds a marker file, :data:`MARKER`, that identifies it as a jaxbp run. Before
anything is written, :func:`check` refuses a folder that exists, is not empty and has no marker
(someone else's files: a ``metrics.json`` or ``curves.png`` there is never overwritten), unless it
holds only files a run writes, a checkpoint among them (a run copied without its marker), and
:func:`default_for` keeps the default folder ``runs/<name>`` inside ``runs/`` whatever the data
file is called. :func:`claim` then creates the folder and the marker and holds an exclusive
``fcntl.flock`` on the marker for the life of the process: a second run into the same folder is
refused, and since the operating system drops the lock when a process ends, however it ends, a
crashed run never leaves the folder locked. Holding the lock, it writes its process id to
:data:`PID_FILE`, so :func:`in_progress` can tell a second command that a run is in progress there
(and which); a pid file left by a killed run is stale (its lock is gone) and is taken over. It
also removes temporary files that a write cut short (a kill during a checkpoint write) left
behind: only names of the form ``.<file jaxbp writes>.<random>.tmp``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import re
from pathlib import Path
from typing import Any

from jaxbp.training import files as _files

try:
    import fcntl
except ModuleNotFoundError:  # Windows: no advisory locks; one run per folder is not enforced
    fcntl = None  # type: ignore[assignment]

MARKER = ".jaxbp-run"
#: The process id of the run that holds the folder (a hint for messages; the lock decides).
PID_FILE = ".jaxbp-run.pid"
_MARKER_TEXT = json.dumps({"jaxbp": "run folder", "format_version": 1}) + "\n"
_MAX_MARKER_BYTES = 4096
#: Temporary files of jaxbp.training.files.atomic_write for the files a run writes (mkstemp's suffix).
TEMPORARY = re.compile(
    r"^\.(checkpoint-\d{8}\.jaxbp|metrics\.json|curves\.png|last_finite_params\.npz|targets\.json"
    r"|\.jaxbp-run\.pid)\.[A-Za-z0-9_]{1,32}\.tmp$"
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
            if _read_pid(self.path) == os.getpid():
                with contextlib.suppress(OSError):
                    os.unlink(self.path / PID_FILE)
            os.close(self.handle)
            self.handle = None


def in_progress(folder: Path) -> tuple[bool, int | None]:
    """Whether a live process holds ``folder``'s lock, and its process id if its pid file names
    one. Without ``fcntl`` (Windows), a pid file whose process is alive counts as a live run."""
    pid = _read_pid(folder)
    if fcntl is None:
        return pid is not None and _alive(pid), pid
    try:
        handle = os.open(folder / MARKER, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False, None
    try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as error:
        held = error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
        return held, pid if held and pid is not None and _alive(pid) else None
    finally:
        os.close(handle)  # closing drops the shared lock, if taken
    return False, None


def refuse_live(folder: Path, command: str) -> None:
    """Refuse ``command`` on a folder that a live run holds, naming the run."""
    held, pid = in_progress(folder)
    if held:
        which = f" (process {pid})" if pid is not None else ""
        raise FolderError(
            f"a run is in progress in {folder}{which}; wait for it to end, or stop it (Ctrl-C, "
            f"or kill {pid if pid is not None else 'its process'}: it saves a checkpoint first), "
            f"then {command}; or pass another --out"
        )


def diverged(folder: Path) -> dict[str, Any] | None:
    """The ``diverged`` report of the folder's ``metrics.json`` (``None``: none, or no readable
    file), which lets a resumed run take a lower ``--lr``."""
    try:
        with open(folder / "metrics.json", "rb", opener=_no_follow) as file:
            text = file.read(_MAX_METRICS_BYTES + 1)
        report = json.loads(text) if len(text) <= _MAX_METRICS_BYTES else None
    except (OSError, ValueError, RecursionError):
        return None
    found = report.get("diverged") if isinstance(report, dict) else None
    return found if isinstance(found, dict) else None


_MAX_METRICS_BYTES = 2**26


def _read_pid(folder: Path) -> int | None:
    try:
        with open(folder / PID_FILE, "rb", opener=_no_follow) as file:
            text = file.read(32).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and 0 < int(text) < 2**31 else None


def _no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by another user
        return True
    return True


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


_OWN = re.compile(
    r"^(checkpoint-\d{8}\.jaxbp|metrics\.json|curves\.png|last_finite_params\.npz|targets\.json"
    r"|\.jaxbp-run\.pid)$"
)


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
    try:
        _files.atomic_write(folder / PID_FILE, f"{os.getpid()}\n".encode())
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
