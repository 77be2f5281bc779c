"""The same check of every split's features, after standardising: training, validation and test.

The training rows are standardised by their own mean and scale, so their values stay within
``sqrt(rows)`` standard deviations; a validation or test row (or a row given to ``jaxbp predict``
or ``jaxbp evaluate``) can lie much further out, and beyond :func:`limit` its standardised value
overflows ``--dtype`` in the first layer or the loss, and the run reports ``nan``. Every split is
checked the same way, and the first bad value is named by split, row and column.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from jaxbp.data.files import DataError


def limit(dtype: str) -> float:
    """The largest standardised feature accepted: the square root of ``dtype``'s largest value
    (float32: 1.8e19), so that its square, as a squared error takes it, stays finite."""
    return math.sqrt(float(np.finfo(np.dtype(dtype)).max))


def check_block(
    z: np.ndarray,
    dtype: str,
    *,
    name: str,
    split: str,
    rows: np.ndarray,
    row_text: Callable[[int], str],
    columns: Sequence[str] = (),
    x: np.ndarray | None = None,
) -> None:
    """Refuse a standardised block ``z`` (float64, ``(n, features)``) with a value that is not
    finite or beyond :func:`limit`.

    Args:
        z: the standardised features.
        dtype: the run's ``--dtype``.
        name: the data's name, for the message.
        split: ``"training"``, ``"validation"``, ``"test"`` or another name of the rows.
        rows: the file's row number of each row of ``z``.
        row_text: the words for a file row (``line 12``, ``row 10 (from 0)``).
        columns: the feature names, if any.
        x: the raw features of the block, to quote the value as given.

    Raises:
        DataError: naming the split, the row, the column and the value.
    """
    bound = limit(dtype)
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(z) <= bound)
    if not bad.any():
        return
    row, column = (int(i) for i in np.argwhere(bad)[0])
    label = repr(columns[column]) if column < len(columns) else f"{column} (from 0)"
    value = z[row, column] if x is None else x[row, column]
    raise DataError(
        f"{name}: {split + ' ' if split else ''}{row_text(int(rows[row]))}, feature column "
        f"{label}: the value {value:.6g} "
        f"is {abs(z[row, column]):.3g} standard deviations from the training mean, beyond the "
        f"limit of {bound:.3g} for --dtype {dtype} (it would overflow to inf or nan); fix or "
        f"remove that row, or rescale the column"
    )


def check_splits(
    x: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    dtype: str,
    *,
    name: str,
    splits: Sequence[tuple[str, np.ndarray]],
    row_text: Callable[[int], str],
    columns: Sequence[str] = (),
) -> None:
    """:func:`check_block` on each split's rows of ``x`` (in file order, so the first bad row of
    the file in a split is named)."""
    for split, index in splits:
        rows = np.sort(index)
        with np.errstate(over="ignore", invalid="ignore"):
            z = (x[rows] - mean) / scale
        check_block(z, dtype, name=name, split=split, rows=rows, row_text=row_text,
                    columns=columns, x=x[rows])  # fmt: skip
