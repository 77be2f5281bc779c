"""Bring your own model: a pure CNN function of a dict of params, trained by ``jaxbp.fit``.

    python examples/own_model.py

Nothing jaxbp-specific in the model: ``model(params, x) -> logits`` over any pytree of params,
and optax's integer-label cross-entropy as the loss. ``fit`` compiles the whole run (every epoch,
every batch, the Adam update) into one program. The data is MNIST-1D, generated locally.
"""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxbp

CHANNELS = 25
EPOCHS = 40  # 1,600 Adam steps of 100 examples
LEARNING_RATE = 1e-2
BATCH_SIZE = 100
SEED = 0


def conv1d(x: jax.Array, w: jax.Array, stride: int, pad: int) -> jax.Array:
    """x (batch, length, in), w (kernel, in, out): every window as a row, then one matmul."""
    x = jnp.pad(x, ((0, 0), (pad, pad), (0, 0)))
    kernel, length = w.shape[0], (x.shape[1] - w.shape[0]) // stride + 1
    span = stride * (length - 1) + 1
    patches = jnp.stack([x[:, k : k + span : stride] for k in range(kernel)], axis=2)
    return patches.reshape(x.shape[0], length, -1) @ w.reshape(-1, w.shape[-1])


def model(params: dict, x: jax.Array) -> jax.Array:
    """The MNIST-1D paper's CNN: three strided relu convolutions, then a linear layer."""
    h = x[:, :, None]  # (batch, 40) -> (batch, 40, 1 channel)
    for name in ("conv1", "conv2", "conv3"):
        h = jax.nn.relu(conv1d(h, params[name]["w"], stride=2, pad=1) + params[name]["b"])
    return h.reshape(h.shape[0], -1) @ params["out"]["w"] + params["out"]["b"]


def init(key: jax.Array) -> dict:
    """He-normal kernels, zero biases, as a plain dict."""
    shapes = {"conv1": (5, 1, CHANNELS), "conv2": (3, CHANNELS, CHANNELS)}
    shapes |= {"conv3": (3, CHANNELS, CHANNELS), "out": (5 * CHANNELS, 10)}
    params = {}
    for (name, shape), k in zip(shapes.items(), jax.random.split(key, len(shapes)), strict=True):
        fan_in = math.prod(shape[:-1])
        w = jax.random.normal(k, shape) * math.sqrt(2 / fan_in)
        params[name] = {"w": w, "b": jnp.zeros(shape[-1])}
    return params


def main(epochs: int = EPOCHS) -> float:
    data = jaxbp.datasets.mnist1d()
    params = init(jax.random.key(SEED))
    start = time.perf_counter()
    params, history = jaxbp.fit(
        model,
        optax.softmax_cross_entropy_with_integer_labels,
        params,
        data.x_train,
        data.y_train,
        epochs=epochs,
        batch_size=BATCH_SIZE,
        optimizer=optax.adam(LEARNING_RATE),
    )
    seconds = time.perf_counter() - start
    accuracy = float(np.mean(np.asarray(model(params, data.x_test)).argmax(-1) == data.y_test))
    losses = np.asarray(history["loss"])
    print(f"loss: first batch {losses[0]:.3f}, last epoch {losses[-40:].mean():.4f}")
    print(f"test accuracy: {accuracy:.3f} after {len(losses)} steps in {seconds:.1f} s")
    return accuracy


if __name__ == "__main__":
    main()
