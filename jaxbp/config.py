"""The training configuration of ``jaxbp train``: defaults, validation, and what it builds.

:class:`TrainConfig` holds every setting that decides the numbers a run produces (architecture,
loss, optimizer, schedule, batch size, seed, split); it is saved in every checkpoint, so a resumed
run uses exactly the same settings. :func:`parse` turns command-line strings into a config and
raises :class:`ConfigError` with one line naming the flag, the value, and what would work.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import optax

from jaxbp.activations import ACTIVATIONS
from jaxbp.data import TASKS
from jaxbp.losses import LOSSES
from jaxbp.mlp import MLP

OPTIMIZERS = ("adam", "momentum", "sgd")
SCHEDULES = ("constant", "cosine", "exponential")
DTYPES = ("float32", "float64")
CLASSIFICATION_LOSSES = ("cross_entropy", "softmax_cross_entropy")


class ConfigError(ValueError):
    """A setting is not usable; the message names the flag and a valid choice."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every setting that decides a run's numbers (flag names in the field comments)."""

    data: str = "digits"  # --data: "digits" or a .csv/.npz path
    target: str = "target"  # --target: the CSV target column
    task: str = "classification"  # --task
    classes: int | None = None  # --classes (None: largest label + 1)
    hidden: tuple[int, ...] = (256, 256)  # --hidden
    activation: str = "relu"  # --activation (hidden layers)
    loss: str = "softmax_cross_entropy"  # --loss (regression default: mse)
    optimizer: str = "sgd"  # --optimizer
    lr: float = 0.1  # --lr
    momentum: float = 0.9  # --momentum (for --optimizer momentum)
    schedule: str = "exponential"  # --schedule
    decay: float = 0.97  # --decay: per-epoch factor (exponential)
    decay_epochs: int = 40  # --decay-epochs: cosine horizon, fixed when the run starts
    batch_size: int | None = 32  # --batch-size (None: full batch)
    epochs: int = 40  # --epochs: the total, counting epochs already done
    seed: int = 0  # --seed
    val_fraction: float = 0.1  # --val-fraction
    test_fraction: float = 0.2  # --test-fraction
    dtype: str = "float32"  # --dtype

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["hidden"] = list(self.hidden)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrainConfig:
        known = {field.name for field in dataclasses.fields(cls)}
        values = {name: value for name, value in data.items() if name in known}
        values["hidden"] = tuple(values.get("hidden", cls.hidden))
        return cls(**values)


#: Settings a resumed run may change (they do not alter the numbers of the epochs still to run).
RESUMABLE = ("data", "epochs")


def parse(values: Mapping[str, str | None], base: TrainConfig | None = None) -> TrainConfig:
    """A config from flag strings (``None``: keep ``base``'s value, or the default); validated."""
    config = base or TrainConfig()
    task = values.get("task") or config.task
    _choice("--task", task, TASKS)
    changes: dict[str, Any] = {"task": task}
    if base is None and task == "regression" and values.get("loss") is None:
        changes["loss"] = "mse"
    converters: dict[str, Callable[[str, str], Any]] = {
        "data": lambda flag, text: text if text == "digits" else str(Path(text).resolve()),
        "target": lambda flag, text: text,
        "classes": lambda flag, text: _integer(flag, text, minimum=2),
        "hidden": _hidden,
        "activation": lambda flag, text: _choice(flag, text, ACTIVATIONS),
        "loss": lambda flag, text: _choice(flag, text, LOSSES),
        "optimizer": lambda flag, text: _choice(flag, text, OPTIMIZERS),
        "lr": lambda flag, text: _number(flag, text, "> 0", lambda v: v > 0),
        "momentum": lambda flag, text: _number(flag, text, "in [0, 1)", lambda v: 0 <= v < 1),
        "schedule": lambda flag, text: _choice(flag, text, SCHEDULES),
        "decay": lambda flag, text: _number(flag, text, "in (0, 1]", lambda v: 0 < v <= 1),
        "decay_epochs": lambda flag, text: _integer(flag, text, minimum=1),
        "batch_size": _batch_size,
        "epochs": lambda flag, text: _integer(flag, text, minimum=1),
        "seed": lambda flag, text: _integer(flag, text, minimum=0),
        "val_fraction": lambda flag, text: _number(flag, text, "in [0, 1)", lambda v: 0 <= v < 1),
        "test_fraction": lambda flag, text: _number(flag, text, "in [0, 1)", lambda v: 0 <= v < 1),
        "dtype": lambda flag, text: _choice(flag, text, DTYPES),
    }
    for name, convert in converters.items():
        text = values.get(name)
        if text is not None:
            changes[name] = convert(_flag(name), text)
    config = dataclasses.replace(config, **changes)
    if config.val_fraction + config.test_fraction >= 1:
        raise ConfigError(
            f"--val-fraction {config.val_fraction} and --test-fraction {config.test_fraction} "
            f"leave no training data; keep their sum below 1"
        )
    if config.task == "classification" and config.loss not in CLASSIFICATION_LOSSES:
        raise ConfigError(
            f"--loss {config.loss} does not fit classification; use "
            f"{' or '.join(CLASSIFICATION_LOSSES)}, or --task regression"
        )
    if config.task == "regression" and config.loss in CLASSIFICATION_LOSSES:
        raise ConfigError(
            f"--loss {config.loss} needs class labels; for regression use mse, half_se or "
            f"binary_cross_entropy (targets in [0, 1]), or --task classification"
        )
    return config


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _choice(flag: str, text: str, valid: Any) -> str:
    if text not in valid:
        raise ConfigError(f"unknown {flag} {text!r}; valid choices are {', '.join(sorted(valid))}")
    return text


def _number(flag: str, text: str, expected: str, ok: Callable[[float], bool]) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not ok(value):
        raise ConfigError(f"{flag} must be a finite number {expected}, got {text!r}")
    return value


def _integer(flag: str, text: str, *, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{flag} must be an integer >= {minimum}, got {text!r}") from None
    if value < minimum:
        raise ConfigError(f"{flag} must be an integer >= {minimum}, got {text!r}")
    return value


def _batch_size(flag: str, text: str) -> int | None:
    if text == "full":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(
            f"{flag} must be a positive integer (or 'full' for full-batch), got {text!r}"
        )
    return value


def _hidden(flag: str, text: str) -> tuple[int, ...]:
    if text.strip() in ("", "none"):
        return ()
    return tuple(_integer(flag, part.strip(), minimum=1) for part in text.split(","))


def build_spec(config: TrainConfig, num_features: int, num_outputs: int) -> MLP:
    """The MLP: the hidden layers' activation, and an output layer that fits the loss."""
    output = "softmax" if config.loss in ("cross_entropy",) else "linear"
    if config.loss == "binary_cross_entropy":
        output = "sigmoid"
    sizes = (num_features, *config.hidden, num_outputs)
    return MLP(sizes, (config.activation,) * len(config.hidden) + (output,))


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule of the step number, as a frozen dataclass.

    Equal settings give equal (and equally hashing) schedules, so ``jaxbp.fit``, which takes the
    schedule as a static argument, reuses its compiled program across runs with the same
    settings. The value is cast to ``dtype``, so float32 params stay float32 in 64-bit mode.
    """

    kind: str  # "exponential" or "cosine"
    lr: float
    decay: float
    decay_steps: int  # exponential: steps per epoch; cosine: steps to reach 0
    dtype: str

    def __call__(self, step: Any) -> Any:
        if self.kind == "exponential":
            value = optax.exponential_decay(self.lr, self.decay_steps, self.decay)(step)
        else:
            value = optax.cosine_decay_schedule(self.lr, self.decay_steps)(step)
        return jnp.asarray(value, self.dtype)


def build_optimizer(
    config: TrainConfig, steps_per_epoch: int
) -> tuple[Any, optax.GradientTransformation | None]:
    """``(lr, optimizer)`` for ``jaxbp.fit``: the hand-written SGD takes ``lr`` (a number or a
    :class:`Schedule`), any other optimizer is optax with ``lr=None``."""
    rate: Any = config.lr
    if config.schedule == "exponential":
        rate = Schedule("exponential", config.lr, config.decay, steps_per_epoch, config.dtype)
    elif config.schedule == "cosine":
        steps = config.decay_epochs * steps_per_epoch
        rate = Schedule("cosine", config.lr, 0.0, steps, config.dtype)
    if config.optimizer == "sgd":
        return rate, None
    if config.optimizer == "momentum":
        return None, optax.sgd(rate, momentum=config.momentum)
    return None, optax.adam(rate)
