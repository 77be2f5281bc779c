"""Reading rows of a large array into new memory, without holding the file in the process.

:func:`row_reader` picks how :class:`jaxbp.data.sources.ArraySource` reads ``array[rows]``:

- A memmap of a file (mode ``"r"`` or ``"r+"``, C-contiguous rows): the rows are read with
  ``os.preadv`` from a descriptor opened once, never through the mapping. Rows are read in
  increasing file order; a contiguous run of rows is one call straight into the output, and rows
  a few pages apart are read as one span (at most :data:`SPAN_BYTES`) and copied out. The file's
  pages stay in the page cache and never enter the process: reading through the mapping instead
  would map, for every random row, the pages around it (the kernel's fault-around and large
  folios), about 1 GiB for 16,384 random rows of a 2 GiB file, measured on Linux 6.18. And a
  file cut short while it is read ends a read with :class:`FileShrankError`, where touching the
  mapping past the file's new end would kill the process with ``SIGBUS``.
- Anything else (in-memory arrays, non-contiguous views, copy-on-write memmaps): ``np.take``
  into the output; for a read-only memmap its pages are released afterwards
  (``madvise(MADV_DONTNEED)``).

Outputs are 64-byte aligned, so a CPU device uses them without another copy.
"""

from __future__ import annotations

import contextlib
import itertools
import mmap
import os
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

#: Rows fewer than this many bytes apart are read in one call with the bytes between them (a
#: system call costs about as much as copying this many bytes from the page cache).
GAP_BYTES = 16384
#: The most bytes one coalesced read spans (its scratch buffer).
SPAN_BYTES = 2**22

_DONTNEED = getattr(mmap, "MADV_DONTNEED", None)


class FileShrankError(OSError):
    """A file read by rows is shorter than its header says: cut short or rewritten while read.

    Attributes: ``path``, ``expected`` (the bytes its header and shape need), ``actual``
    (the bytes it holds now).
    """

    def __init__(self, path: str, expected: int, actual: int) -> None:
        super().__init__(
            f"{path}: the file is {actual:,} bytes but its header and shape need {expected:,}; "
            f"it was cut short or rewritten while it was being read; restore the file."
        )
        self.path, self.expected, self.actual = path, expected, actual


def aligned_empty(shape: tuple[int, ...], dtype: Any, alignment: int = 64) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on an ``alignment``-byte boundary."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(size + alignment, np.uint8)
    start = -raw.ctypes.data % alignment
    return raw[start : start + size].view(dtype).reshape(shape)


def row_reader(array: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A function ``rows -> array[rows]`` (a new aligned array) for a flat int64 index vector."""
    location = _file_location(array)
    if location is not None:
        return _FileRows(location[0], location[1], array)
    return lambda rows: _take(array, rows)


def _file_location(array: np.ndarray) -> tuple[str, int] | None:
    """``(path, byte offset of row 0)`` when rows can be read from the memmap's file directly."""
    mapping = getattr(array, "_mmap", None)
    path = getattr(array, "filename", None)
    row_bytes = array.dtype.itemsize * int(np.prod(array.shape[1:], dtype=np.int64))
    if (
        mapping is None
        or path is None
        or not hasattr(os, "preadv")
        or getattr(array, "mode", None) == "c"  # private changes live only in the mapping
        or array.dtype.hasobject
        or row_bytes == 0
        or not array[:1].flags.c_contiguous
        or (array.shape[0] > 1 and array.strides[0] != row_bytes)
    ):
        return None
    base = np.frombuffer(mapping, np.uint8, count=1).ctypes.data
    offset = int(getattr(array, "offset", 0))
    mapped_from = offset - offset % mmap.ALLOCATIONGRANULARITY
    return str(path), mapped_from + (array.ctypes.data - base)


class _FileRows:
    """``rows -> array[rows]`` read with ``preadv`` from one descriptor of the memmap's file,
    opened once (a file renamed over the path later is not read; one cut short is noticed)."""

    def __init__(self, path: str, offset: int, array: np.ndarray) -> None:
        self.path, self.offset = path, offset
        self.shape, self.dtype = tuple(array.shape), array.dtype
        self.row_bytes = array.dtype.itemsize * int(np.prod(array.shape[1:], dtype=np.int64))
        self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        weakref.finalize(self, os.close, self.fd)

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        out = aligned_empty((rows.size, *self.shape[1:]), self.dtype)
        if rows.size == 0:
            return out
        buffer = memoryview(out.reshape(-1).view(np.uint8).data)
        first = int(rows[0])
        if rows[-1] - first == rows.size - 1 and np.all(np.diff(rows) == 1):
            self._pread(buffer, self.offset + first * self.row_bytes)
            return out
        self._gather(out.reshape(rows.size, -1).view(np.uint8), rows)
        return out

    def _gather(self, out: np.ndarray, rows: np.ndarray) -> None:
        """Rows in increasing file order, rows closer than :data:`GAP_BYTES` read as one span
        into a scratch buffer (at most about :data:`SPAN_BYTES` at a time), then copied out in
        one vectorised step."""
        size = self.row_bytes
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        new = np.ones(len(ordered), bool)  # where a span starts
        new[1:] = ((ordered[1:] - ordered[:-1] - 1) * size > GAP_BYTES) | (
            ordered[1:] * size // SPAN_BYTES != ordered[:-1] * size // SPAN_BYTES
        )
        firsts = np.flatnonzero(new)
        lows = ordered[firsts]
        lengths = ordered[np.append(firsts[1:], len(ordered)) - 1] - lows + 1  # rows per span
        slots = np.cumsum(lengths) - lengths  # each span's first row in the concatenated spans
        span_of = np.cumsum(new) - 1
        slot = slots[span_of] + ordered - lows[span_of]  # each ordered row's place in the spans
        if len(firsts) > 1 and hasattr(os, "posix_fadvise"):  # scattered: read-ahead wastes
            os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_RANDOM)
        group = slots * size // SPAN_BYTES  # spans read together, about SPAN_BYTES at a time
        edges = [0, *(np.flatnonzero(np.diff(group)) + 1).tolist(), len(firsts)]
        starts = (self.offset + lows * size).tolist()
        places, counts = slots.tolist(), lengths.tolist()
        for lo, hi in itertools.pairwise(edges):
            base = places[lo]
            scratch = np.empty((places[hi - 1] + counts[hi - 1] - base) * size, np.uint8)
            view = memoryview(scratch.data)
            for span in range(lo, hi):
                place, length = (places[span] - base) * size, counts[span] * size
                chunk = view[place : place + length]
                if os.preadv(self.fd, [chunk], starts[span]) != length:
                    self._pread(chunk, starts[span])  # a short read: finish it, or say why
            mine = slice(int(firsts[lo]), int(firsts[hi]) if hi < len(firsts) else len(ordered))
            out[order[mine]] = scratch.reshape(-1, size)[slot[mine] - base]

    def _pread(self, buffer: memoryview, position: int) -> None:
        done = 0
        while done < len(buffer):
            got = os.preadv(self.fd, [buffer[done:]], position + done)
            if got == 0:
                expected = self.offset + self.shape[0] * self.row_bytes
                raise FileShrankError(self.path, expected, os.fstat(self.fd).st_size)
            done += got


def _take(array: np.ndarray, rows: np.ndarray) -> np.ndarray:
    out = aligned_empty((rows.size, *array.shape[1:]), array.dtype)
    np.take(array, rows, axis=0, out=out)
    release(array)
    return out


def release(array: np.ndarray) -> None:
    """Drop a read-only memmap's resident pages from this process (not from the page cache).

    Only for mode ``"r"``: there are no changes to lose, and the next read faults the pages back
    in from the page cache.
    """
    mapping = getattr(array, "_mmap", None)
    if _DONTNEED is None or mapping is None or getattr(array, "mode", None) != "r":
        return
    with contextlib.suppress(OSError, ValueError):  # a closed mapping: keep the pages
        mapping.madvise(_DONTNEED)
