"""Data for ``jaxbp train``: loading, validating, splitting, scaling and encoding.

Sources: scikit-learn's bundled handwritten digits (``load_digits``, no download), MNIST-1D
generated offline (``load_mnist1d``, with its own test set), a CSV file with a header row and a
named target column, or an ``.npz`` file with arrays ``x`` and ``y``. Every
problem with the data raises :class:`DataError` naming the file, what is wrong, where, and the fix,
before anything is trained. Splits are stratified by class for classification and drawn with a
NumPy ``default_rng(seed)``, so the same seed always gives the same split.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import os
import stat
import zipfile
from pathlib import Path

import numpy as np

TASKS = ("classification", "regression")
#: Data sets ``--data`` names instead of a file.
BUILT_IN = ("digits", "mnist1d")
#: The most classes a classification run may have (labels 0..MAX_CLASSES-1).
MAX_CLASSES = 10_000
#: The most bytes the arrays of an ``.npz`` file may declare, checked before reading them.
MAX_NPZ_BYTES = 2**32
#: The largest CSV file read (its cells become Python strings first); use .npz beyond.
MAX_CSV_BYTES = 2**29


class DataError(ValueError):
    """The data cannot be used as given; the message says why and how to fix it."""


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Examples as loaded: ``x`` float64 ``(n, features)``; ``y`` ``(n,)`` labels or ``(n, k)``.

    ``test`` is the data set's own test set, if it has one (then nothing of ``x`` is held out
    for testing).
    """

    x: np.ndarray
    y: np.ndarray
    name: str
    columns: tuple[str, ...] = ()  # the feature names (CSV header), if any
    test: Split | None = None


@dataclasses.dataclass(frozen=True)
class Split:
    """One part of a split: features ``(n, features)`` and targets as in :class:`Dataset`."""

    x: np.ndarray
    y: np.ndarray


def load_digits() -> Dataset:
    """scikit-learn's 8x8 handwritten digits: 1797 examples, 64 features in 0..16, labels 0..9."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ModuleNotFoundError as error:
        raise DataError(
            "the default digits data needs scikit-learn; pip install 'jaxbp[train]', "
            "or pass --data FILE (.csv, .npz or .npy)"
        ) from error
    digits = sklearn_digits()
    return Dataset(np.asarray(digits.data, np.float64), np.asarray(digits.target), "digits")


def load_mnist1d() -> Dataset:
    """MNIST-1D as published (seed 42), generated locally: 4,000 training examples in ``x`` and
    the 1,000 test examples in ``test``; 40 features, labels 0..9 (see :mod:`jaxbp.data.datasets`)."""
    from jaxbp.data import datasets

    try:
        arrays = datasets.mnist1d()
    except ImportError:
        raise DataError(
            "--data mnist1d needs the mnist1d package; pip install 'jaxbp[data]'"
        ) from None
    test = Split(np.asarray(arrays.x_test, np.float64), np.asarray(arrays.y_test))
    x, y = np.asarray(arrays.x_train, np.float64), np.asarray(arrays.y_train)
    return Dataset(x, y, "mnist1d", test=test)


def load(data: str, target: str = "target") -> Dataset:
    """The data ``--data`` names: a built-in set (:data:`BUILT_IN`) or a ``.csv``/``.npz`` file."""
    if data == "digits":
        return load_digits()
    if data == "mnist1d":
        return load_mnist1d()
    return load_file(data, target)


#: What ``--data`` takes when it is a file.
DATA_FILES = "a .csv, .npz or .npy file"
_KINDS = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def check_regular_file(path: Path, flag: str, accepted: str) -> None:
    """Refuse a path that is not a readable regular file, before opening it (opening a named
    pipe would wait for a writer forever; a device never ends).

    Raises:
        DataError: naming the path, what it is, and what ``flag`` takes (``accepted``).
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise DataError(f"{path}: no such file; check the path given to {flag}") from None
    except OSError as error:  # a loop of links, a folder we may not enter, a name too long
        raise DataError(f"{path}: cannot look at it ({error.strerror}); {flag} needs {accepted}") from None  # fmt: skip
    if stat.S_ISDIR(mode):
        raise DataError(f"{path}: is a directory; {flag} needs {accepted}")
    if not stat.S_ISREG(mode):
        kind = _KINDS.get(stat.S_IFMT(mode), "something else")
        raise DataError(f"{path}: is {kind}, not a regular file; {flag} needs {accepted}")
    if not os.access(path, os.R_OK):
        raise DataError(f"{path}: no permission to read it; {flag} needs {accepted} you can read")


def load_file(path: str | Path, target: str = "target") -> Dataset:
    """Load a ``.csv`` (header row, numeric cells, target column ``target``) or an ``.npz``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if os.path.lexists(path) or suffix in (".csv", ".npz"):
        check_regular_file(path, "--data", DATA_FILES)
    if suffix not in (".csv", ".npz"):
        raise DataError(
            f"{path}: unsupported file type {suffix or '(none)'!r}; use .csv, .npz or .npy"
        )
    if suffix == ".csv" and path.stat().st_size > MAX_CSV_BYTES:
        raise DataError(
            f"{path}: {path.stat().st_size:,} bytes; a CSV may have at most {MAX_CSV_BYTES:,}; "
            f"save larger data as .npz (np.savez(path, x=x, y=y))"
        )
    try:
        if suffix == ".csv":
            x, y, columns = _read_csv(path, target)
        else:
            (x, y), columns = _read_npz(path), ()
    except OSError as error:
        raise DataError(f"{path}: cannot read the file ({error.strerror or error})") from error
    if x.shape[0] == 0:
        raise DataError(f"{path}: the file holds no examples; it needs at least one data row")
    if x.shape[1] == 0:
        raise DataError(f"{path}: there are no feature columns besides the target")
    _check_finite(path, "features (x)", x)
    _check_finite(path, "targets (y)", y)
    return Dataset(x, y, path.name, columns)


def _read_csv(path: Path, target: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    with path.open(newline="", encoding="utf-8-sig") as file:  # a byte-order mark is no name
        try:
            rows = list(csv.reader(file))
        except (csv.Error, UnicodeDecodeError) as error:
            raise DataError(f"{path}: not a readable CSV file ({error})") from error
    if not rows:
        raise DataError(f"{path}: the file is empty; it needs a header row and data rows")
    header = [name.strip() for name in rows[0]]
    if not any(header):
        raise DataError(f"{path} line 1 is empty; the first line must be the header (the column names)")  # fmt: skip
    if target not in header:
        raise DataError(
            f"{path}: no target column {target!r}; the columns are {', '.join(header)}; "
            f"pass --target NAME"
        )
    if header.count(target) > 1:
        places = [str(i + 1) for i, name in enumerate(header) if name == target]
        raise DataError(
            f"{path}: {header.count(target)} columns are named {target!r} (columns "
            f"{', '.join(places)}); one would be the target and the other a feature holding the "
            f"answer; rename or remove the extra column"
        )
    _refuse_repeated_names(path, header)
    values = np.empty((len(rows) - 1, len(header)), np.float64)
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DataError(
                f"{path} line {line}: {len(row)} cells but the header has {len(header)} columns"
            )
        for column, cell in enumerate(row):
            try:
                values[line - 2, column] = float(cell)
            except ValueError:
                raise DataError(
                    f"{path} line {line}, column {header[column]!r}: {cell!r} is not a number; "
                    f"every cell must be numeric (encode categories as numbers)"
                ) from None
    target_index = header.index(target)
    x = np.delete(values, target_index, axis=1)
    columns = tuple(name for i, name in enumerate(header) if i != target_index)
    return x, values[:, target_index], columns


def _refuse_repeated_names(path: Path, header: list[str]) -> None:
    """Feature names name columns in the run's metrics and messages: each must be one column."""
    places_of: dict[str, list[str]] = {}
    for place, name in enumerate(header, start=1):  # one pass: a header may have many columns
        places_of.setdefault(name, []).append(str(place))
    for name, places in places_of.items():
        if len(places) > 1:
            raise DataError(
                f"{path}: {len(places)} columns are named {name!r} (columns {', '.join(places)}, "
                f"counting from 1); every column needs its own name; rename or remove the extra"
            )


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not zipfile.is_zipfile(path):  # else np.load would take it for a pickle
        raise DataError(
            f"{path}: not a readable .npz file (not a zip archive); save one with np.savez(path, x=..., y=...)"
        )
    try:
        with path.open("rb") as file, np.load(file, allow_pickle=False) as archive:
            missing = [name for name in ("x", "y") if name not in archive.files]
            if missing:
                raise DataError(
                    f"{path}: no array {' or '.join(map(repr, missing))}; the file has "
                    f"{', '.join(archive.files) or 'no arrays'}; save it with np.savez(path, x=..., y=...)"
                )
            _check_declared_sizes(path, archive)
            _declared_dtypes(path, archive)
            x, y = archive["x"], archive["y"]
    except (zipfile.BadZipFile, ValueError, EOFError) as error:
        if isinstance(error, DataError):
            raise
        raise DataError(f"{path}: not a readable .npz file ({error})") from error
    for name, array in (("x", x), ("y", y)):
        check_real_dtype(path, f"array {name}", array.dtype, name)
    if x.ndim != 2:
        raise DataError(f"{path}: x has shape {x.shape}; it must be (examples, features)")
    if y.ndim not in (1, 2) or y.shape[0] != x.shape[0]:
        raise DataError(
            f"{path}: y has shape {y.shape} but x has {x.shape[0]} examples; "
            f"y must be ({x.shape[0]},) or ({x.shape[0]}, outputs)"
        )
    return x.astype(np.float64), y.astype(np.float64)


def check_real_dtype(path: Path, what: str, dtype: np.dtype, name: str) -> None:
    """Refuse every dtype but real numbers (bool, integer, float, either byte order), naming it:
    complex, Python objects (never unpickled), records (structured dtypes), strings, dates."""
    if dtype.kind in "biuf":
        return
    fixes = {
        "c": f"; keep the real part, np.real({name})",
        "O": f"; it holds Python objects, which are never unpickled: save numbers, e.g. "
        f"{name}.astype(float)",
        "V": f"; it holds records of named fields: save them as columns, "
        f"np.column_stack([{name}[f] for f in {name}.dtype.names])",
    }
    raise DataError(
        f"{path}: {what} has dtype {dtype}; it must hold real numbers "
        f"(bool, integer or float){fixes.get(dtype.kind, '')}"
    )


def _declared_dtypes(path: Path, archive: np.lib.npyio.NpzFile) -> None:
    """Check the dtypes ``x.npy`` and ``y.npy`` declare in their headers, before loading them."""
    zipped = archive.zip
    if zipped is None:
        return
    for name in ("x", "y"):
        with zipped.open(f"{name}.npy") as member:
            version = np.lib.format.read_magic(member)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0  # fmt: skip
            check_real_dtype(path, f"array {name}", read(member)[2], name)


def _check_declared_sizes(path: Path, archive: np.lib.npyio.NpzFile) -> None:
    """Refuse an archive whose members declare more than :data:`MAX_NPZ_BYTES`, before reading."""
    zipped = archive.zip
    declared = 0 if zipped is None else sum(int(info.file_size) for info in zipped.infolist())
    if declared > MAX_NPZ_BYTES:
        raise DataError(
            f"{path}: its arrays declare {declared:,} bytes; the limit is {MAX_NPZ_BYTES:,}"
        )


def _check_finite(path: Path, what: str, array: np.ndarray) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise DataError(
            f"{path}: {what} contain {int(bad.sum())} NaN or Inf values (first in example {row}); "
            f"remove or fill those rows"
        )


def check_labels(name: str, y: np.ndarray, num_classes: int | None) -> tuple[np.ndarray, int]:
    """Class labels as ints ``0..num_classes-1``; returns ``(labels, num_classes)``.

    ``num_classes`` is the model's output count (``None``: one more than the largest label).
    """
    if y.ndim != 1:
        raise DataError(
            f"{name}: classification needs one label per example, got targets of shape {y.shape}; "
            f"use --task regression for several target columns"
        )
    top_value = float(np.max(y)) if y.size else 0.0
    if not np.all(y == np.round(y)):
        example = y[y != np.round(y)][0]
        raise DataError(
            f"{name}: classification labels must be integers 0, 1, 2, ..., found {example}; "
            f"use --task regression for a continuous target"
        )
    if float(np.min(y)) < 0:
        raise DataError(f"{name}: labels must be >= 0, found {np.min(y):g}; number classes from 0")
    limit = MAX_CLASSES if num_classes is None else num_classes
    if top_value >= limit:
        raise DataError(
            f"{name}: label {_label_text(top_value)} is out of range for "
            + (
                f"a model with {num_classes} classes (labels 0..{num_classes - 1})"
                if num_classes is not None
                else f"the limit of {MAX_CLASSES:,} classes (labels 0..{MAX_CLASSES - 1}); "
                f"number the classes from 0 without gaps, or use --task regression"
            )
        )
    labels = y.astype(np.int64)
    top = int(labels.max())
    if num_classes is None:
        num_classes = top + 1
        if num_classes < 2:
            raise DataError(f"{name}: classification needs at least 2 classes, found only label 0")
    return labels, num_classes


def _label_text(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e21 else f"{value:g}"


def regression_targets(y: np.ndarray) -> np.ndarray:
    """Regression targets as ``(n, outputs)`` float64."""
    return y.reshape(y.shape[0], -1).astype(np.float64)


def split(
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    stratify: bool,
) -> tuple[Split, Split, Split]:
    """Shuffle and split into train, validation and test parts (by class when ``stratify``).

    The parts are ``x[index], y[index]`` for the three index arrays of :func:`split_indices`.
    """
    indices = split_indices(
        y, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction, stratify=stratify
    )
    train, val, test = (Split(x[index], y[index]) for index in indices)
    return train, val, test


def split_indices(
    y: np.ndarray,
    *,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    stratify: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows (int64, in their shuffled order) of the train, validation and test parts.

    Each class (or the whole set) gives ``round(fraction * count)`` examples to test and to
    validation and the rest to training, so the class mix is the same in every part. Only the
    targets ``y`` (one per example) are needed, so a memmapped data set splits without a copy.

    Raises:
        DataError: a part that should hold examples would be empty.
    """
    rng = np.random.default_rng(seed)
    count = len(y)
    groups = [np.flatnonzero(y == label) for label in np.unique(y)] if stratify else [np.arange(count)]  # fmt: skip
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for group in groups:
        order = rng.permutation(group)
        num_test = round(test_fraction * len(order))
        num_val = round(val_fraction * len(order))
        parts[2].append(order[:num_test])
        parts[1].append(order[num_test : num_test + num_val])
        parts[0].append(order[num_test + num_val :])
    result = []
    for name, indices, fraction in zip(
        ("training", "validation", "test"), parts, (1.0, val_fraction, test_fraction), strict=True
    ):
        index = rng.permutation(np.concatenate(indices)).astype(np.int64)
        if fraction > 0 and len(index) == 0:
            raise DataError(
                f"{count} examples leave the {name} part empty; supply more data or change "
                f"--val-fraction/--test-fraction"
            )
        result.append(index)
    return result[0], result[1], result[2]


def standardizer(
    x: np.ndarray, name: str = "data", columns: tuple[str, ...] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and scale of the training features (scale 1 for a constant feature).

    Raises:
        DataError: a feature so large that its mean or its spread overflows float64 (beyond
            about 1e154 the squares do); it would otherwise be silently zeroed.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
    bad = ~(np.isfinite(mean) & np.isfinite(scale))
    if bad.any():
        column = int(np.flatnonzero(bad)[0])
        label = repr(columns[column]) if column < len(columns) else f"{column} (from 0)"
        largest = float(np.max(np.abs(x[:, column])))
        raise DataError(
            f"{name}: feature column {label} holds values up to {largest:.3g}; its standard "
            f"deviation overflows float64, so it cannot be standardised; rescale that column "
            f"(e.g. divide it by {largest:.0e})"
        )
    return mean, np.where(scale > 0, scale, 1.0)


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``(n,)`` int labels to ``(n, num_classes)`` float64 one-hot rows."""
    return np.eye(num_classes)[labels]


def fingerprint(x: np.ndarray, y: np.ndarray) -> str:
    """SHA-256 of the features and targets (shape, dtype and bytes): the same data, the same hash."""
    digest = hashlib.sha256()
    for array in (x, y):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()
