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
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp import _files, checkpoint, config, data
from jaxbp._types import Array, Params
from jaxbp.mlp import MLP


@dataclasses.dataclass
class Prepared:
    """A run ready to train: settings, data on the device, and the state to start from."""

    config: config.TrainConfig
    out: Path
    spec: MLP
    data_name: str
    data_sha256: str
    mean: np.ndarray
    scale: np.ndarray
    train: tuple[Array, Array]
    val: tuple[Array, Array]
    test: tuple[Array, Array]
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
    """Validate and build a run from command-line strings (see ``jaxbp train --help``)."""
    saved = path = None
    if resume is None:
        cfg = config.parse(flags)
        out_dir = Path(out or f"runs/{Path(cfg.data).stem}")
        if checkpoint.list_checkpoints(out_dir):
            raise config.ConfigError(
                f"{out_dir} already holds a run; continue it with --resume {out_dir}, "
                f"or pass a new --out"
            )
    else:
        path = checkpoint.resolve(resume)
        saved = checkpoint.load(path)
        base = config.TrainConfig.from_json(saved.config)
        cfg = config.parse(flags, base)
        _refuse_changes(path, base, cfg)
        out_dir = path.parent
        if out is not None and Path(out).resolve() != out_dir.resolve():
            raise config.ConfigError(
                f"--out {out} conflicts with --resume, which writes to {out_dir}"
            )
        newer = [p.name for p in checkpoint.list_checkpoints(out_dir) if p.name > path.name]
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

    dataset = data.load_digits() if cfg.data == "digits" else data.load_file(cfg.data, cfg.target)
    classification = cfg.task == "classification"
    if saved is not None and dataset.x.shape[1] != saved.spec.sizes[0]:
        raise data.DataError(
            f"{dataset.name} has {dataset.x.shape[1]} features but the resumed model takes "
            f"{saved.spec.sizes[0]}; resume with data of the same columns"
        )
    if classification:
        outputs = saved.spec.sizes[-1] if saved is not None else cfg.classes
        targets, outputs = data.check_labels(dataset.name, dataset.y, outputs)
    else:
        targets = data.regression_targets(dataset.y)
        outputs = targets.shape[1]
        if cfg.loss == "binary_cross_entropy" and ((targets < 0) | (targets > 1)).any():
            raise data.DataError(
                f"{dataset.name}: --loss binary_cross_entropy needs targets in [0, 1], found "
                f"{targets.min():g}..{targets.max():g}; use --loss mse"
            )
    train, val, test = data.split(
        dataset.x,
        targets,
        seed=cfg.seed,
        val_fraction=cfg.val_fraction,
        test_fraction=cfg.test_fraction,
        stratify=classification,
    )
    if cfg.batch_size is not None and cfg.batch_size > len(train.x):
        raise config.ConfigError(
            f"--batch-size {cfg.batch_size} is larger than the {len(train.x)} training examples; "
            f"pass at most {len(train.x)}, or 'full'"
        )
    mean, scale = data.standardizer(train.x)
    dtype = jnp.dtype(cfg.dtype)

    def device(part: data.Split) -> tuple[Array, Array]:
        y = data.one_hot(part.y, outputs) if classification else part.y
        return jnp.asarray((part.x - mean) / scale, dtype), jnp.asarray(y, dtype)

    spec = config.build_spec(cfg, dataset.x.shape[1], outputs)
    steps = 1 if cfg.batch_size is None else len(train.x) // cfg.batch_size
    lr, optimizer = config.build_optimizer(cfg, steps)
    init_key, shuffle_key = jax.random.split(jax.random.key(cfg.seed))
    params = spec.init(init_key, dtype)
    opt_state = None if optimizer is None else optimizer.init(params)
    fingerprint = data.fingerprint(dataset.x, dataset.y)
    if saved is None:
        epoch = step = 0
        metrics: dict[str, Any] = {}
    else:
        assert path is not None
        checkpoint.check_compatible(path, saved, spec, params)
        params = jax.tree.map(jnp.asarray, saved.params)
        if optimizer is not None:
            opt_state = checkpoint.restore_opt_state(path, saved, opt_state)
        shuffle_key = jax.random.wrap_key_data(jnp.asarray(saved.key))
        epoch, step, metrics = saved.epoch, saved.step, saved.metrics
        if metrics.get("data_sha256") != fingerprint:
            metrics["data_changed_at_epoch"] = epoch
    problem = _files.writable_directory_problem(out_dir)  # last: a failed check leaves no folder
    if problem:
        raise config.ConfigError(f"cannot write to output directory {out_dir} ({problem})")
    return Prepared(
        cfg, out_dir, spec, dataset.name, fingerprint, mean, scale,
        device(train), device(val), device(test), steps, lr, optimizer,
        params, opt_state, shuffle_key, epoch, step, metrics,
    )  # fmt: skip


def _refuse_changes(path: Path, saved: config.TrainConfig, asked: config.TrainConfig) -> None:
    for field in dataclasses.fields(config.TrainConfig):
        name = field.name
        if name in config.RESUMABLE:
            continue
        before, after = getattr(saved, name), getattr(asked, name)
        if before != after:
            flag = "--" + name.replace("_", "-")
            raise config.ConfigError(
                f"{flag} {_text(after)} differs from the checkpoint's {_text(before)} ({path}); "
                f"a resumed run keeps its architecture and settings: drop {flag}, or start a "
                f"new run with --out"
            )


def _text(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    return "full" if value is None else str(value)
