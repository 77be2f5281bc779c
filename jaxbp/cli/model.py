"""The network ``jaxbp train --model`` names: a preset or a model description file, checked.

``--model`` takes a preset of :mod:`jaxbp.layers.presets` (``logistic``, ``mlp``, ``cnn``, ...) or a JSON
model description (:mod:`jaxbp.layers.model_file`); without it, ``jaxbp train`` builds its MLP from
``--hidden``. A preset also brings its training recipe (Adam, its learning rate, batch size and
epochs, a constant rate), which flags given on the command line override. The network must take
examples of shape ``(features,)`` and give one output per class (or per regression target);
anything else is refused with one line before any array is allocated.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jaxbp.cli.flags import ConfigError
from jaxbp.layers import model_file, presets, specs
from jaxbp.layers.sequential import Sequential
from jaxbp.model.mlp import MLP

if TYPE_CHECKING:
    from jaxbp.cli.config import TrainConfig

#: The largest model description file read.
MAX_MODEL_FILE_BYTES = model_file.MAX_FILE_BYTES


def load_network(choice: str) -> Sequential:
    """The preset's network, or the network a model file describes.

    Raises:
        ConfigError: one line naming the file and what is wrong with it.
    """
    if choice in presets.PRESETS:
        return presets.PRESETS[choice].network
    path = Path(choice)
    try:
        size = path.stat().st_size
    except OSError as error:
        raise ConfigError(f"--model {path}: cannot read the file ({error.strerror})") from None
    if not path.is_file():
        raise ConfigError(f"--model {path}: not a regular file; pass a .json model description")
    if size > MAX_MODEL_FILE_BYTES:
        raise ConfigError(
            f"--model {path}: {size:,} bytes; a model description may have at most "
            f"{MAX_MODEL_FILE_BYTES:,}"
        )
    try:
        return model_file.load(path)
    except model_file.ModelFileError as error:
        raise ConfigError(f"--model {error}".rstrip(".")) from None
    except (RecursionError, UnicodeDecodeError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else "not UTF-8 text"
        raise ConfigError(f"--model {path}: {reason}; pass a .json model description") from None


def parameter_count(network: Sequential) -> int:
    """The number of parameters, worked out from the shapes alone (nothing is allocated)."""
    return _count(network.layers, network.input_shape)


def _count(layers: tuple[Any, ...], shape: tuple[int, ...]) -> int:
    total = 0
    for layer in layers:
        if isinstance(layer, specs.Residual):
            total += _count(layer.layers, shape)
        else:
            total += sum(math.prod(s) for s in specs.param_shapes(layer, shape).values())
        shape = specs.output_shape(layer, shape, "parameter_count")
    return total


def describe(network: Sequential, choice: str) -> str:
    """A short name for the banner and the plot: the preset, or the model file's name."""
    kinds = [
        type(layer).__name__ for layer in network.layers if not isinstance(layer, specs.Reshape)
    ]
    return f"{Path(choice).name} ({', '.join(kinds)})"


def model_name(spec: MLP | Sequential, config: TrainConfig) -> str:
    """``64-256-256-10`` for the MLP; the preset or model file's name for a ``--model`` network."""
    if isinstance(spec, MLP):
        return "-".join(map(str, spec.sizes))
    return Path(config.model or "network").name


def model_line(spec: MLP | Sequential, config: TrainConfig) -> str:
    """The model as the run's header shows it, with the loss."""
    if isinstance(spec, MLP):
        shown = f"{model_name(spec, config)} ({', '.join(spec.activations)})"
    else:
        count = parameter_count(spec)
        shown = f"{describe(spec, config.model or 'network')}, {count:,} parameters"
    return f"{shown}, {config.loss}"
