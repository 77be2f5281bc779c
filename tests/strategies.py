"""Hypothesis strategies that draw network structure; arrays come from a generator seeded by a draw."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st

import jaxbp

ACTIVATION_NAMES = sorted(jaxbp.ACTIVATIONS)
LOSS_NAMES = sorted(jaxbp.LOSSES)


def output_fits_loss(activation: str, loss: str, width: int) -> bool:
    """Whether an output layer with this activation gives values the loss is defined on."""
    if loss == "cross_entropy":  # needs probabilities > 0
        return activation in ("sigmoid", "softmax")
    if loss == "binary_cross_entropy":  # needs 0 < p < 1
        return activation == "sigmoid" or (activation == "softmax" and width >= 2)
    return True


def make_targets(loss: str, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Targets of the kind each loss expects: real values, distributions, or values in [0, 1]."""
    if loss in ("cross_entropy", "softmax_cross_entropy"):
        logits = 2.0 * rng.standard_normal(shape)
        exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return exp / exp.sum(axis=-1, keepdims=True)
    if loss == "binary_cross_entropy":
        return rng.uniform(size=shape)
    return rng.standard_normal(shape)


@st.composite
def networks(
    draw: st.DrawFn, activation: str | None = None, loss: str | None = None, max_width: int = 16
) -> dict[str, Any]:
    """A random network and batch: depth 1-4, widths 1-max_width, bias per layer, batch 1-8.

    With ``activation`` given, every hidden layer uses it, and so does the output layer when it
    fits the loss (a one-layer network is made deeper when it does not).
    """
    loss = loss or draw(st.sampled_from(LOSS_NAMES))
    depth = draw(st.integers(1, 4))
    sizes = [draw(st.integers(1, max_width)) for _ in range(depth + 1)]
    if activation is None:
        hidden = [draw(st.sampled_from(ACTIVATION_NAMES)) for _ in range(depth - 1)]
        fitting = [a for a in ACTIVATION_NAMES if output_fits_loss(a, loss, sizes[-1])]
        if not fitting:  # a softmax over one unit cannot feed binary cross-entropy: widen it
            sizes[-1] = max(sizes[-1], 2)
            fitting = [a for a in ACTIVATION_NAMES if output_fits_loss(a, loss, sizes[-1])]
        output = draw(st.sampled_from(fitting))
    else:
        if loss == "binary_cross_entropy" and activation == "softmax":
            sizes[-1] = max(sizes[-1], 2)
        if output_fits_loss(activation, loss, sizes[-1]):
            output = activation
        else:
            output = "sigmoid"
            if depth == 1:
                sizes.insert(1, draw(st.integers(1, max_width)))
                depth = 2
        hidden = [activation] * (depth - 1)
    bias = tuple(draw(st.booleans()) for _ in range(depth))
    spec = jaxbp.MLP(sizes=tuple(sizes), activations=(*hidden, output), bias=bias)
    batch = draw(st.integers(1, 8))
    # NumPy's seeded generator rather than jax.random: it needs no compilation per shape.
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    params = []
    for (fan_in, fan_out), has_bias in zip(spec.layer_shapes, spec.layer_bias, strict=True):
        layer = {"w": jnp.asarray(rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in))}
        if has_bias:  # non-zero biases, so a wrong bias gradient shows
            layer["b"] = jnp.asarray(0.5 * rng.standard_normal(fan_out))
        params.append(layer)
    x = jnp.asarray(rng.standard_normal((batch, sizes[0])))
    y = jnp.asarray(make_targets(loss, rng, (batch, sizes[-1])))
    return {"spec": spec, "loss": loss, "params": params, "x": x, "y": y}
