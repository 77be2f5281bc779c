"""The data of a ``jaxbp train`` run: read, checked against the model, split, scaled and encoded.

:func:`load_data` reads the file (``.npy`` streamed, anything else whole), checks the labels or
regression targets (and that a ``--model`` network fits them), splits it with ``--seed``,
standardises the features with the training part's mean and scale, and one-hot encodes labels.
The parts are arrays on the device, or for ``.npy`` data :class:`jaxbp.data.sources.Rows` views
of the file (standardised and encoded as read).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax.numpy as jnp
import numpy as np

from jaxbp.cli import feature_checks, limits, table
from jaxbp.data import files as data
from jaxbp.data import npy as data_npy
from jaxbp.model.mlp import MLP
from jaxbp.training import checkpoint

if TYPE_CHECKING:
    from jaxbp.cli.config import TrainConfig
    from jaxbp.cli.prepare import Resumed
    from jaxbp.layers.sequential import Sequential


@dataclasses.dataclass(frozen=True)
class Data:
    """A run's data, ready to train on.

    ``train``, ``val`` and ``test`` are ``(x, y)`` pairs (``y`` one-hot of ``outputs`` columns for
    classification); ``mean`` and ``scale`` (float64, one per feature) standardised them;
    ``fingerprint`` is the SHA-256 of the whole data set, as saved in checkpoints. ``columns``
    are a CSV's feature names; ``class_names`` the names of a CSV's text labels (class ``i`` is
    ``class_names[i]``); ``target_mean`` and ``target_scale`` standardised regression targets
    (``None`` and 1 when they are as given).
    """

    name: str
    fingerprint: str
    features: int
    outputs: int
    mean: np.ndarray
    scale: np.ndarray
    train: tuple[Any, Any]
    val: tuple[Any, Any]
    test: tuple[Any, Any]
    columns: tuple[str, ...] = ()
    class_names: tuple[str, ...] | None = None
    target_mean: np.ndarray | None = None
    target_scale: float = 1.0

    @property
    def loss_factor(self) -> float:
        """What a loss on the standardised targets is multiplied by to be in their own units
        (``scale**2``: the losses that scaling applies to are squared errors)."""
        return self.target_scale**2


def load_data(cfg: TrainConfig, network: Sequential | None, resumed: Resumed | None) -> Data:
    """The data ``cfg.data`` names, checked against ``network`` (or the resumed MLP) and split.

    Raises:
        DataError: one line naming the file and what is wrong with it.
    """
    dataset: data.Dataset | data_npy.NpyData
    names: tuple[str, ...] | None = None
    if Path(cfg.data).suffix.lower() == ".npy":
        dataset = data_npy.load_npy(cfg.data, cfg.target)
        features = dataset.features
    else:
        dataset, names = _read(cfg, resumed)
        features = dataset.x.shape[1]
        _check_resumed_columns(cfg, dataset, resumed)
    targets, outputs = _targets(cfg, dataset.name, dataset.y, features, network, resumed)
    fractions: dict[str, Any] = dict(
        seed=cfg.seed,
        val_fraction=cfg.val_fraction,
        test_fraction=0.0 if cfg.test_fraction is None else cfg.test_fraction,
        stratify=cfg.task == "classification",
    )
    if isinstance(dataset, data_npy.NpyData):
        indices = data.split_indices(targets, **fractions)
        fingerprint = dataset.fingerprint
        mean, scale = _npy_stats(dataset, indices[0], resumed, fingerprint)
        _check_npy_splits(dataset, indices, mean, scale, cfg.dtype)
        encoded = outputs if cfg.task == "classification" else None
        target_mean, target_scale = _target_stats(cfg, targets[indices[0]], resumed)
        if target_mean is not None:
            targets = (targets - target_mean) / target_scale
        parts = [
            data_npy.views(dataset, index, mean, scale, targets, encoded, jnp.dtype(cfg.dtype))
            for index in indices
        ]
        columns: tuple[str, ...] = ()
    else:
        fingerprint = _fingerprint(dataset)
        indices = data.split_indices(targets, **fractions)
        target_mean, target_scale = _target_stats(cfg, targets[indices[0]], resumed)
        mean, scale, parts = _in_memory(cfg, dataset, targets, outputs, indices, (target_mean, target_scale))  # fmt: skip
        columns = dataset.columns
    train, val, test = parts
    return Data(dataset.name, fingerprint, features, outputs, mean, scale, train, val, test,
                columns, names, target_mean, target_scale)  # fmt: skip


def _check_resumed_columns(cfg: TrainConfig, dataset: data.Dataset, resumed: Resumed | None) -> None:  # fmt: skip
    """A resumed run's weights belong to its features by position: a CSV must give the run's
    feature columns by the same names in the same order (``b, a`` for ``a, b`` would feed each
    weight the other feature)."""
    saved = resumed.saved.metrics.get("columns") if resumed is not None else None
    if not saved or not dataset.columns or list(dataset.columns) == list(saved):
        return
    same = sorted(dataset.columns) == sorted(map(str, saved))
    fix = " (in that order): put the columns in the run's order" if same else ": resume with data of the run's columns"  # fmt: skip
    raise data.DataError(
        f"{cfg.data}: the feature columns are {', '.join(dataset.columns)} but the run was "
        f"trained on {', '.join(map(str, saved))}{fix}"
    )


def _read(cfg: TrainConfig, resumed: Resumed | None) -> tuple[data.Dataset, tuple[str, ...] | None]:  # fmt: skip
    """A CSV, ``.npz`` or built-in data set; for classification, a CSV's target column may hold
    class names (a resumed run maps them with its own names, whatever the new file holds)."""
    saved = resumed.saved.metrics.get("class_names") if resumed is not None else None
    if saved is not None and (not isinstance(saved, list) or not all(isinstance(n, str) for n in saved)):  # fmt: skip
        raise checkpoint.CheckpointError(f"{resumed.path if resumed else ''}: metrics 'class_names' is not a list of names")  # fmt: skip
    csv = Path(cfg.data).suffix.lower() == ".csv"
    if not (csv and cfg.task == "classification"):
        return data.load(cfg.data, cfg.target), None
    first: data.DataError | None = None
    if saved is None:
        try:
            return data.load(cfg.data, cfg.target), None
        except data.DataError as error:
            first = error
    try:
        read = table.read_csv(cfg.data, cfg.target)
    except data.DataError:
        if first is not None:  # the file's first problem, as the numeric reader words it
            raise first from None
        raise
    if read.target is None or (saved is None and table.is_numeric(read.target)):
        if first is not None:
            raise first
        raise data.DataError(f"{cfg.data}: no target column {cfg.target!r}; the columns are {', '.join(read.columns)}; pass --target NAME")  # fmt: skip
    labels, names = table.encode_labels(read, cfg.target, saved)
    if len(names) > limits.MAX_CLASSES:
        raise data.DataError(f"{cfg.data}: the column {cfg.target!r} holds {len(names):,} different class names; the limit is {limits.MAX_CLASSES:,} classes")  # fmt: skip
    return data.Dataset(read.x, labels.astype(np.float64), read.name, read.columns), names


def _target_stats(
    cfg: TrainConfig, train: np.ndarray, resumed: Resumed | None
) -> tuple[np.ndarray | None, float]:
    """The regression targets' mean (per output) and one scale for all outputs (the root of the
    mean of their variances, so a loss in their units is the scaled loss times ``scale**2``):
    a resumed run's own, else from the training rows; ``(None, 1.0)`` when not scaling."""
    if not cfg.scale_targets:
        return None, 1.0
    if resumed is not None:
        saved_mean = resumed.saved.arrays.get("target_mean")
        saved_scale = resumed.saved.arrays.get("target_scale")
        if (
            saved_mean is None
            or saved_scale is None
            or saved_mean.shape != (train.shape[1],)
            or saved_scale.shape != ()
            or not float(saved_scale) > 0
        ):
            raise checkpoint.CheckpointError(
                f"{resumed.path}: the target mean or scale is missing or misshapen"
            )
        return np.asarray(saved_mean, np.float64), float(saved_scale)
    scale = float(np.sqrt(np.mean(train.var(axis=0))))
    return train.mean(axis=0), scale if np.isfinite(scale) and scale > 0 else 1.0


def _targets(
    cfg: TrainConfig,
    name: str,
    y: np.ndarray,
    features: int,
    network: Sequential | None,
    resumed: Resumed | None,
) -> tuple[np.ndarray, int]:
    """The labels or regression targets, checked, and the model's output count."""
    saved = resumed.saved.spec if resumed is not None else None
    saved_mlp = saved if isinstance(saved, MLP) else None
    if saved_mlp is not None and features != saved_mlp.sizes[0]:
        raise data.DataError(
            f"{name} has {features} features but the resumed model takes "
            f"{saved_mlp.sizes[0]}; resume with data of the same columns"
        )
    choice = cfg.model or ""
    if cfg.task == "classification":
        wanted = saved_mlp.sizes[-1] if saved_mlp is not None else cfg.classes
        targets, outputs = data.check_labels(name, y, wanted)
        if network is not None:  # labels 0..8 fit a network of 10 outputs, unless --classes 9
            fewer = cfg.classes is None
            outputs = check_fits(network, choice, name, features, outputs, at_least=fewer)  # fmt: skip
    else:
        targets = data.regression_targets(y)
        outputs = targets.shape[1]
        check_targets(name, cfg, targets)
        if network is not None:
            check_fits(network, choice, name, features, outputs)
    limits.check_size(cfg, features, outputs)
    return targets, outputs


def _in_memory(
    cfg: TrainConfig,
    dataset: data.Dataset,
    targets: np.ndarray,
    outputs: int,
    indices: tuple[np.ndarray, np.ndarray, np.ndarray],
    target_stats: tuple[np.ndarray | None, float],
) -> tuple[np.ndarray, np.ndarray, list[tuple[Any, Any]]]:
    """The mean, the scale and the three parts on the device, of data read whole."""
    classification = cfg.task == "classification"
    train, val, test = (data.Split(dataset.x[index], targets[index]) for index in indices)
    if dataset.test is not None:  # the data set's own test set
        test = _own_test(dataset, classification, outputs)
    mean, scale = data.standardizer(train.x, dataset.name, dataset.columns)
    csv = Path(dataset.name).suffix.lower() == ".csv"
    row_text = _line if csv else _example
    splits = list(zip(SPLITS, indices, strict=True))
    if dataset.test is not None:  # its own test set is checked below
        splits = splits[:2]
    feature_checks.check_splits(dataset.x, mean, scale, cfg.dtype, splits=splits, name=dataset.name,
                                row_text=row_text, columns=dataset.columns)  # fmt: skip
    if dataset.test is not None:
        own = [("test", np.arange(len(test.x)))]
        feature_checks.check_splits(test.x, mean, scale, cfg.dtype, splits=own, name=dataset.name,
                                    row_text=_example, columns=dataset.columns)  # fmt: skip
    dtype = jnp.dtype(cfg.dtype)

    target_mean, target_scale = target_stats

    def device(part: data.Split) -> tuple[Any, Any]:
        y = data.one_hot(part.y, outputs) if classification else part.y
        if target_mean is not None:
            y = (y - target_mean) / target_scale
        return jnp.asarray((part.x - mean) / scale, dtype), jnp.asarray(y, dtype)

    return mean, scale, [device(train), device(val), device(test)]


#: The parts of a split, as messages name them.
SPLITS = ("training", "validation", "test")


def _line(row: int) -> str:
    return f"line {row + 2}"  # the header is line 1


def _example(row: int) -> str:
    return f"example {row} (from 0)"


def _check_npy_splits(
    dataset: data_npy.NpyData,
    indices: tuple[np.ndarray, np.ndarray, np.ndarray],
    mean: np.ndarray,
    scale: np.ndarray,
    dtype: str,
) -> None:
    """The check of :mod:`jaxbp.cli.feature_checks` on every split of a ``.npy``, in one pass
    over the file a block at a time."""
    part = np.full(len(dataset.x), -1, np.int8)
    for number, index in enumerate(indices):
        part[index] = number
    read = data_npy.row_reader(
        dataset.x
    )  # by system calls, not the mapping: no page stays resident
    for start in range(0, len(dataset.x), dataset.block_rows):
        stop = min(start + dataset.block_rows, len(dataset.x))
        raw = dataset.feature_rows(read(np.arange(start, stop)))
        with np.errstate(over="ignore", invalid="ignore"):
            z = (raw - mean) / scale
            bad = ~(np.abs(z) <= feature_checks.limit(dtype))
        bad[part[start:stop] < 0] = False  # rows of no split
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            feature_checks.check_block(
                z[row : row + 1], dtype, name=dataset.name, split=SPLITS[part[start + row]],
                rows=np.array([start + row]), row_text=lambda r: f"row {r} (from 0)",
                x=raw[row : row + 1],
            )  # fmt: skip


def _own_test(dataset: data.Dataset, classification: bool, outputs: int) -> data.Split:
    assert dataset.test is not None
    if classification:
        labels, _ = data.check_labels(f"{dataset.name} (test set)", dataset.test.y, outputs)
        return data.Split(dataset.test.x, labels)
    return data.Split(dataset.test.x, data.regression_targets(dataset.test.y))


def _fingerprint(dataset: data.Dataset) -> str:
    if dataset.test is None:
        return data.fingerprint(dataset.x, dataset.y)
    x = np.concatenate([dataset.x, dataset.test.x])
    return data.fingerprint(x, np.concatenate([dataset.y, dataset.test.y]))


def _npy_stats(
    dataset: data_npy.NpyData,
    train: np.ndarray,
    resumed: Resumed | None,
    fingerprint: str,
) -> tuple[np.ndarray, np.ndarray]:
    """The feature mean and scale: a resumed run's own when its data is unchanged (they were
    computed from this very data, so the file is not read again), else from the training rows."""
    if resumed is not None and resumed.saved.metrics.get("data_sha256") == fingerprint:
        mean, scale = resumed.saved.arrays.get("mean"), resumed.saved.arrays.get("scale")
        if (
            mean is not None
            and scale is not None
            and mean.shape == scale.shape == (dataset.features,)
        ):
            return np.asarray(mean, np.float64), np.asarray(scale, np.float64)
    return data_npy.train_stats(dataset, train)


def check_targets(name: str, cfg: TrainConfig, targets: np.ndarray) -> None:
    """Refuse regression targets whose losses would overflow ``cfg.dtype``, or outside [0, 1]
    for ``binary_cross_entropy`` (training's data, and ``jaxbp evaluate``'s)."""
    largest = float(np.max(np.abs(targets))) if targets.size else 0.0
    if largest > float(np.finfo(np.dtype(cfg.dtype)).max) / 4:
        raise data.DataError(
            f"{name}: a target of size {largest:.3g} does not fit --dtype {cfg.dtype} (its "
            f"losses would overflow); rescale the targets"
        )
    if cfg.loss == "binary_cross_entropy" and ((targets < 0) | (targets > 1)).any():
        raise data.DataError(
            f"{name}: --loss binary_cross_entropy needs targets in [0, 1], found "
            f"{targets.min():g}..{targets.max():g}; use --loss mse"
        )


def check_fits(
    network: Sequential,
    choice: str,
    data_name: str,
    features: int,
    outputs: int,
    *,
    at_least: bool = False,
) -> int:
    """Refuse a network that does not fit the data; returns its output count.

    Args:
        network: the network.
        choice: what ``--model`` named (for the message).
        data_name: the data set's name.
        features: features per example.
        outputs: classes or regression targets the data needs.
        at_least: accept more outputs than ``outputs`` (classes counted from the largest label).

    Raises:
        DataError: the network's input or output shape does not fit.
    """
    name = Path(choice).name
    if network.input_shape != (features,):
        raise data.DataError(
            f"--model {name} takes examples of shape {network.input_shape} but {data_name} has "
            f"{features} features; use a model whose input_shape is [{features}] (a Reshape layer "
            f"first gives it channels)"
        )
    given = network.output_shape
    if len(given) != 1 or given[0] < outputs or (given[0] > outputs and not at_least):
        wanted = f"at least {outputs}" if at_least else f"({outputs},)"
        raise data.DataError(
            f"--model {name} gives outputs of shape {given} per example but {data_name} needs "
            f"{wanted}; end the model with a Dense layer of {outputs} features"
        )
    return given[0]
