"""Everything ``jaxbp train`` checks and builds before the first step: config, output, data, model.

:func:`prepare` reads no flag twice and writes nothing: it resolves the config (fresh, or from the
checkpoint being resumed, refusing changed settings), checks the output directory, loads and
validates the data, splits and scales it, and builds or restores the model and optimizer state.
Any problem raises a ``ConfigError``, ``DataError`` or ``CheckpointError`` whose one-line message
names it, before a single file is touched.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.cli import build, config, metrics, run_folder
from jaxbp.cli import model as train_model
from jaxbp.data import files as data
from jaxbp.data import npy as data_npy
from jaxbp.layers import Sequential
from jaxbp.model.mlp import MLP
from jaxbp.training import checkpoint

if TYPE_CHECKING:
    from jaxbp._types import Array, Params


@dataclasses.dataclass
class Prepared:
    """A run ready to train: settings, data, and the state to start from.

    ``train``, ``val`` and ``test`` are ``(x, y)`` pairs: arrays on the device, or for ``.npy``
    data :class:`jaxbp.data.sources.Rows` views of the file (standardised and encoded as read).
    """

    config: config.TrainConfig
    out: Path
    spec: MLP | Sequential
    data_name: str
    data_sha256: str
    mean: np.ndarray
    scale: np.ndarray
    train: tuple[Any, Any]
    val: tuple[Any, Any]
    test: tuple[Any, Any]
    steps_per_epoch: int
    lr: Any
    optimizer: Any
    params: Params
    opt_state: Any
    key: Array
    epoch: int
    step: int
    metrics: dict[str, Any]


def prepare(flags: dict[str, str | None], out: str | None, resume: str | None) -> Prepared:
    """Validate and build a run from command-line strings (see ``jaxbp train --help``).

    Writes nothing; the caller claims the output folder (:func:`jaxbp.cli.run_folder.claim`) next.
    """
    saved = path = None
    if resume is None:
        cfg = config.parse(flags)
        out_dir = Path(out) if out is not None else run_folder.default_for(cfg.data)
        if checkpoint.list_checkpoints(out_dir):
            raise config.ConfigError(
                f"{out_dir} already holds a run; continue it with --resume {out_dir}, "
                f"or pass a new --out"
            )
        run_folder.check(out_dir)
    else:
        path = checkpoint.resolve(resume)
        saved = checkpoint.load(path)
        try:
            base = config.TrainConfig.from_json(saved.config)
        except config.ConfigError as error:
            raise checkpoint.CheckpointError(f"{path}: {error}") from None
        cfg = config.parse(flags, base)
        _refuse_changes(path, base, cfg)
        out_dir = path.parent
        if out is not None and Path(out).resolve() != out_dir.resolve():
            raise config.ConfigError(
                f"--out {out} conflicts with --resume, which writes to {out_dir}"
            )
        try:
            mine = checkpoint.order_key(path)
        except ValueError:  # a renamed file: placed by the epochs it has done
            mine = (saved.epoch, 0)
        newer = [
            p.name for p in checkpoint.list_checkpoints(out_dir) if checkpoint.order_key(p) > mine
        ]
        if newer:
            raise config.ConfigError(
                f"{path.name} is not the newest checkpoint in {out_dir} ({', '.join(newer)} "
                f"follow it); move the newer files away to continue from this one"
            )
        if cfg.epochs <= saved.epoch:
            raise config.ConfigError(
                f"{path} has already trained {saved.epoch} epochs; pass --epochs greater "
                f"than {saved.epoch} (the total) to train further"
            )
    if cfg.dtype == "float64" and not jax.config.read("jax_enable_x64"):
        raise config.ConfigError("--dtype float64 needs 64-bit JAX; set JAX_ENABLE_X64=1 first")

    network = None if cfg.model is None else _network(cfg, saved, path)
    dataset: data.Dataset | data_npy.NpyData
    if Path(cfg.data).suffix.lower() == ".npy":
        dataset = data_npy.load_npy(cfg.data, cfg.target)
        features = dataset.features
    else:
        dataset = data.load(cfg.data, cfg.target)
        features = dataset.x.shape[1]
    classification = cfg.task == "classification"
    saved_mlp = saved.spec if saved is not None and isinstance(saved.spec, MLP) else None
    if saved_mlp is not None and features != saved_mlp.sizes[0]:
        raise data.DataError(
            f"{dataset.name} has {features} features but the resumed model takes "
            f"{saved_mlp.sizes[0]}; resume with data of the same columns"
        )
    if classification:
        outputs = saved_mlp.sizes[-1] if saved_mlp is not None else cfg.classes
        targets, outputs = data.check_labels(dataset.name, dataset.y, outputs)
        if network is not None:  # labels 0..8 fit a network of 10 outputs, unless --classes 9
            name, fewer = _model_name(cfg), cfg.classes is None
            outputs = train_model.check_fits(
                network, name, dataset.name, features, outputs, at_least=fewer
            )
    else:
        targets = data.regression_targets(dataset.y)
        outputs = targets.shape[1]
        _check_targets(dataset.name, cfg, targets)
        if network is not None:
            train_model.check_fits(network, _model_name(cfg), dataset.name, features, outputs)
    config.check_size(cfg, features, outputs)
    fractions: dict[str, Any] = dict(
        seed=cfg.seed,
        val_fraction=cfg.val_fraction,
        test_fraction=0.0 if cfg.test_fraction is None else cfg.test_fraction,
        stratify=classification,
    )
    dtype = jnp.dtype(cfg.dtype)
    if isinstance(dataset, data_npy.NpyData):
        fingerprint = dataset.fingerprint
        indices = data.split_indices(targets, **fractions)
        mean, scale = _npy_stats(dataset, indices[0], saved, fingerprint)
        parts = [
            data_npy.views(dataset, index, mean, scale, targets, outputs if classification else None, dtype)
            for index in indices
        ]  # fmt: skip
    else:
        fingerprint = _fingerprint(dataset)
        train, val, test = data.split(dataset.x, targets, **fractions)
        if dataset.test is not None:  # the data set's own test set
            test = _own_test(dataset, classification, outputs)
        mean, scale = data.standardizer(train.x, dataset.name, dataset.columns)

        def device(part: data.Split) -> tuple[Any, Any]:
            y = data.one_hot(part.y, outputs) if classification else part.y
            return jnp.asarray((part.x - mean) / scale, dtype), jnp.asarray(y, dtype)

        parts = [device(train), device(val), device(test)]
    train_rows = len(parts[0][0])
    if cfg.batch_size is not None and cfg.batch_size > train_rows:
        raise config.ConfigError(
            f"--batch-size {cfg.batch_size} is larger than the {train_rows} training examples; "
            f"pass at most {train_rows}, or 'full'"
        )
    steps = 1 if cfg.batch_size is None else train_rows // cfg.batch_size
    config.check_steps(cfg, steps)

    spec = network if network is not None else build.build_spec(cfg, features, outputs)
    lr, optimizer = build.build_optimizer(cfg, steps)
    init_key, shuffle_key = jax.random.split(jax.random.key(cfg.seed))
    params = spec.init(init_key, dtype)
    opt_state = None if optimizer is None else optimizer.init(params)
    if saved is None:
        epoch = step = 0
        history: dict[str, Any] = {}
    else:
        assert path is not None
        params, opt_state = _restore(path, saved, cfg, spec, params, opt_state, steps, mean.shape)
        shuffle_key = jax.random.wrap_key_data(jnp.asarray(saved.key))
        epoch, step, history = saved.epoch, saved.step, saved.metrics
        if history.get("data_sha256") != fingerprint:
            history["data_changed_at_epoch"] = epoch
    return Prepared(
        cfg,
        out_dir,
        spec,
        dataset.name,
        fingerprint,
        mean,
        scale,
        parts[0],
        parts[1],
        parts[2],
        steps,
        lr,
        optimizer,
        params,
        opt_state,
        shuffle_key,
        epoch,
        step,
        history,
    )


def _model_name(cfg: config.TrainConfig) -> str:
    return cfg.model or ""


def _network(
    cfg: config.TrainConfig, saved: checkpoint.Checkpoint | None, path: Path | None
) -> Sequential:
    """The ``--model`` network: built from the preset or file for a new run, the checkpoint's own
    description when resuming (so a model file that has since changed or moved does not matter)."""
    if saved is None:
        network = train_model.load_network(_model_name(cfg))
    elif isinstance(saved.spec, Sequential):
        network = saved.spec
    else:
        raise checkpoint.CheckpointError(
            f"{path}: the saved config names --model {Path(_model_name(cfg)).name} but the "
            f"checkpoint holds no layer network"
        )
    config.check_parameter_count(cfg, train_model.parameter_count(network))
    return network


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
    saved: checkpoint.Checkpoint | None,
    fingerprint: str,
) -> tuple[np.ndarray, np.ndarray]:
    """The feature mean and scale: a resumed run's own when its data is unchanged (they were
    computed from this very data, so the file is not read again), else from the training rows."""
    if saved is not None and saved.metrics.get("data_sha256") == fingerprint:
        mean, scale = saved.arrays.get("mean"), saved.arrays.get("scale")
        if (
            mean is not None
            and scale is not None
            and mean.shape == scale.shape == (dataset.features,)
        ):
            return np.asarray(mean, np.float64), np.asarray(scale, np.float64)
    return data_npy.train_stats(dataset, train)


def _check_targets(name: str, cfg: config.TrainConfig, targets: np.ndarray) -> None:
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


def _restore(
    path: Path,
    saved: checkpoint.Checkpoint,
    cfg: config.TrainConfig,
    spec: MLP | Sequential,
    params: Params,
    opt_state: Any,
    steps: int,
    features: tuple[int, ...],
) -> tuple[Params, Any]:
    """The checkpoint's params and optimizer state in the fresh model's trees, every field checked."""
    checkpoint.check_spec(path, saved, spec)
    restored = checkpoint.load(path, params=params, opt_state=opt_state)
    inside = saved.step - saved.epoch * steps
    if not 0 <= inside < steps:
        raise checkpoint.CheckpointError(
            f"{path}: step {saved.step} does not match epoch {saved.epoch} at {steps} steps "
            f"per epoch"
        )
    _check_partial_epoch(path, saved.metrics, inside)
    for name in ("mean", "scale"):
        array = saved.arrays.get(name)
        if array is None or array.shape != features:
            raise checkpoint.CheckpointError(f"{path}: the feature {name} is missing or misshapen")
    if not (saved.arrays["scale"] > 0).all():
        raise checkpoint.CheckpointError(f"{path}: the feature scale holds values <= 0")
    for key in metrics.EPOCH_KEYS:
        values = saved.metrics.get(key)
        if (
            not isinstance(values, list)
            or len(values) != saved.epoch
            or not all(
                value is None or (isinstance(value, int | float) and not isinstance(value, bool))
                for value in values
            )
        ):
            raise checkpoint.CheckpointError(
                f"{path}: metrics {key!r} is not a list of {saved.epoch} numbers"
            )
    for key in ("train_seconds", "wall_seconds"):
        value = saved.metrics.get(key, 0.0)
        if not isinstance(value, int | float) or isinstance(value, bool) or not value >= 0:
            raise checkpoint.CheckpointError(f"{path}: metrics {key!r} is not a number >= 0")
    return jax.tree.map(jnp.asarray, restored.params), (
        None if opt_state is None else jax.tree.map(jnp.asarray, restored.opt_state)
    )


def _check_partial_epoch(path: Path, saved: dict[str, Any], inside: int) -> None:
    """A checkpoint inside an epoch carries the loss sum of the epoch's steps done so far (one at
    an epoch's end carries none), and ``first_loss``, if saved, is a finite number."""
    first = saved.get("first_loss")
    if first is not None and (
        not isinstance(first, int | float) or isinstance(first, bool) or not np.isfinite(first)
    ):
        raise checkpoint.CheckpointError(f"{path}: metrics 'first_loss' is not a finite number")
    partial = saved.get("partial_epoch")
    if inside == 0 and partial is None:
        return
    if (
        inside == 0
        or not isinstance(partial, dict)
        or partial.get("steps") != inside
        or not isinstance(partial.get("loss_sum"), int | float)
        or isinstance(partial.get("loss_sum"), bool)
        or not np.isfinite(partial["loss_sum"])
    ):
        raise checkpoint.CheckpointError(
            f"{path}: metrics 'partial_epoch' does not hold the loss sum of its {inside} steps "
            f"inside the epoch"
        )


def _refuse_changes(path: Path, saved: config.TrainConfig, asked: config.TrainConfig) -> None:
    for field in dataclasses.fields(config.TrainConfig):
        name = field.name
        if name in config.RESUMABLE:
            continue
        before, after = getattr(saved, name), getattr(asked, name)
        if before != after:
            flag = "--" + name.replace("_", "-")
            raise config.ConfigError(
                f"{flag} {_text(name, after)} differs from the checkpoint's {_text(name, before)} "
                f"({path}); "
                f"a resumed run keeps its architecture and settings: drop {flag}, or start a "
                f"new run with --out"
            )


def _text(name: str, value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    if value is None:
        return {"batch_size": "full", "model": "(the MLP of --hidden)"}.get(name, "none")
    return str(value)
