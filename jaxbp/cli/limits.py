"""The limits of ``jaxbp train``, checked before anything is allocated (see docs/guarantees.md):
the seed, the classes, the epochs, the parameters of a model and the steps of a run."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jaxbp.cli.flags import ConfigError, as_flag_text
from jaxbp.layers import specs
from jaxbp.layers.modern import SelfAttention
from jaxbp.training.run_checks import MAX_STEPS, most_epochs

if TYPE_CHECKING:
    from jaxbp.cli.config import TrainConfig
    from jaxbp.layers.sequential import Sequential

#: Limits checked before anything is allocated (see docs/guarantees.md).
MAX_SEED = 2**32 - 1  # jax.random.key wraps larger seeds onto smaller ones
MAX_CLASSES = 10_000
MAX_PARAMETERS = 20_000_000
#: The most activation values one training batch may produce through the network's layers (the
#: forward pass keeps them all for the backward pass): 1 GiB in float32.
MAX_ACTIVATIONS = 2**28
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


def activation_sizes(network: Sequential) -> list[tuple[str, tuple[int, ...]]]:
    """Every layer's per-example output shape, inner layers of a residual block included, with
    the layer's name (``layer 0 (Conv1D)``), and before a SelfAttention's output its attention
    scores and weights, ``(2, heads, length, length)``: worked out from the shapes alone."""
    return _activations(network.layers, network.input_shape, "layer")


def _activations(
    layers: tuple[Any, ...], shape: tuple[int, ...], label: str
) -> list[tuple[str, tuple[int, ...]]]:
    sizes = []
    for index, layer in enumerate(layers):
        name = f"{label} {index} ({type(layer).__name__})"
        if isinstance(layer, specs.Residual):
            sizes += _activations(layer.layers, shape, f"{name}, inner layer")
        if isinstance(layer, SelfAttention):  # scores and their softmax, per head: (T, T) each
            length = shape[0]
            sizes.append((f"{name} attention (scores and weights)", (2, layer.heads, length, length)))  # fmt: skip
        shape = specs.output_shape(layer, shape, name)
        sizes.append((name, shape))
    return sizes


def check_activations(
    config: TrainConfig, sizes: list[tuple[str, tuple[int, ...]]], batch_size: int
) -> None:
    """Refuse a ``--model`` network whose layer outputs, summed over the layers and times the
    batch, pass :data:`MAX_ACTIVATIONS`; names the layer where the sum passes it."""
    batch, total = batch_size, 0
    for name, shape in sizes:
        size = math.prod(shape)
        total += size * batch
        if total > MAX_ACTIVATIONS:
            per = f" times the batch of {batch}" if batch > 1 else ""
            raise ConfigError(
                f"--model {Path(config.model or '').name}: {name} outputs {size:,} values per "
                f"example (shape {shape}); the activations up to it{per} are {total:,} values; "
                f"the limit is {MAX_ACTIVATIONS:,} ({MAX_ACTIVATIONS * 4 // 2**30} GiB in "
                f"float32); use smaller layers (less padding, fewer features) or a smaller "
                f"--batch-size"
            )


def check_steps(config: TrainConfig, steps_per_epoch: int) -> None:
    """Refuse more steps in all than the program's int32 step counter holds."""
    if config.epochs > most_epochs(steps_per_epoch):
        raise ConfigError(
            f"--epochs {config.epochs} with {steps_per_epoch} steps per epoch is "
            f"{config.epochs * steps_per_epoch:,} steps; the limit is {MAX_STEPS:,}; "
            f"pass at most --epochs {most_epochs(steps_per_epoch)}"
        )
