"""``.npy`` data for ``jaxbp train``: features read from a memmap in blocks, never whole.

``--data x.npy`` holds a 2-D array ``(examples, columns)`` of real numbers (bool, integer or
float), opened with ``mmap_mode="r"``. ``--target`` names the targets: a ``.npy`` file of one
target per example (``(n,)`` labels or values, or ``(n, k)``), read into memory, or the index of
a column of ``x`` (``0``, ``-1`` for the last), which is then read into memory in blocks and is
not a feature. :func:`load_npy` reads the file once, :data:`BLOCK_ROWS` rows at a time: it refuses
a NaN or infinity (naming its row and column), collects a target column, and hashes the features
and targets exactly as :func:`jaxbp.data.files.fingerprint` hashes them loaded whole (as float64), so
the same data has the same fingerprint as a ``.npz``. :func:`train_stats` then reads the training
rows in their split order, a block at a time, and merges the blocks' means and squared deviations
(Chan et al.'s parallel update, in float64): a training set of one block (:data:`BLOCK_ROWS`
rows, fewer for wide rows) gets the very numbers :func:`jaxbp.data.files.standardizer` computes for it
in memory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from jaxbp.data._rows import aligned_empty, row_reader
from jaxbp.data.files import DataError, check_real_dtype, check_regular_file, one_hot
from jaxbp.data.sources import Rows

#: The most rows read at a time by the passes over the file and by the standardising transform.
BLOCK_ROWS = 65536
#: ... and the most bytes their float64 features may take: fewer rows for wide data.
BLOCK_BYTES = 2**23


@dataclasses.dataclass(frozen=True)
class NpyData:
    """``.npy`` data as opened: ``x`` the file's memmap ``(n, columns)``, nothing read into memory
    but the targets ``y`` (float64, ``(n,)`` or ``(n, k)``); ``column`` is ``x``'s target column
    (``None``: the targets come from their own file)."""

    x: np.ndarray
    y: np.ndarray
    name: str
    column: int | None
    fingerprint: str

    @property
    def features(self) -> int:
        return int(self.x.shape[1]) - (self.column is not None)

    @property
    def block_rows(self) -> int:
        """Rows per block: :data:`BLOCK_ROWS`, fewer where they would pass :data:`BLOCK_BYTES`."""
        return max(1, min(BLOCK_ROWS, BLOCK_BYTES // (8 * int(self.x.shape[1]))))

    def feature_rows(self, block: np.ndarray) -> np.ndarray:
        """The features of a block of rows of ``x``: float64, the target column dropped (a new
        array, or ``block`` itself when it is already C-contiguous float64 features)."""
        if self.column is not None:
            block = np.delete(block, self.column, axis=1)
        return np.ascontiguousarray(block, np.float64)


def load_npy(path: str | Path, target: str) -> NpyData:
    """Open ``path`` and the targets ``--target`` names, check every value, and hash them.

    Raises:
        DataError: a file that is missing or not a ``.npy``, a dtype that is not real numbers,
            ``x`` not 2-D or empty, a ``--target`` that names no targets or targets of the wrong
            length or shape, a NaN or infinity (naming its row and column).
    """
    path = Path(path)
    x = _open_npy(path, "--data")
    if x.ndim != 2:
        raise DataError(
            f"{path}: x has shape {x.shape}; a .npy for --data must be 2-D (examples, features)"
        )
    if x.shape[0] == 0:
        raise DataError(f"{path}: the file holds no examples (shape {x.shape})")
    if x.shape[1] == 0:
        raise DataError(f"{path}: the array has no columns (shape {x.shape}); it needs features")
    if not x.flags.c_contiguous:  # np.save of a Fortran-order array keeps that order
        raise DataError(
            f"{path}: the array is stored in Fortran (column-major) order, so each example's "
            f"values lie spread over the whole file and cannot be streamed by rows; save it in "
            f"C order: np.save(path, np.ascontiguousarray(x))"
        )
    column = _target_column(path, target, int(x.shape[1]))
    if x.shape[1] - (column is not None) == 0:
        raise DataError(f"{path}: there are no feature columns besides the target")
    data = NpyData(x, np.empty(0), path.name, column, "")
    digest = hashlib.sha256(f"{np.dtype(np.float64).str}{(len(x), data.features)}".encode())
    read, parts = row_reader(x), []
    for start in range(0, len(x), data.block_rows):
        block = read(np.arange(start, min(start + data.block_rows, len(x))))
        _check_finite(path, "x", block, start)
        digest.update(data.feature_rows(block).data)  # C-contiguous: the bytes tobytes() gives
        if column is not None:
            parts.append(block[:, column].astype(np.float64))
    y = np.concatenate(parts) if column is not None else _target_file(path, Path(target), len(x))
    digest.update(f"{y.dtype.str}{y.shape}".encode())
    digest.update(np.ascontiguousarray(y).tobytes())
    return dataclasses.replace(data, y=y, fingerprint=digest.hexdigest())


def _training_blocks(
    data: NpyData, index: np.ndarray, block_rows: int, read: Any
) -> Iterator[np.ndarray]:
    """The features of rows ``index``, ``block_rows`` at a time (float64): in ``index`` order when
    they fit in one block (then the numbers are exactly those of the rows in memory), else in
    file order, each block of the file read in one call and its training rows kept (the rows
    themselves, read one by one in a shuffled order, would cost a system call each)."""
    if len(index) <= block_rows:
        yield data.feature_rows(read(index))
        return
    wanted = np.zeros(len(data.x), bool)
    wanted[index] = True
    for start in range(0, len(data.x), block_rows):
        stop = min(start + block_rows, len(data.x))
        keep = wanted[start:stop]
        if keep.any():
            yield data.feature_rows(read(np.arange(start, stop))[keep])


def train_stats(
    data: NpyData, index: np.ndarray, block_rows: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and scale (standard deviation; 1 for a constant feature) of rows
    ``index`` of the features, read ``block_rows`` (default ``data.block_rows``) at a time (see
    :func:`_training_blocks`).

    Blocks merge by Chan et al.'s update: for the merged count ``n = n_a + n_b`` and
    ``delta = mean_b - mean_a``, ``mean = mean_a + delta * n_b / n`` and
    ``M2 = M2_a + M2_b + delta**2 * n_a * n_b / n``; the scale is ``sqrt(M2 / n)``.

    Raises:
        DataError: a feature whose mean or spread overflows float64, as
            :func:`jaxbp.data.files.standardizer` refuses it.
    """
    count, read = 0, row_reader(data.x)
    block_rows = data.block_rows if block_rows is None else block_rows
    mean = m2 = largest = np.zeros(data.features)
    with np.errstate(over="ignore", invalid="ignore"):
        for block in _training_blocks(data, index, block_rows, read):
            rows = len(block)
            block_mean = block.mean(axis=0)
            largest = np.maximum(largest, np.maximum(-block.min(axis=0), block.max(axis=0)))
            block -= block_mean  # in place, the very numbers np.var squares and sums
            block *= block
            total = count + rows
            delta = block_mean - mean
            mean = mean + delta * (rows / total)
            m2 = m2 + block.sum(axis=0) + delta * delta * (count * rows / total)
            count = total
        scale = np.sqrt(m2 / count)
    bad = ~(np.isfinite(mean) & np.isfinite(scale))
    if bad.any():
        column = int(np.flatnonzero(bad)[0])
        size = float(largest[column])
        raise DataError(
            f"{data.name}: feature column {column} (from 0) holds values up to {size:.3g}; its "
            f"standard deviation overflows float64, so it cannot be standardised; rescale that "
            f"column (e.g. divide it by {size:.0e})"
        )
    return mean, np.where(scale > 0, scale, 1.0)


def _open_npy(path: Path, flag: str) -> np.ndarray:
    """The array of a ``.npy`` file as a read-only memmap, its header checked first."""
    check_regular_file(path, flag, "a .npy file")
    try:
        with path.open("rb") as file:
            version = np.lib.format.read_magic(file)
            header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = header(file)
            start = file.tell()
    except Exception as error:  # a malformed header: ValueError, SyntaxError, TokenError, ...
        raise DataError(
            f"{path}: not a readable .npy file ({error or type(error).__name__}); save arrays "
            f"with np.save(path, array)"
        ) from None
    check_real_dtype(path, "the array", dtype, "array")
    if any(size < 0 for size in shape):
        raise DataError(f"{path}: not a readable .npy file (its header gives shape {shape})")
    needed = start + math.prod(shape) * dtype.itemsize
    actual = path.stat().st_size
    if actual < needed:
        raise DataError(
            f"{path}: the file is {actual:,} bytes but its header ({dtype}, shape {shape}) needs "
            f"{needed:,}; it was cut short; save it again with np.save(path, array)"
        )
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, OverflowError) as error:
        raise DataError(f"{path}: not a readable .npy file ({error})") from None


def _target_column(path: Path, target: str, columns: int) -> int | None:
    """``None`` for a ``.npy`` of targets, else the column of ``x`` that ``--target`` names."""
    if target.lower().endswith(".npy"):
        return None
    try:
        column = int(target)
    except ValueError:
        raise DataError(
            f"{path}: .npy data needs --target: a .npy file of one target per example "
            f"(--target y.npy) or the index of x's target column (--target COLUMN_INDEX, e.g. "
            f"-1 for the last), got --target {target!r}"
        ) from None
    if not -columns <= column < columns:
        raise DataError(
            f"{path}: --target {target} is not a column of x, which has {columns} columns; pass "
            f"0..{columns - 1} (or -{columns}..-1 counting from the end)"
        )
    return column % columns


def _target_file(path: Path, target: Path, count: int) -> np.ndarray:
    y = _open_npy(target, "--target")
    if y.ndim not in (1, 2) or y.shape[0] != count:
        raise DataError(
            f"{target}: the targets have shape {y.shape} but {path.name} has {count} examples; "
            f"--target needs ({count},) or ({count}, outputs)"
        )
    y = np.array(y, np.float64)
    _check_finite(target, "the targets", y, 0)
    return y


def _check_finite(path: Path, what: str, block: np.ndarray, first_row: int) -> None:
    if block.dtype.kind != "f":
        return
    bad = ~np.isfinite(block)
    if bad.any():
        place = np.argwhere(bad)[0]
        column = f", column {int(place[1])}" if block.ndim == 2 else ""
        raise DataError(
            f"{path}: {what} holds NaN or Inf at row {first_row + int(place[0])}{column} "
            f"(counting from 0); remove or fill those rows"
        )


def views(
    data: NpyData,
    index: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    targets: np.ndarray,
    classes: int | None,
    dtype: np.dtype,
) -> tuple[Rows, Rows]:
    """Rows ``index`` as ``(x, y)`` views: ``x`` standardised (``(x - mean) / scale`` in float64,
    then cast to ``dtype``, as the in-memory path does it), ``y`` one-hot over ``classes``
    (``targets`` int labels) or ``targets`` cast to ``dtype`` (``classes`` is ``None``)."""

    def features(block: np.ndarray) -> np.ndarray:
        out = aligned_empty((len(block), data.features), dtype)  # a CPU device takes it as is
        for start in range(0, len(block), data.block_rows):  # float64 a block at a time
            values = data.feature_rows(block[start : start + data.block_rows])
            values -= mean
            values /= scale
            out[start : start + len(values)] = values  # rounds to dtype as astype does
        return out

    def encode(block: np.ndarray) -> np.ndarray:
        return (one_hot(block, classes) if classes is not None else block).astype(dtype)

    return Rows(data.x, index, features), Rows(targets, index, encode)
