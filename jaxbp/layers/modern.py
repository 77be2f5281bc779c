"""Specs of the layers of modern networks: token and position embeddings, layer and batch
normalisation, multi-head self-attention and dropout, with their shape arithmetic.

Like :mod:`jaxbp.layers.specs`, nothing here uses JAX. Sequences are ``(batch, length, features)``.
Parameter layout (one dict per layer) and running state (:meth:`jaxbp.Sequential.init_state`)::

    Embedding:           {"table": (vocab_size, features)}                  tokens (batch, length)
    PositionalEmbedding: {"positions": (max_length, features)}
    LayerNorm:           {"scale": (features,), "bias": (features,)}
    SelfAttention:       {"w_q", "w_k", "w_v", "w_o": (features, features),
                          "b_q", "b_k", "b_v", "b_o": (features,)}          (biases if bias=True)
    BatchNorm:           {"scale": (channels,), "bias": (channels,)}; state {"mean", "var": (channels,)}
    Dropout:             {}

Initial values (:data:`INIT`): embeddings ``N(0, 1)``, attention weights Glorot-normal, norm
scales one, every bias zero; BatchNorm's running mean starts at zero and its variance at one.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

Shape = tuple[int, ...]
#: The largest size, window, stride or padding a layer takes: array dimensions are int32 in XLA.
MAX_SIZE = 2**31 - 1


def check_positive_int(where: str, name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_SIZE:
        raise ValueError(
            f"{where}: {name} must be a positive int (at most {MAX_SIZE:,}), got {short_repr(value)}."
        )


def short_repr(value: Any) -> str:
    """``repr(value)``, cut to 60 characters (a file may hold an int of thousands of digits)."""
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**50 else f"an int of {len(str(abs(value)))} digits"  # fmt: skip
    return text if len(text) <= 60 else text[:57] + "..."


def _real(value: Any) -> float | None:
    """``value`` as a Python float when it is a finite real number (a NumPy scalar too, not a
    bool), else None."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer | np.floating):  # fmt: skip
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _fraction(where: str, name: str, value: Any, high: float, closed: bool) -> float:
    """``0 <= value < high`` (``<= high`` when ``closed``), a real number; returned as a float."""
    number = _real(value)
    if number is None or number < 0 or number > high or (number == high and not closed):
        bound = f"<= {high}" if closed else f"< {high}"
        raise ValueError(
            f"{where}: {name} must be a number with 0 <= {name} {bound}, got {value!r}."
        )
    return number


def _epsilon(where: str, value: Any) -> float:
    number = _real(value)
    if number is None or number <= 0:
        raise ValueError(f"{where}: epsilon must be a positive number like 1e-5, got {value!r}.")
    return number


@dataclasses.dataclass(frozen=True)
class Embedding:
    """Integer tokens ``(batch, length)`` to rows of a table, ``out[n, t] = table[x[n, t]]``,
    ``(batch, length, features)``. Only as the first layer of a network.

    Args:
        vocab_size: the number of distinct tokens; a token is an int in ``[0, vocab_size)``.
        features: the width of each row.
    """

    vocab_size: int
    features: int

    def __post_init__(self) -> None:
        check_positive_int("Embedding", "vocab_size", self.vocab_size)
        check_positive_int("Embedding", "features", self.features)


@dataclasses.dataclass(frozen=True)
class PositionalEmbedding:
    """A learned vector per position added to a sequence: ``out[n, t] = x[n, t] + positions[t]``.

    Args:
        max_length: the longest sequence it takes (rows of ``positions``).
    """

    max_length: int

    def __post_init__(self) -> None:
        check_positive_int("PositionalEmbedding", "max_length", self.max_length)


@dataclasses.dataclass(frozen=True)
class LayerNorm:
    """Each example normalised over its last axis, then scaled and shifted per feature:
    ``out = scale * (x - mean) / sqrt(var + epsilon) + bias`` (``var`` the biased variance).

    Args:
        epsilon: added to the variance.
    """

    epsilon: float = 1e-5

    def __post_init__(self) -> None:
        object.__setattr__(self, "epsilon", _epsilon("LayerNorm", self.epsilon))


@dataclasses.dataclass(frozen=True)
class SelfAttention:
    """Multi-head scaled dot-product self-attention on ``(batch, length, features)``.

    ``q = x w_q + b_q`` (likewise ``k``, ``v``), split into ``heads`` heads of ``d = features /
    heads``; per head ``p = softmax(q k^T / sqrt(d))`` over the keys (with ``causal``, position
    ``t`` sees only positions ``<= t``), ``o = p v``; the heads side by side, ``out = o w_o + b_o``.

    Args:
        heads: the number of heads; it must divide the features.
        causal: mask the future, as a language model does.
        bias: whether the four projections have biases.
    """

    heads: int
    causal: bool = False
    bias: bool = True

    def __post_init__(self) -> None:
        check_positive_int("SelfAttention", "heads", self.heads)
        for name in ("causal", "bias"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(
                    f"SelfAttention: {name} must be True or False, got {getattr(self, name)!r}."
                )


@dataclasses.dataclass(frozen=True)
class Dropout:
    """Inverted dropout: with a key, ``out = x * mask / (1 - rate)``, ``mask ~ bernoulli(1 - rate)``
    per entry; without a key (evaluation), ``out = x``.

    Args:
        rate: the probability of dropping an entry, ``0 <= rate < 1``.
    """

    rate: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate", _fraction("Dropout", "rate", self.rate, 1.0, closed=False))


@dataclasses.dataclass(frozen=True)
class BatchNorm:
    """Each channel (last axis) normalised over the batch and every other axis, then scaled and
    shifted: ``out = scale * (x - mean) / sqrt(var + epsilon) + bias``.

    In training the batch's own mean and (biased) variance are used, and the running ones move
    towards them: ``running = momentum * running + (1 - momentum) * batch``. In evaluation the
    running ones are used. The running statistics are state, passed explicitly
    (:meth:`jaxbp.Sequential.apply_with_state`).

    Args:
        momentum: the weight of the old running statistics, ``0 <= momentum <= 1``.
        epsilon: added to the variance.
    """

    momentum: float = 0.99
    epsilon: float = 1e-5

    def __post_init__(self) -> None:
        momentum = _fraction("BatchNorm", "momentum", self.momentum, 1.0, closed=True)
        object.__setattr__(self, "momentum", momentum)
        object.__setattr__(self, "epsilon", _epsilon("BatchNorm", self.epsilon))


MODERN_TYPES: tuple[type, ...] = (
    Embedding,
    PositionalEmbedding,
    LayerNorm,
    SelfAttention,
    Dropout,
    BatchNorm,
)

#: How each parameter starts: ``"normal"`` (N(0, 1)), ``"glorot"``, ``"ones"`` or ``"zeros"``.
INIT = {
    "table": "normal",
    "positions": "normal",
    "scale": "ones",
    "bias": "zeros",
    **{f"w_{name}": "glorot" for name in "qkvo"},
    **{f"b_{name}": "zeros" for name in "qkvo"},
}


def _sequence(where: str, name: str, shape: Shape) -> None:
    if len(shape) != 2:
        raise ValueError(
            f"{where}: {name} needs sequences (batch, length, features) but gets examples of "
            f"shape {shape}; put an Embedding first, or Reshape((length, features))."
        )


def output_shape(layer: Any, shape: Shape, where: str) -> Shape:
    """The per-example output shape of one of these layers on per-example inputs ``shape``."""
    name = type(layer).__name__
    if isinstance(layer, Embedding):
        if len(shape) != 1:
            raise ValueError(
                f"{where}: Embedding takes integer tokens (batch, length) but gets examples of "
                f"shape {shape}; pass input_shape=(length,)."
            )
        return (*shape, layer.features)
    if isinstance(layer, PositionalEmbedding):
        _sequence(where, name, shape)
        if shape[0] > layer.max_length:
            raise ValueError(
                f"{where}: PositionalEmbedding(max_length={layer.max_length}) gets sequences of "
                f"length {shape[0]}; raise max_length to at least {shape[0]}."
            )
        return shape
    if isinstance(layer, SelfAttention):
        _sequence(where, name, shape)
        if shape[1] % layer.heads:
            raise ValueError(
                f"{where}: SelfAttention with {layer.heads} heads cannot split {shape[1]} "
                f"features evenly; use a number of heads that divides {shape[1]}."
            )
        return shape
    if isinstance(layer, LayerNorm) and shape[-1] == 1:
        raise ValueError(
            f"{where}: LayerNorm normalises over the last axis, which has 1 feature here "
            f"(examples of shape {shape}): x - mean is 0, so its output would be its bias "
            f"whatever the input. Normalise more than one feature (for channels of a signal, "
            f"BatchNorm normalises each over the batch and positions)."
        )
    return shape  # LayerNorm, Dropout, BatchNorm keep the shape


def param_shapes(layer: Any, shape: Shape) -> dict[str, Shape]:
    """The shape of each parameter of one of these layers on per-example inputs ``shape``."""
    if isinstance(layer, Embedding):
        return {"table": (layer.vocab_size, layer.features)}
    if isinstance(layer, PositionalEmbedding):
        return {"positions": (layer.max_length, shape[-1])}
    if isinstance(layer, LayerNorm | BatchNorm):
        return {"scale": (shape[-1],), "bias": (shape[-1],)}
    if isinstance(layer, SelfAttention):
        features = shape[-1]
        shapes: dict[str, Shape] = {f"w_{name}": (features, features) for name in "qkvo"}
        if layer.bias:
            shapes |= {f"b_{name}": (features,) for name in "qkvo"}
        return shapes
    return {}


def state_shapes(layer: Any, shape: Shape) -> dict[str, Shape]:
    """The running state of a layer (BatchNorm's mean and variance per channel; else none)."""
    if isinstance(layer, BatchNorm):
        return {"mean": (shape[-1],), "var": (shape[-1],)}
    return {}
