"""Layers beyond dense: static layer specs composed into a :class:`Sequential` network.

Each layer is a frozen dataclass (hashable, so a network is a static argument to ``jit``); the
network's parameters are a list with one dict per layer. The forward pass is in JAX
(:mod:`jaxbp.layers.ops`, :mod:`jaxbp.layers.sequential`); the backward pass, written out by hand
in NumPy float64, is in :mod:`jaxbp.manual.layers`. Dropout takes a random key and BatchNorm its
running state explicitly (:meth:`Sequential.apply_with_state`).
"""

from jaxbp.layers.modern import (
    BatchNorm,
    Dropout,
    Embedding,
    LayerNorm,
    PositionalEmbedding,
    SelfAttention,
)
from jaxbp.layers.ops import CONV_IMPL_BY_BACKEND
from jaxbp.layers.sequential import Sequential
from jaxbp.layers.specs import (
    Activation,
    AvgPool1D,
    AvgPool2D,
    Conv1D,
    Conv2D,
    Dense,
    Flatten,
    MaxPool1D,
    MaxPool2D,
    Reshape,
    Residual,
)

__all__ = (
    "CONV_IMPL_BY_BACKEND",
    "Activation",
    "AvgPool1D",
    "AvgPool2D",
    "BatchNorm",
    "Conv1D",
    "Conv2D",
    "Dense",
    "Dropout",
    "Embedding",
    "Flatten",
    "LayerNorm",
    "MaxPool1D",
    "MaxPool2D",
    "PositionalEmbedding",
    "Reshape",
    "Residual",
    "SelfAttention",
    "Sequential",
)
