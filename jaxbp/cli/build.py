"""The model of a ``jaxbp train`` run, as :func:`build_model` builds it from the settings and the
data: the network (the ``--model`` one, or the MLP of ``--hidden``), the steps per epoch, and the
learning-rate schedule and optimizer."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import jax.numpy as jnp
import optax

from jaxbp.cli import limits
from jaxbp.cli.flags import ConfigError
from jaxbp.layers.sequential import Sequential
from jaxbp.model.mlp import MLP

if TYPE_CHECKING:
    from jaxbp.cli.config import TrainConfig
    from jaxbp.cli.dataset import Data


@dataclasses.dataclass(frozen=True)
class Model:
    """What trains: the network, the steps of an epoch, and ``fit``'s ``lr`` and ``optimizer``."""

    spec: MLP | Sequential
    steps_per_epoch: int
    lr: Any
    optimizer: optax.GradientTransformation | None


def build_model(config: TrainConfig, data: Data, network: Sequential | None) -> Model:
    """The ``--model`` network or the MLP, with the schedule and optimizer for ``data``.

    Raises:
        ConfigError: a batch larger than the training part, or more steps than the limit.
    """
    rows = len(data.train[0])
    if config.batch_size is not None and config.batch_size > rows:
        raise ConfigError(
            f"--batch-size {config.batch_size} is larger than the {rows} training examples; "
            f"pass at most {rows}, or 'full'"
        )
    steps = 1 if config.batch_size is None else rows // config.batch_size
    limits.check_steps(config, steps)
    if network is not None:  # the batch is known now: the training rows for a full batch
        limits.check_activations(
            config, limits.activation_sizes(network), config.batch_size or rows
        )
    spec = network if network is not None else build_spec(config, data.features, data.outputs)
    lr, optimizer = build_optimizer(config, steps)
    return Model(spec, steps, lr, optimizer)


def build_spec(config: TrainConfig, num_features: int, num_outputs: int) -> MLP:
    """The MLP: the hidden layers' activation, and an output layer that fits the loss."""
    output = "softmax" if config.loss in ("cross_entropy",) else "linear"
    if config.loss == "binary_cross_entropy":
        output = "sigmoid"
    hidden, activation = config.hidden or (), config.activation or "relu"  # None only with --model
    sizes = (num_features, *hidden, num_outputs)
    return MLP(sizes, (activation,) * len(hidden) + (output,))


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
        assert config.decay is not None  # parse fills it in
        rate = Schedule("exponential", config.lr, config.decay, steps_per_epoch, config.dtype)
    elif config.schedule == "cosine":
        assert config.decay_epochs is not None
        steps = config.decay_epochs * steps_per_epoch
        rate = Schedule("cosine", config.lr, 0.0, steps, config.dtype)
    if config.optimizer == "sgd":
        return rate, None
    if config.optimizer == "momentum":
        return None, optax.sgd(rate, momentum=config.momentum)
    return None, optax.adam(rate)
