"""A trained run as ``jaxbp predict`` and ``jaxbp evaluate`` use it, and their input, checked.

:func:`load` reads a run folder's newest checkpoint (or a checkpoint file): its config, network,
parameters, feature scaling, target scaling, class names and CSV feature columns, every part
checked. :func:`read_inputs` reads new data (``.csv``, ``.npy`` or ``.npz``) with the checks of
training: the same columns (by name for a CSV, in any order; the run's target column is set
aside), the same feature count, no NaN or infinity, no value beyond the overflow limit of
:mod:`jaxbp.cli.feature_checks`. :func:`outputs` runs the network on them, in blocks, and undoes
the target scaling. Every problem raises one line naming the file, row and column.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.cli import feature_checks, table
from jaxbp.cli.config import ConfigError, TrainConfig
from jaxbp.data import files as data
from jaxbp.data import npy as data_npy
from jaxbp.layers.sequential import Sequential
from jaxbp.model.mlp import MLP
from jaxbp.model.steps import predict
from jaxbp.training import checkpoint

#: The errors that mean bad input (exit 2).
INPUT_ERRORS = (data.DataError, checkpoint.CheckpointError, ConfigError)
#: Rows predicted at a time.
BLOCK_ROWS = 65536


@dataclasses.dataclass(frozen=True)
class Trained:
    """What a checkpoint holds for predicting: see :func:`load`."""

    path: Path
    config: TrainConfig
    spec: MLP | Sequential
    params: Any
    mean: np.ndarray
    scale: np.ndarray
    target_mean: np.ndarray | None
    target_scale: float
    class_names: tuple[str, ...] | None
    columns: tuple[str, ...]

    @property
    def features(self) -> int:
        return int(self.mean.shape[0])

    @property
    def outputs(self) -> int:
        spec = self.spec
        return spec.sizes[-1] if isinstance(spec, MLP) else int(spec.output_shape[-1])

    def class_name(self, index: int) -> str:
        names = self.class_names
        return names[index] if names is not None and index < len(names) else str(index)


def load(run: str) -> Trained:
    """The newest checkpoint of the run folder ``run`` (or the checkpoint file ``run``).

    Raises:
        CheckpointError: one line naming the file and what is missing or wrong.
    """
    path = checkpoint.resolve(run)
    saved = checkpoint.load(path)
    try:
        cfg = TrainConfig.from_json(saved.config)
    except ConfigError as error:
        raise checkpoint.CheckpointError(f"{path}: {error}") from None
    if saved.spec is None:
        raise checkpoint.CheckpointError(f"{path}: holds no network description")
    mean, scale = saved.arrays.get("mean"), saved.arrays.get("scale")
    if mean is None or scale is None or mean.ndim != 1 or mean.shape != scale.shape:
        raise checkpoint.CheckpointError(f"{path}: the feature mean or scale is missing or misshapen")  # fmt: skip
    target_mean, target_scale = saved.arrays.get("target_mean"), saved.arrays.get("target_scale")
    if cfg.scale_targets and (target_mean is None or target_scale is None or not float(target_scale) > 0):  # fmt: skip
        raise checkpoint.CheckpointError(f"{path}: the target mean or scale is missing")
    names, columns = saved.metrics.get("class_names"), saved.metrics.get("columns") or []
    for key, value in (("class_names", names or []), ("columns", columns)):
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise checkpoint.CheckpointError(f"{path}: metrics {key!r} is not a list of names")
    if columns and len(columns) != mean.shape[0]:
        raise checkpoint.CheckpointError(f"{path}: {len(columns)} columns for {mean.shape[0]} features")  # fmt: skip
    return Trained(
        path, cfg, saved.spec, jax.tree.map(jnp.asarray, saved.params),
        np.asarray(mean, np.float64), np.asarray(scale, np.float64),
        None if not cfg.scale_targets or target_mean is None else np.asarray(target_mean, np.float64),
        float(target_scale) if cfg.scale_targets and target_scale is not None else 1.0,
        None if names is None else tuple(names), tuple(columns),
    )  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Inputs:
    """New data: ``x`` float64 ``(rows, features)`` in the run's column order, the raw targets
    (``None`` without), and how to name a row in messages."""

    name: str
    x: np.ndarray
    targets: table.Table | np.ndarray | None
    row_text: Callable[[int], str]


def read_inputs(run: Trained, path: str, target: str | None) -> Inputs:
    """Read ``path`` and check it as training checks its data; ``target`` (evaluate): the
    target column or ``.npy``; ``None`` (predict): the run's target column, if present, is
    set aside.

    Raises:
        DataError: one line naming the file, and the row and column.
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        inputs = _csv(run, Path(path), target)
    elif suffix == ".npy":
        inputs = _npy(run, Path(path), target)
    elif suffix == ".npz":
        inputs = _npz(run, Path(path), target)
    else:
        raise data.DataError(f"{path}: unsupported file type {suffix or '(none)'!r}; use .csv, .npy or .npz")  # fmt: skip
    with np.errstate(over="ignore", invalid="ignore"):
        z = (inputs.x - run.mean) / run.scale
    feature_checks.check_block(
        z, run.config.dtype, name=inputs.name, split="", rows=np.arange(len(z)),
        row_text=inputs.row_text, columns=run.columns, x=inputs.x,
    )  # fmt: skip
    return inputs


def _csv(run: Trained, path: Path, target: str | None) -> Inputs:
    read = table.read_csv(path, target if target is not None else run.config.target)
    lines = read.lines

    def row_text(row: int) -> str:
        return f"line {lines[row]}"

    if target is not None and read.target is None:
        raise data.DataError(f"{path}: no target column {target!r}; the columns are {', '.join(read.columns)}; pass --target NAME")  # fmt: skip
    x = read.x
    if run.columns:
        missing = [c for c in run.columns if c not in read.columns]
        extra = [c for c in read.columns if c not in run.columns]
        if missing or extra:
            problem = f"no column {missing[0]!r}" if missing else f"column {extra[0]!r} was not a feature of the run"  # fmt: skip
            raise data.DataError(
                f"{path}: {problem}; the run was trained on the columns {', '.join(run.columns)}"
                f" (and the target {run.config.target!r}); give exactly those columns"
            )
        x = x[:, [read.columns.index(c) for c in run.columns]]
    elif x.shape[1] != run.features:
        raise data.DataError(
            f"{path}: {x.shape[1]} feature columns but the run takes {run.features}"
        )
    return Inputs(read.name, x, read if target is not None else None, row_text)


def _npy(run: Trained, path: Path, target: str | None) -> Inputs:
    """Evaluate: ``x.npy`` with ``--target`` as training takes it. Predict: features alone, or
    with the run's target column (``--target COLUMN_INDEX``), which is set aside."""
    if target is not None:
        opened = data_npy.load_npy(path, target)
        if opened.features != run.features:
            raise data.DataError(f"{path}: {opened.features} features but the run takes {run.features}")  # fmt: skip
        return Inputs(path.name, opened.feature_rows(np.asarray(opened.x)), opened.y, _from_zero)
    x = _open_npy(path)
    column = run.config.target
    if x.shape[1] == run.features + 1 and column.lstrip("-").isdigit():
        x = np.delete(x, int(column) % x.shape[1], axis=1)
    if x.shape[1] != run.features:
        raise data.DataError(
            f"{path}: x has {x.shape[1]} columns but the run takes {run.features} features"
        )
    return Inputs(path.name, x, None, _from_zero)


def _from_zero(row: int) -> str:
    return f"row {row} (from 0)"


def _open_npy(path: Path) -> np.ndarray:
    """A 2-D ``.npy`` of real numbers, read whole as float64, every value finite."""
    if not path.is_file():
        raise data.DataError(f"{path}: no such file; check the path given to --data")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise data.DataError(f"{path}: not a readable .npy file ({error})") from None
    if array.dtype.kind not in "biuf" or array.ndim != 2 or array.shape[0] == 0:
        raise data.DataError(
            f"{path}: holds {array.dtype} of shape {array.shape}; --data needs a 2-D array of "
            f"real numbers (examples, features) with at least one row"
        )
    x = np.asarray(array, np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise data.DataError(f"{path}: NaN or Inf at row {row}, column {column} (counting from 0); remove or fill those rows")  # fmt: skip
    return x


def _npz(run: Trained, path: Path, target: str | None) -> Inputs:
    dataset = data.load_file(path) if target is not None else None
    if dataset is None:
        try:
            with np.load(path, allow_pickle=False) as archive:
                x = np.asarray(archive["x"], np.float64) if "x" in archive.files else None
        except (OSError, ValueError, EOFError) as error:
            raise data.DataError(f"{path}: not a readable .npz file ({error})") from None
        if x is None or x.ndim != 2 or not np.isfinite(x).all():
            raise data.DataError(f"{path}: needs an array x of shape (examples, features), every value finite")  # fmt: skip
    else:
        x = dataset.x
    if x.shape[1] != run.features:
        raise data.DataError(f"{path}: x has {x.shape[1]} features but the run takes {run.features}")  # fmt: skip
    return Inputs(path.name, x, None if dataset is None else dataset.y, lambda row: f"example {row} (from 0)")  # fmt: skip


def outputs(run: Trained, x: np.ndarray) -> np.ndarray:
    """The network's outputs for the raw features ``x``, float64 ``(rows, outputs)``, in the
    targets' own units for regression."""
    dtype = jnp.dtype(run.config.dtype)
    parts = []
    for start in range(0, len(x), BLOCK_ROWS):
        z = (x[start : start + BLOCK_ROWS] - run.mean) / run.scale
        parts.append(np.asarray(_predict(run.spec, run.params, jnp.asarray(z, dtype)), np.float64))  # fmt: skip
    values = np.concatenate(parts) if parts else np.zeros((0, run.outputs))
    if run.target_mean is not None:
        values = values * run.target_scale + run.target_mean
    return values


_predict = jax.jit(predict, static_argnums=0)
