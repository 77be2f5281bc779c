"""The limits of ``jaxbp train``, checked before anything is allocated (see docs/guarantees.md):
the seed, the classes, the epochs, the parameters of a model and the steps of a run."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING

from jaxbp.cli.flags import ConfigError, as_flag_text
from jaxbp.training.run_checks import MAX_STEPS, most_epochs

if TYPE_CHECKING:
    from jaxbp.cli.config import TrainConfig

#: Limits checked before anything is allocated (see docs/guarantees.md).
MAX_SEED = 2**32 - 1  # jax.random.key wraps larger seeds onto smaller ones
MAX_CLASSES = 10_000
MAX_PARAMETERS = 20_000_000
MAX_EPOCHS = 10_000_000  # checkpoint names carry 8 digits


def check_size(config: TrainConfig, num_features: int, num_outputs: int) -> None:
    """Refuse an MLP above :data:`MAX_PARAMETERS` parameters, before allocating any."""
    if config.hidden is None:
        return
    sizes = (num_features, *config.hidden, num_outputs)
    count = sum((fan_in + 1) * fan_out for fan_in, fan_out in itertools.pairwise(sizes))
    if count > MAX_PARAMETERS:
        shown = "-".join(map(str, sizes))
        raise ConfigError(
            f"--hidden {as_flag_text(config.hidden)} gives a {shown} model with {count:,} parameters; "
            f"the limit is {MAX_PARAMETERS:,} ({MAX_PARAMETERS * 4 // 2**20} MiB in float32); "
            f"pass smaller --hidden sizes"
        )


def check_parameter_count(config: TrainConfig, count: int) -> None:
    """Refuse a ``--model`` network above :data:`MAX_PARAMETERS` parameters."""
    if count > MAX_PARAMETERS:
        raise ConfigError(
            f"--model {Path(config.model or '').name} has {count:,} parameters; the limit is "
            f"{MAX_PARAMETERS:,} ({MAX_PARAMETERS * 4 // 2**20} MiB in float32); use a smaller model"
        )


def check_steps(config: TrainConfig, steps_per_epoch: int) -> None:
    """Refuse more steps in all than the program's int32 step counter holds."""
    if config.epochs > most_epochs(steps_per_epoch):
        raise ConfigError(
            f"--epochs {config.epochs} with {steps_per_epoch} steps per epoch is "
            f"{config.epochs * steps_per_epoch:,} steps; the limit is {MAX_STEPS:,}; "
            f"pass at most --epochs {most_epochs(steps_per_epoch)}"
        )
