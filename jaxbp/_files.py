"""Crash-safe file writes: a temporary file, fsync, rename over the target, fsync the directory.

A reader sees either the old file or the new one, never a half-written one, whatever moment the
process or the machine stops. Used for checkpoints, ``metrics.json`` and the plot.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def atomic_write(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and durably; returns the path.

    The bytes go to a temporary file in the same directory, which is flushed and fsynced, then
    renamed over ``path`` (atomic on POSIX), and the directory is fsynced so the rename survives a
    power cut. On any error the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(temp_name, 0o666 & ~_umask())  # mkstemp makes 0600; use what open() would
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    fsync_directory(path.parent)
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_directory(directory: str | os.PathLike[str]) -> None:
    """Make a rename or unlink in ``directory`` durable (a no-op where directories cannot be opened)."""
    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def writable_directory_problem(directory: str | os.PathLike[str]) -> str | None:
    """Create ``directory`` if needed and try a write there; ``None`` when fine, else the reason."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        return error.strerror or str(error)
    return None
