"""The settings of ``jaxbp train``, declared once: defaults, flags, help, validation (the limits
are in :mod:`jaxbp.cli.limits`).

Every flag of ``jaxbp train`` is a field of :class:`TrainConfig` (the settings that decide a run's
numbers, saved in every checkpoint so a resumed run uses exactly the same ones) or of
:class:`RunOptions` (where and how a run writes). Each field's metadata holds its metavar, its help
text and its converter; :func:`add_arguments` builds the argparse flags from them, :func:`parse`
validates command-line strings with them and :meth:`TrainConfig.from_json` validates a saved
config with the same converters. A setting that does not apply (``momentum`` without
``--optimizer momentum``, ``decay`` without the exponential schedule) is ``None``.

:class:`ConfigError` carries one line naming the flag, the value, and what would work.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from jaxbp.cli.flags import (
    MAX_HIDDEN_LAYERS,
    ConfigError,
    choice_setting,
    flag_only,
    integer_setting,
    is_int,
    number_setting,
    setting,
    to_batch_size,
    to_hidden,
)
from jaxbp.cli.limits import MAX_CLASSES, MAX_EPOCHS, MAX_SEED
from jaxbp.data.files import BUILT_IN, TASKS
from jaxbp.layers import presets
from jaxbp.layers.presets import PRESETS
from jaxbp.model.activations import ACTIVATIONS
from jaxbp.model.losses import LOSSES

#: The learning rate of a regression run without --lr (classification: the field's default).
REGRESSION_LR = 0.01
OPTIMIZERS = ("adam", "momentum", "sgd")
SCHEDULES = ("constant", "cosine", "exponential")
DTYPES = ("float32", "float64")
CLASSIFICATION_LOSSES = ("cross_entropy", "softmax_cross_entropy")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every setting that decides a run's numbers; each field is the flag ``--<name>``."""

    data: str = setting(
        "digits",
        "FILE",
        "'digits' (bundled with scikit-learn), 'mnist1d' (generated offline, its own 1,000 "
        "test examples) or a .csv/.npz/.npy file (.npy: 2-D, streamed from disk; see --target) "
        "(default: {default})",
        lambda flag, text: text if text in BUILT_IN else str(Path(text).resolve()),
    )
    target: str = setting(
        "target",
        "TARGET",
        "the target: a CSV column name; for .npy data a .npy file of one target per example "
        "(y.npy) or the index of x's target column (0, -1 for the last) (default: {default})",
        lambda f, t: str(Path(t).resolve()) if t.lower().endswith(".npy") else t,
    )
    task: str = choice_setting("classification", TASKS, "what to learn")
    classes: int | None = integer_setting(
        None, "K", "number of classes", 2, MAX_CLASSES, shown_default="largest label + 1"
    )
    model: str | None = setting(
        None,
        "PRESET_OR_FILE",
        f"the network instead of the MLP of --hidden: a preset ({', '.join(PRESETS)}), trained "
        f"with its own recipe (Adam, its rate, batch size and epochs, which flags override), or "
        f"a model description file (.json) (default: {{default}})",
        lambda flag, text: to_model(flag, text),
        shown_default="the MLP of --hidden",
    )
    hidden: tuple[int, ...] | None = setting(
        (256, 256),
        "SIZES",
        "hidden layer sizes, comma separated, 'none' for a linear model; without --model only "
        "(default: {default})",
        lambda flag, text: to_hidden(flag, text),
    )
    activation: str | None = choice_setting(
        "relu", ACTIVATIONS, "the hidden layers' activation, without --model only"
    )
    loss: str = choice_setting(
        "softmax_cross_entropy",
        LOSSES,
        "loss",
        shown_default="softmax_cross_entropy for classification, mse for regression",
    )
    optimizer: str = choice_setting(
        "sgd", OPTIMIZERS, "sgd is jaxbp's hand-written step, momentum and adam are optax's"
    )
    lr: float = number_setting(
        0.1,
        "RATE",
        "learning rate",
        "> 0",
        lambda v: v > 0,
        shown_default="0.1; 0.01 for regression",
    )
    momentum: float | None = number_setting(
        None,
        "M",
        "momentum, with --optimizer momentum only",
        "in [0, 1)",
        lambda v: 0 <= v < 1,
        only_with=("optimizer", "momentum"),
        default_when_used=0.9,
        shown_default=0.9,
    )
    schedule: str = choice_setting("exponential", SCHEDULES, "learning-rate schedule")
    decay: float | None = number_setting(
        None,
        "FACTOR",
        "learning-rate factor per epoch, with --schedule exponential only",
        "in (0, 1]",
        lambda v: 0 < v <= 1,
        only_with=("schedule", "exponential"),
        default_when_used=0.97,
        shown_default=0.97,
    )
    decay_epochs: int | None = integer_setting(
        None,
        "N",
        "epochs to decay to 0, with --schedule cosine only",
        1,
        MAX_EPOCHS,
        only_with=("schedule", "cosine"),
        default_when_used=40,
        shown_default=40,
    )
    batch_size: int | None = setting(
        32,
        "N",
        "examples per step, or 'full' (default: {default})",
        lambda flag, text: to_batch_size(flag, text),
    )
    epochs: int = integer_setting(
        40, "N", "total epochs, counting those already done when resuming", 1, MAX_EPOCHS
    )
    seed: int = integer_setting(
        0, "N", "seed of the split, the initialisation and the shuffling", 0, MAX_SEED
    )
    val_fraction: float = number_setting(
        0.1, "F", "fraction held out for validation", "in [0, 1)", lambda v: 0 <= v < 1
    )
    test_fraction: float | None = number_setting(
        0.2,
        "F",
        "fraction held out for the test, for data without a test set of its own",
        "in [0, 1)",
        lambda v: 0 <= v < 1,
    )
    dtype: str = choice_setting("float32", DTYPES, "float64 needs JAX_ENABLE_X64=1")
    scale_targets: bool | None = setting(
        None,
        "",
        "regression with mse or half_se trains on the targets standardised by the training "
        "part's mean and scale, and reports losses and predictions in the targets' own units; "
        "this flag trains on the targets as given",
        lambda flag, text: to_yes_no(flag, text),
        flag="--no-scale-targets",
        action="store_true",
    )

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["hidden"] = None if self.hidden is None else list(self.hidden)
        return data

    @classmethod
    def from_json(cls, data: Any) -> TrainConfig:
        """A saved config, every field checked for its type and value as its flag would be.

        Raises:
            ConfigError: naming the field, for a missing or unknown field, a wrong JSON type or
                a value its flag would refuse.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"the saved config is a {type(data).__name__}, not an object")
        names = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ConfigError(f"the saved config has unknown settings {', '.join(unknown)}")
        texts: dict[str, str | None] = {}
        for name in names:
            if name in ("model", "scale_targets") and name not in data:  # saved before them
                texts[name] = None
                continue
            if name not in data:
                raise ConfigError(f"the saved config has no {name!r}")
            texts[name] = _saved_text(name, data[name])
        return parse(texts, fill=False)


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """Where and how a run writes; not saved in checkpoints (they do not change the numbers)."""

    out: str | None = setting(
        None,
        "DIR",
        "output folder (default: {default})",
        lambda f, t: t,
        shown_default="runs/<data file name>",
    )
    resume: str | None = setting(
        None,
        "DIR_OR_FILE",
        "continue a run exactly from its newest checkpoint, or this checkpoint file",
        lambda f, t: t,
        shown_default="start a new run",
    )
    keep: int = integer_setting(3, "K", "checkpoints to keep", 1, 1_000_000)
    checkpoint_every: int = integer_setting(
        1, "EPOCHS", "save every N epochs, and always at the end", 1, MAX_EPOCHS
    )
    checkpoint_minutes: int = integer_setting(
        0, "MINUTES", "also save every M minutes, inside an epoch if need be (0: off)", 0, 10**6
    )
    chunk_steps: int = integer_setting(
        0,
        "STEPS",
        "steps per compiled chunk; checkpoints, progress and Ctrl-C act between chunks (0: "
        "about 16 MiB of batches, cut at epoch ends)",
        0,
        2**20,
    )
    patience: int = integer_setting(
        0,
        "EPOCHS",
        "stop early once the validation loss has not improved for N epochs (0: never)",
        0,
        MAX_EPOCHS,
    )
    quiet: bool = setting(False, "", "no per-epoch output", flag_only, action="store_true")
    debug_nans: bool = setting(
        False,
        "",
        "turn on jax_debug_nans: the in-program guard is off, and JAX names the "
        "operation that made the first NaN",
        flag_only,
        action="store_true",
    )


#: Settings a resumed run may change (they do not alter the numbers of the epochs still to run).
RESUMABLE = ("data", "epochs")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per field of :class:`TrainConfig` and :class:`RunOptions`, from their metadata."""
    for cls in (TrainConfig, RunOptions):
        for field in dataclasses.fields(cls):
            meta, flag = field.metadata, field.metadata.get("flag", flag_of(field.name))
            if meta.get("action"):
                parser.add_argument(flag, action=meta["action"], help=meta["help"])
            else:
                parser.add_argument(flag, default=None, metavar=meta["metavar"], help=meta["help"])


def flag_of(name: str) -> str:
    """``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def run_options(args: argparse.Namespace) -> RunOptions:
    """The :class:`RunOptions` from the parsed flags (a flag not given: the default), validated."""
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(RunOptions):
        value = getattr(args, field.name, None)
        if value is None or field.metadata.get("action"):
            changes[field.name] = field.default if value is None else value
        else:
            changes[field.name] = field.metadata["convert"](flag_of(field.name), value)
    return RunOptions(**changes)


def from_args(args: argparse.Namespace, base: TrainConfig | None = None) -> TrainConfig:
    """The :class:`TrainConfig` of the parsed flags: the flags given over ``base`` (a resumed
    run's saved config), or over the defaults; validated as :func:`parse` does."""
    texts = {
        field.name: getattr(args, field.name, None) for field in dataclasses.fields(TrainConfig)
    }
    texts["scale_targets"] = "no" if getattr(args, "no_scale_targets", False) else None
    return parse(texts, base)


def parse(
    values: Mapping[str, str | None], base: TrainConfig | None = None, *, fill: bool = True
) -> TrainConfig:
    """A config from flag strings (``None``: keep ``base``'s value, or the default); validated.

    ``fill``: give settings that apply but were not set their usual default (0.9 for
    ``momentum`` with ``--optimizer momentum``); a saved config is read with ``fill=False``.
    """
    config = base or TrainConfig()
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(TrainConfig):
        text = values.get(field.name)
        if text is not None:
            changes[field.name] = field.metadata["convert"](flag_of(field.name), text)
    if base is None and changes.get("task") == "regression":
        changes.setdefault("loss", "mse")
        # a squared error is 4 to 8 times as curved as softmax_cross_entropy: a tenth of the rate
        changes.setdefault("lr", REGRESSION_LR)
    config = dataclasses.replace(config, **changes)
    config = _model_settings(config, changes, fresh=base is None and fill)
    config = _test_settings(config, changes)
    for field in dataclasses.fields(TrainConfig):
        if "only_with" not in field.metadata:
            continue
        other, wanted = field.metadata["only_with"]
        used, value = getattr(config, other) == wanted, getattr(config, field.name)
        if not used and value is not None:
            raise ConfigError(
                f"{flag_of(field.name)} applies only with {flag_of(other)} {wanted}, "
                f"not {flag_of(other)} {getattr(config, other)}; drop {flag_of(field.name)}"
            )
        if used and value is None and fill:
            config = dataclasses.replace(
                config, **{field.name: field.metadata["default_when_used"]}
            )
    config = _target_settings(config, changes, fill=base is None and fill)
    _check_combination(config)
    return config


#: Losses whose value scales with the square of the targets' scale (a standardised run's loss
#: times ``scale**2`` is the loss in the targets' own units).
SCALED_LOSSES = ("mse", "half_se")


def _target_settings(config: TrainConfig, changes: Mapping[str, Any], fill: bool) -> TrainConfig:
    """``scale_targets``: on by default for regression with a squared loss; ``None`` where it
    does not apply, and ``--no-scale-targets`` refused there."""
    applies = config.task == "regression" and config.loss in SCALED_LOSSES
    if not applies:
        if changes.get("scale_targets") is not None:
            raise ConfigError(
                f"--no-scale-targets applies only with --task regression and --loss mse or "
                f"half_se, not --task {config.task} --loss {config.loss}; drop --no-scale-targets"
            )
        return dataclasses.replace(config, scale_targets=None)
    if config.scale_targets is None and fill:
        return dataclasses.replace(config, scale_targets=True)
    return config


#: Settings of the MLP that ``--model`` replaces.
_MLP_ONLY = ("hidden", "activation")
#: Built-in data with a test set of its own (``--test-fraction`` does not apply).
_OWN_TEST_SET = ("mnist1d",)


def _model_settings(config: TrainConfig, changes: Mapping[str, Any], fresh: bool) -> TrainConfig:
    """With ``--model``: no MLP settings, and a fresh run takes the preset's recipe for the
    settings not given. Without: the MLP's defaults where a saved config held ``null``."""
    if config.model is None:
        defaults = TrainConfig()
        return dataclasses.replace(
            config,
            **{
                name: getattr(defaults, name) for name in _MLP_ONLY if getattr(config, name) is None
            },
        )
    for name in _MLP_ONLY:
        if changes.get(name) is not None:
            raise ConfigError(
                f"{flag_of(name)} sets the MLP built without --model, but --model "
                f"{Path(config.model).name} gives the network; drop {flag_of(name)}"
            )
    config = dataclasses.replace(config, hidden=None, activation=None)
    if fresh:
        given = {name: value for name, value in recipe(config.model).items() if name not in changes}
        config = dataclasses.replace(config, **given)
    if config.loss == "cross_entropy":
        raise ConfigError(
            "--loss cross_entropy takes the probabilities of the MLP's softmax output, but a "
            "--model network gives logits; use --loss softmax_cross_entropy"
        )
    return config


def _test_settings(config: TrainConfig, changes: Mapping[str, Any]) -> TrainConfig:
    """``test_fraction`` is ``None`` for data with its own test set, and refused when given."""
    if config.data in _OWN_TEST_SET:
        if changes.get("test_fraction") is not None:
            raise ConfigError(
                f"--test-fraction does not apply to --data {config.data}, which has a test set "
                f"of its own; drop --test-fraction"
            )
        return dataclasses.replace(config, test_fraction=None)
    if config.test_fraction is None:
        return dataclasses.replace(config, test_fraction=TrainConfig().test_fraction)
    return config


def _check_combination(config: TrainConfig) -> None:
    if config.val_fraction + (config.test_fraction or 0.0) >= 1:
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
    if config.hidden is not None and len(config.hidden) > MAX_HIDDEN_LAYERS:
        raise ConfigError(
            f"--hidden has {len(config.hidden)} layers; the limit is {MAX_HIDDEN_LAYERS}"
        )
    info = np.finfo(np.dtype(config.dtype))
    if not float(info.tiny) <= config.lr <= float(info.max):
        rounded = "inf" if config.lr > float(info.max) else "0 or subnormal"
        raise ConfigError(
            f"--lr {config.lr!r} is {rounded} in {config.dtype}; pass a learning rate from "
            f"{float(info.tiny):.3g} to {float(info.max):.3g}"
        )


_INTEGERS = ("classes", "batch_size", "decay_epochs", "epochs", "seed")
_NUMBERS = ("lr", "momentum", "decay", "val_fraction", "test_fraction")
_OPTIONAL = (
    "classes",
    "momentum",
    "decay",
    "decay_epochs",
    "model",
    "hidden",
    "activation",
    "test_fraction",
)


def _saved_text(name: str, value: Any) -> str | None:
    """A saved JSON value as the text its flag would take, after checking its JSON type."""
    if value is None and name in _OPTIONAL:
        return None
    if value is None and name == "batch_size":
        return "full"
    if name == "scale_targets" and isinstance(value, bool):
        return "yes" if value else "no"
    if value is None and name == "scale_targets":
        return None
    if name == "hidden" and isinstance(value, list) and all(map(is_int, value)):
        return ",".join(map(str, value)) or "none"
    if name in _INTEGERS and is_int(value):
        return str(value)
    if name in _NUMBERS and (is_int(value) or isinstance(value, float)):
        return repr(value)
    if name not in (*_INTEGERS, *_NUMBERS, "hidden") and isinstance(value, str):
        return value
    shown = repr(value)[:60]
    raise ConfigError(f"the saved config's {name!r} is {shown} ({type(value).__name__})")


def to_yes_no(flag: str, text: str) -> bool:
    """``yes`` or ``no`` (how a saved config and ``--no-scale-targets`` give the setting)."""
    if text not in ("yes", "no"):
        raise ConfigError(f"{flag} must be yes or no, got {text[:40]!r}")
    return text == "yes"


def to_model(flag: str, text: str) -> str:
    """``--model``'s converter: a preset name as it is, a ``.json`` file as an absolute path."""
    if text in presets.PRESETS:
        return text
    if Path(text).suffix.lower() == ".json":
        return str(Path(text).resolve())
    raise ConfigError(
        f"unknown {flag} {text[:60]!r}; pass a preset ({', '.join(presets.PRESETS)}) or a model "
        f"description file ending in .json"
    )


def recipe(choice: str | None) -> dict[str, Any]:
    """The settings a preset is trained with, by config field (``{}`` for a model file)."""
    if choice not in presets.PRESETS:
        return {}
    preset = presets.PRESETS[choice]
    return {
        "optimizer": "adam",
        "lr": preset.learning_rate,
        "batch_size": preset.batch_size,
        "epochs": preset.epochs,
        "schedule": "constant",
    }
