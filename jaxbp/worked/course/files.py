"""Writing a course's files safely: atomically, never over a teacher's file without ``force``,
never through a symbolic link.

Every file is written to a temporary file in its own folder and moved into place with
``os.replace``, so a reader sees the old file or the new one, never half of one. A file that
exists is replaced only with ``force``; a symbolic link is never written through nor replaced
(it may point at any of the user's files), and a folder on the way that is a symbolic link is
refused the same way. Every check runs before anything is written (:func:`plan`), so a refused
run leaves the disk as it was.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path


class CourseError(ValueError):
    """A course file or folder that cannot be used; the message names it and says what to do."""


def check_folder(path: Path, what: str, create: bool = False) -> None:
    """``path`` is a real folder (not a symbolic link), or does not exist yet when ``create``.

    Raises:
        CourseError: naming ``what`` (``"--out"``) and the problem.
    """
    if path.is_symlink():
        raise CourseError(
            f"{what} {path} is a symbolic link; give the folder itself (links are never followed)."
        )
    if path.exists() and not path.is_dir():
        raise CourseError(f"{what} {path} is a file, not a folder.")
    if not path.exists() and not create:
        raise CourseError(f"{what} {path}: no such folder.")
    if not path.exists() and not path.parent.is_dir():
        raise CourseError(f"{what} {path}: its folder {path.parent} does not exist.")


def plan(root: Path, paths: Iterable[Path], force: bool, flag: str) -> None:
    """Refuse, before anything is written, any target that is a symbolic link, a folder, a named
    pipe or a device (or has a symbolic link on its way from ``root``), or that exists without
    ``force``.

    Args:
        root: the output folder (checked by :func:`check_folder`).
        paths: every file about to be written, inside ``root``.
        force: whether existing files may be replaced.
        flag: the option that names the output, for messages (``"--out"``).

    Raises:
        CourseError: on the first target that cannot be written.
    """
    existing = []
    for path in paths:
        folders = [path.parent, *path.parent.parents]
        for folder in folders[: folders.index(root) + 1 if root in folders else 1]:
            if folder.is_symlink():
                raise CourseError(
                    f"{flag}: {folder} is a symbolic link; course files are never written "
                    "through a link."
                )
        if path.is_symlink():
            raise CourseError(f"{flag}: {path} is a symbolic link; it is never replaced.")
        if path.is_dir():
            raise CourseError(f"{flag}: {path} is a folder where a file is to be written.")
        if path.exists() and not path.is_file():  # never replaced, even with force
            kind = (
                "a named pipe" if path.is_fifo() else "a socket" if path.is_socket() else "a device"
            )
            raise CourseError(f"{flag}: {path} is {kind} where a file is to be written; it is never replaced.")  # fmt: skip
        if path.exists():
            existing.append(path)
    if existing and not force:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise CourseError(
            f"{flag}: {existing[0]}{more} exists; it may hold your edits or your students' "
            "grades, so it is not replaced: choose another folder or pass --force."
        )


def write(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file beside it, then ``os.replace``);
    the folders are created as needed, each refused when it is a symbolic link.

    Raises:
        CourseError: when the file cannot be written (the message names it).
    """
    _make_folders(path.parent)
    if path.is_symlink():
        raise CourseError(f"{path} is a symbolic link; it is never replaced.")
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
    except OSError as error:
        raise CourseError(f"cannot write {path}: {error.strerror}.") from None
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(payload)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise CourseError(f"cannot write {path}: {error.strerror}.") from None


def write_all(contents: dict[Path, str], stop: Callable[[], bool] = lambda: False) -> bool:
    """:func:`write` every file of ``contents``; when one cannot be written (a full disk), or
    ``stop()`` turns true between two files (Ctrl-C), remove the files and folders this call
    made, so no half set is left.

    Returns:
        True when every file was written, False when ``stop`` stopped it.

    Raises:
        CourseError: naming the file that could not be written.
    """
    folders = {folder for path in contents for folder in (path.parent, *path.parent.parents)}
    new = [path for path in contents if not path.exists()]
    new_folders = sorted((f for f in folders if not f.exists()), key=lambda f: -len(f.parts))

    def take_back() -> None:
        for path in new:
            with contextlib.suppress(OSError):
                path.unlink()
        for folder in new_folders:
            with contextlib.suppress(OSError):
                folder.rmdir()

    try:
        for path, data in contents.items():
            if stop():
                take_back()
                return False
            write(path, data)
    except CourseError as error:
        take_back()
        raise CourseError(f"{error} The files this run made were removed.") from None
    return True


def _make_folders(folder: Path) -> None:
    missing = []
    while not folder.exists() and not folder.is_symlink():
        missing.append(folder)
        folder = folder.parent
    if folder.is_symlink() and missing:
        raise CourseError(
            f"{folder} is a symbolic link; course files are never written through one."
        )
    for new in reversed(missing):
        try:
            new.mkdir()
        except FileExistsError:
            pass
        except OSError as error:
            raise CourseError(f"cannot make the folder {new}: {error.strerror}.") from None
        if new.is_symlink() or not new.is_dir():
            raise CourseError(f"{new} is not a folder of its own; not written through.")
