"""Crash-safe file writes: a temporary file, fsync, rename over the target, fsync the directory.

A reader sees either the old file or the new one, never a half-written one, whatever moment the
process or the machine stops. Used for checkpoints, ``metrics.json`` and the plot. A failed write
(a full disk, a quota, a lost mount) raises :class:`WriteError`, which names the file and the
number of bytes it needed, after removing its temporary file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


class WriteError(OSError):
    """Writing ``filename`` (``nbytes`` bytes) failed; the previous file, if any, is intact."""

    def __init__(self, path: Path, nbytes: int, error: OSError) -> None:
        super().__init__(error.errno, error.strerror or str(error), str(path))
        self.nbytes = nbytes


def atomic_write(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and durably; returns the path.

    The bytes go to a temporary file in the same directory, which is flushed and fsynced, then
    renamed over ``path`` (atomic on POSIX), and the directory is fsynced so the rename survives a
    power cut. On any error the temporary file is removed and ``path`` is untouched.

    Raises:
        WriteError: the file system refused the write (``errno`` tells why, e.g. ``ENOSPC``).
    """
    path = Path(path)
    try:
        handle, temp_name = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
        )
    except OSError as error:
        raise WriteError(path, len(data), error) from error
    try:
        os.chmod(temp_name, 0o666 & ~_umask())  # mkstemp makes 0600; use what open() would
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_name, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        if isinstance(error, OSError) and not isinstance(error, WriteError):
            raise WriteError(path, len(data), error) from error
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
