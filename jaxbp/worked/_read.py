"""Reading a small input file (a network file, a numbers file) with a bound on its size.

Every failure is one error of the caller's type, naming the file: a folder, a missing or
unreadable file. The bound keeps a wrong path (a disk image, a log) from being read whole.
"""

from __future__ import annotations

from pathlib import Path


def read_bounded(path: Path, max_bytes: int, error: type[Exception], what: str) -> bytes:
    """At most ``max_bytes + 1`` bytes of ``path``: more than ``max_bytes`` means too large.

    Raises:
        error: ``path`` is a folder or cannot be read; ``what`` names the kind of file
            (``"network file"``).
    """
    try:
        if path.is_dir():
            raise error(f"{path} is a folder, not a {what}.")
        with path.open("rb") as file:
            return file.read(max_bytes + 1)
    except OSError as os_error:
        raise error(f"cannot read {what} {path}: {os_error.strerror}.") from None
