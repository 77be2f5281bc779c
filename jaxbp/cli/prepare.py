"""Everything ``jaxbp train`` checks and builds before its first step, as four named steps.

:func:`prepare` runs each once: :func:`start_run` (the typed settings, the output folder, the
checkpoint to resume, the ``--model`` network), :func:`~jaxbp.cli.dataset.load_data`,
:func:`~jaxbp.cli.build.build_model` and :func:`~jaxbp.cli.state.initial_state`. Any problem
raises one line (a ``ConfigError``, ``DataError``, ``CheckpointError`` or ``FolderError``)
before a single file is touched; the caller claims the output folder next
(:func:`jaxbp.cli.run_folder.claim`).

:func:`start_run`: a new run takes its :class:`~jaxbp.cli.config.TrainConfig` from the flags over
the defaults and refuses a folder that already holds a run. A resumed run takes the checkpoint's
saved config with the flags given over it, and refuses a flag that would change its numbers, a
checkpoint that is not the newest of its folder, and ``--epochs`` that are already done.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import jax

from jaxbp.cli import config, limits, run_folder
from jaxbp.cli import model as train_model
from jaxbp.cli.build import Model, build_model
from jaxbp.cli.config import RunOptions, TrainConfig
from jaxbp.cli.dataset import Data, load_data
from jaxbp.cli.state import State, initial_state
from jaxbp.layers import Embedding
from jaxbp.layers.sequential import Sequential
from jaxbp.training import checkpoint


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A run ready to train: its settings, where it writes, its data, model and starting state."""

    config: TrainConfig
    options: RunOptions
    out: Path
    data: Data
    model: Model
    state: State

    @property
    def steps_per_epoch(self) -> int:
        return self.model.steps_per_epoch

    @property
    def total_steps(self) -> int:
        return self.config.epochs * self.model.steps_per_epoch


def prepare(args: argparse.Namespace) -> Prepared:
    """Validate and build a run from the parsed flags of ``jaxbp train``; writes nothing."""
    start = start_run(args)
    cfg = start.config
    data = load_data(cfg, start.network, start.resumed)
    model = build_model(cfg, data, start.network)
    state = initial_state(cfg, model, data, start.resumed)
    if start.options.patience and len(data.val[0]) == 0:
        raise config.ConfigError(
            "--patience watches the validation loss, but --val-fraction 0 leaves no "
            "validation set; pass --val-fraction 0.1, or drop --patience"
        )
    return Prepared(cfg, start.options, start.out, data, model, state)


@dataclasses.dataclass(frozen=True)
class Resumed:
    """The checkpoint a run continues from: its file and its contents."""

    path: Path
    saved: checkpoint.Checkpoint


@dataclasses.dataclass(frozen=True)
class Start:
    """A run's settings, where it writes, what it resumes, and its ``--model`` network.

    ``network`` is ``None`` for the MLP of ``--hidden``; ``resumed`` is ``None`` for a new run.
    """

    config: TrainConfig
    options: RunOptions
    out: Path
    resumed: Resumed | None
    network: Sequential | None


def start_run(args: argparse.Namespace) -> Start:
    """The checked settings of ``jaxbp train`` from its parsed flags (see ``jaxbp train --help``).

    Raises:
        ConfigError, CheckpointError, FolderError: one line naming the flag, file or folder.
    """
    options = config.run_options(args)
    if options.resume is None:
        cfg = config.from_args(args)
        out = Path(options.out) if options.out is not None else run_folder.default_for(cfg.data)
        run_folder.refuse_live(out, f"continue it with --resume {out}")
        if checkpoint.list_checkpoints(out):
            if run_folder.diverged(out) is not None:
                raise config.ConfigError(
                    f"{out} holds a run that diverged; start again at a lower rate in a new "
                    f"folder: {_rerun_of(out, cfg)}"
                )
            raise config.ConfigError(
                f"{out} already holds a run; continue it with --resume {out}, or pass a new --out"
            )
        run_folder.check(out)
        resumed = None
    else:
        cfg, resumed = _resume(args, options)
        out = resumed.path.parent
    if cfg.dtype == "float64" and not jax.config.read("jax_enable_x64"):
        raise config.ConfigError("--dtype float64 needs 64-bit JAX; set JAX_ENABLE_X64=1 first")
    network = None if cfg.model is None else _network(cfg, resumed)
    return Start(cfg, options, out, resumed, network)


def _resume(args: argparse.Namespace, options: config.RunOptions) -> tuple[config.TrainConfig, Resumed]:  # fmt: skip
    """The saved config with the flags given over it, and the checkpoint, checked."""
    assert options.resume is not None
    where = Path(options.resume)
    run_folder.refuse_live(where if where.is_dir() else where.parent, f"--resume {where}")
    path = checkpoint.resolve(options.resume)
    saved = checkpoint.load(path)
    try:
        base = config.TrainConfig.from_json(saved.config)
    except config.ConfigError as error:
        raise checkpoint.CheckpointError(f"{path}: {error}") from None
    cfg = config.from_args(args, base)
    out = path.parent
    if run_folder.diverged(out) is not None and cfg.lr != base.lr:
        raise config.ConfigError(
            f"{out} holds a run that diverged, and its last checkpoint may already hold "
            f"blown-up weights, so it does not continue at another --lr; start again at a lower "
            f"rate in a new folder: {_rerun_of(out, base)}"
        )
    _refuse_changes(path, base, cfg)
    if options.out is not None and Path(options.out).resolve() != out.resolve():
        raise config.ConfigError(f"--out {options.out} conflicts with --resume, which writes to {out}")  # fmt: skip
    try:
        mine = checkpoint.order_key(path)
    except ValueError:  # a renamed file: placed by the epochs it has done
        mine = (saved.epoch, 0)
    newer = [p.name for p in checkpoint.list_checkpoints(out) if checkpoint.order_key(p) > mine]
    if newer:
        raise config.ConfigError(
            f"{path.name} is not the newest checkpoint in {out} ({', '.join(newer)} "
            f"follow it); move the newer files away to continue from this one"
        )
    if cfg.epochs <= saved.epoch:
        raise config.ConfigError(
            f"{path} has already trained {saved.epoch} epochs; pass --epochs greater "
            f"than {saved.epoch} (the total) to train further"
        )
    return cfg, Resumed(path, saved)


def _network(cfg: config.TrainConfig, resumed: Resumed | None) -> Sequential:
    """The ``--model`` network: built from the preset or file for a new run, the checkpoint's own
    description when resuming (so a model file that has since changed or moved does not matter)."""
    choice = cfg.model or ""
    if resumed is None:
        network = train_model.load_network(choice)
    elif isinstance(resumed.saved.spec, Sequential):
        network = resumed.saved.spec
    else:
        raise checkpoint.CheckpointError(
            f"{resumed.path}: the saved config names --model {Path(choice).name} but the "
            f"checkpoint holds no layer network"
        )
    limits.check_parameter_count(cfg, train_model.parameter_count(network))
    _refuse_untrainable(cfg, network)
    if resumed is None:
        _refuse_double_softmax(cfg, network)
    return network


def _refuse_untrainable(cfg: config.TrainConfig, network: Sequential) -> None:
    """Layers ``jaxbp train`` cannot train as the layer means: an Embedding takes integer tokens
    (the run feeds standardised float features), a Dropout is on only with a random key and a
    BatchNorm needs running state (the run calls the network as ``(params, x)``, with neither)."""
    name = Path(cfg.model or "").name
    if isinstance(network.layers[0], Embedding):
        raise config.ConfigError(
            f"--model {name} starts with an Embedding, which takes integer tokens, but jaxbp "
            f"train gives the network standardised float features; train a token model from "
            f"Python (docs/layers.md), or start the network with a Dense or Reshape layer"
        )
    if network.stateful or network.uses_dropout:
        kind = "a BatchNorm" if network.stateful else "a Dropout"
        why = (
            "whose running statistics are state that jaxbp train does not carry"
            if network.stateful
            else "which is on only with a random key that jaxbp train does not pass (it would "
            "train with dropout silently off)"
        )
        fix = "use LayerNorm" if network.stateful else "remove it or set its rate to 0"
        raise config.ConfigError(
            f"--model {name} has {kind}, {why}; {fix}, or train the network from Python with a "
            f"step of your own (docs/layers.md)"
        )


def _refuse_double_softmax(cfg: config.TrainConfig, network: Sequential) -> None:
    """``softmax_cross_entropy`` applies the softmax itself: a network that already ends in one
    would train on the softmax of probabilities (a flatter, wrong loss)."""
    if cfg.loss != "softmax_cross_entropy":
        return
    if network.output_activation == "softmax":
        raise config.ConfigError(
            f"--model {Path(cfg.model or '').name} ends in a softmax, and --loss "
            f"softmax_cross_entropy applies the softmax itself (it would be applied twice); "
            f"remove the final softmax so the model gives logits (the loss applies it)"
        )


def _rerun_of(out: Path, cfg: config.TrainConfig) -> str:
    """The rerun command ``metrics.json`` saved, else one made from ``cfg``."""
    saved = run_folder.diverged(out) or {}
    text = saved.get("rerun")
    fallback = f"the same command with --lr {cfg.lr / 10:g} and another --out"  # an older run's
    return text if isinstance(text, str) else fallback


def _refuse_changes(path: Path, saved: config.TrainConfig, asked: config.TrainConfig) -> None:
    for field in dataclasses.fields(config.TrainConfig):
        name = field.name
        if name in config.RESUMABLE:
            continue
        before, after = getattr(saved, name), getattr(asked, name)
        if before != after:
            flag = field.metadata.get("flag", config.flag_of(name))
            if name == "scale_targets" and before:  # a store_true flag: only "on" can be asked
                raise config.ConfigError(
                    f"the run in {path.parent} trained on standardised targets (it was started "
                    f"without --no-scale-targets), and a resumed run keeps its settings: drop "
                    f"--no-scale-targets, or start a new run with --out"
                )
            raise config.ConfigError(
                f"{flag} {_text(name, after)} differs from the checkpoint's {_text(name, before)} "
                f"({path}); a resumed run keeps its architecture and settings: drop {flag}, or "
                f"start a new run with --out"
            )


def _text(name: str, value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    if value is None:
        return {"batch_size": "full", "model": "(the MLP of --hidden)"}.get(name, "none")
    return str(value)
