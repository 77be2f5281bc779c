"""Built-in networks for MNIST-1D, with the training recipe each was measured with.

The first three are the models of the MNIST-1D paper (Greydanus and Kobak, ICML 2024; the
PyTorch originals are ``LinearBase``, ``MLPBase`` and ``ConvBase`` in the mnist1d repository's
``notebooks/models.py``), trained as its ``notebooks/train.py`` does: Adam, learning rate 1e-2,
batches of 100 in data order, 6,000 steps (150 epochs of the 4,000 training examples), cross-
entropy on integer labels. Measured accuracies are in ``docs/layers.md``.

Two more go past the paper's CNN with the same recipe: ``cnn_pool`` (stride-1 "SAME" convolutions
of 32 channels, each followed by max pooling) and ``cnn_residual`` (the paper's CNN at 32 channels
with a residual convolution after each of the first two strided ones). Every preset is a
:class:`jaxbp.Sequential` on examples of shape ``(40,)``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from jaxbp.layers import model_file
from jaxbp.layers.sequential import Sequential
from jaxbp.layers.specs import (
    Conv1D,
    Dense,
    Flatten,
    MaxPool1D,
    Reshape,
    Residual,
)


@dataclasses.dataclass(frozen=True)
class Preset:
    """A network and the recipe it is trained with.

    Attributes:
        network: the architecture.
        description: one line.
        paper_accuracy: the test accuracy the MNIST-1D paper reports (``None`` if not a paper row).
        learning_rate: Adam's step size.
        batch_size: examples per step.
        epochs: passes over the training set.
    """

    network: Sequential
    description: str
    paper_accuracy: float | None = None
    learning_rate: float = 1e-2
    batch_size: int = 100
    epochs: int = 150


def _paper_cnn(channels: int = 25) -> Sequential:
    """ConvBase: conv(k5, s2, p1), conv(k3, s2, p1), conv(k3, s2, p1), relu each, linear."""
    return Sequential(
        layers=(
            Reshape((40, 1)),  # (40,) -> (length 40, 1 channel)
            Conv1D(channels, kernel_size=5, stride=2, padding=1, activation="relu"),  # (19, c)
            Conv1D(channels, kernel_size=3, stride=2, padding=1, activation="relu"),  # (10, c)
            Conv1D(channels, kernel_size=3, stride=2, padding=1, activation="relu"),  # (5, c)
            Flatten(),
            Dense(10),
        ),
        input_shape=(40,),
    )


def _pooled_cnn(channels: int = 32) -> Sequential:
    """Three (conv k5/k3/k3 stride 1 SAME, relu, max pool 2) stages, then linear: 40 -> 20 -> 10 -> 5."""
    stages = []
    for kernel in (5, 3, 3):
        stages += [Conv1D(channels, kernel, padding="SAME", activation="relu"), MaxPool1D(2)]
    return Sequential(layers=(Reshape((40, 1)), *stages, Flatten(), Dense(10)), input_shape=(40,))


def _residual_cnn(channels: int = 32) -> Sequential:
    """The paper's CNN with ``x + relu(conv(x))`` (k3, stride 1, SAME) after conv1 and conv2."""
    return Sequential(
        layers=(
            Reshape((40, 1)),
            Conv1D(channels, kernel_size=5, stride=2, padding=1, activation="relu"),  # (19, c)
            Residual((Conv1D(channels, kernel_size=3, padding="SAME", activation="relu"),)),
            Conv1D(channels, kernel_size=3, stride=2, padding=1, activation="relu"),  # (10, c)
            Residual((Conv1D(channels, kernel_size=3, padding="SAME", activation="relu"),)),
            Conv1D(channels, kernel_size=3, stride=2, padding=1, activation="relu"),  # (5, c)
            Flatten(),
            Dense(10),
        ),
        input_shape=(40,),
    )


PRESETS: dict[str, Preset] = {
    "logistic": Preset(
        Sequential(layers=(Dense(10),), input_shape=(40,)),
        "logistic regression: one linear layer to 10 logits (the paper's LinearBase)",
        paper_accuracy=0.32,
    ),
    "mlp": Preset(
        Sequential(
            layers=(
                Dense(100, activation="relu"),
                Residual((Dense(100, activation="relu"),)),  # h + relu(h W2 + b2)
                Dense(10),
            ),
            input_shape=(40,),
        ),
        "MLP 40-100-100-10 with a residual middle layer (the paper's MLPBase)",
        paper_accuracy=0.68,
    ),
    "cnn": Preset(
        _paper_cnn(),
        "three conv1d layers of 25 channels (kernels 5, 3, 3; stride 2; padding 1), relu, "
        "then linear (the paper's ConvBase)",
        paper_accuracy=0.94,
    ),
    "cnn_pool": Preset(
        _pooled_cnn(),
        "three stages of conv1d (32 channels, stride 1, SAME) + relu + max pool 2, then linear",
    ),
    "cnn_residual": Preset(
        _residual_cnn(),
        "the paper's CNN at 32 channels with a residual conv1d block after conv1 and conv2",
    ),
}


def network(name_or_path: str | Path) -> Sequential:
    """A preset's network by name, or the network described by a JSON model file.

    Raises:
        ValueError: on a name that is neither a preset nor an existing ``.json`` file, or empty.
        TypeError: on anything but a ``str`` or a path.
    """
    if not isinstance(name_or_path, str | os.PathLike):
        # str(None) was looked up as a preset, then Path(None) raised TypeError without a name
        raise TypeError(
            f"presets.network: name_or_path must be a preset name ({', '.join(PRESETS)}) or "
            f"the path of a .json model file, got {type(name_or_path).__name__} "
            f"{name_or_path!r:.40}."
        )
    if str(name_or_path) in PRESETS:
        return PRESETS[str(name_or_path)].network
    if not str(name_or_path):
        # Path("") is the current folder: the error was ". is not a regular file"
        raise ValueError(
            f"presets.network: the name is empty; pass a preset ({', '.join(PRESETS)}) or the "
            f"path of a .json model file."
        )
    path = Path(name_or_path)
    if path.suffix == ".json" or path.exists():
        return model_file.load(path)
    raise ValueError(
        f"presets.network: {str(name_or_path)!r} is neither a preset ({', '.join(PRESETS)}) "
        f"nor a model file (a path ending in .json)."
    )
