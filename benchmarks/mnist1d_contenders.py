"""The MNIST-1D CNN's training loops outside jaxbp's own: PyTorch eager, Flax linen, Equinox.

Each ``*_trainer(init, x, y, lr, batch)`` returns ``train(steps)``: that many Adam steps from the
same initial weights (given in jaxbp's layout: conv ``w (kernel, in, out)``, channels-last
flattening), batches in data order, and the trained parameters converted back to jaxbp's layout,
so one check and one accuracy function serve every contender. PyTorch and Equinox are
channels-first: their conv kernels are ``(out, in, kernel)`` and their flattening puts the channel
first, so the linear layer's rows are permuted on the way in and out.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

CONVS = ((5, 2, 1), (3, 2, 1), (3, 2, 1))  # kernel, stride, padding of the three conv layers
LENGTH_OUT, CHANNELS = 5, 25  # the last conv's output: 5 positions x 25 channels


def _linear_to_channels_first(w: np.ndarray) -> np.ndarray:
    """jaxbp's (125, 10), rows ``l * 25 + c`` -> PyTorch's (10, 125), columns ``c * 5 + l``."""
    return w.reshape(LENGTH_OUT, CHANNELS, -1).transpose(1, 0, 2).reshape(-1, w.shape[-1]).T


def _linear_from_channels_first(w: np.ndarray) -> np.ndarray:
    return w.T.reshape(CHANNELS, LENGTH_OUT, -1).transpose(1, 0, 2).reshape(-1, w.shape[0])


def _channels_first(init: list) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weight, bias) per layer in PyTorch's layout."""
    convs = [
        (np.asarray(init[i]["w"]).transpose(2, 1, 0), np.asarray(init[i]["b"])) for i in (1, 2, 3)
    ]
    return [*convs, (_linear_to_channels_first(np.asarray(init[5]["w"])), np.asarray(init[5]["b"]))]


def _from_channels_first(weights: list[tuple[np.ndarray, np.ndarray]]) -> list:
    convs = [{"w": w.transpose(2, 1, 0), "b": b.reshape(-1)} for w, b in weights[:3]]
    w, b = weights[3]
    return [{}, *convs, {}, {"w": _linear_from_channels_first(w), "b": b}]


def torch_trainer(
    init: list,
    x: np.ndarray,
    y: np.ndarray,
    lr: float,
    batch: int,
    threads: int | None = None,
    device: str = "cpu",
) -> Callable:
    """The paper's loop (notebooks/train.py): Adam, cross-entropy, ``loss.item()`` every step.

    ``threads``: PyTorch's intra-op threads during ``train`` (``None``: its default, one per core).
    ``device``: where the model and the data live (``"cuda"`` for a GPU).
    """
    import torch
    from torch import nn

    class ConvBase(nn.Module):  # notebooks/models.py
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv1d(1, CHANNELS, 5, stride=2, padding=1)
            self.conv2 = nn.Conv1d(CHANNELS, CHANNELS, 3, stride=2, padding=1)
            self.conv3 = nn.Conv1d(CHANNELS, CHANNELS, 3, stride=2, padding=1)
            self.linear = nn.Linear(CHANNELS * LENGTH_OUT, 10)

        def forward(self, v):
            v = v.view(-1, 1, v.shape[-1])
            h = self.conv3(self.conv2(self.conv1(v).relu()).relu()).relu()
            return self.linear(h.view(h.shape[0], -1))

    x_t = torch.tensor(x, device=device)
    y_t = torch.tensor(y, dtype=torch.long, device=device)
    start = [
        (torch.tensor(w, device=device), torch.tensor(b, device=device))
        for w, b in _channels_first(init)
    ]

    def train(steps: int) -> list:
        default_threads = torch.get_num_threads()
        torch.set_num_threads(threads or default_threads)
        try:
            return _train(steps)
        finally:
            torch.set_num_threads(default_threads)

    def _train(steps: int) -> list:
        model = ConvBase().to(device)
        with torch.no_grad():
            for layer, (w, b) in zip(
                (model.conv1, model.conv2, model.conv3, model.linear), start, strict=True
            ):
                layer.weight.copy_(w)
                layer.bias.copy_(b)
        optimizer = torch.optim.Adam(model.parameters(), lr)
        criterion = nn.CrossEntropyLoss()
        for step in range(steps):
            i = (step * batch) % len(x_t)
            loss = criterion(model(x_t[i : i + batch]), y_t[i : i + batch])
            loss.item()  # the paper records every step's loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        layers = (model.conv1, model.conv2, model.conv3, model.linear)
        return _from_channels_first(
            [(m.weight.detach().cpu().numpy(), m.bias.detach().cpu().numpy()) for m in layers]
        )

    return train


def _optax_loop(
    step: Callable, params: Any, x: Any, y: Any, lr: float, batch: int, steps: int
) -> Any:
    optimizer = optax.adam(lr)
    state = optimizer.init(params)
    for index in range(steps):
        i = (index * batch) % len(y)
        params, state, _ = step(params, state, x[i : i + batch], y[i : i + batch])
    return jax.block_until_ready(params)


def flax_trainer(init: list, x: np.ndarray, y: np.ndarray, lr: float, batch: int) -> Callable:
    """Flax linen's functional ``apply`` in a jitted optax step; the data stay on the device."""
    from flax import linen as nn

    class CNN(nn.Module):
        @nn.compact
        def __call__(self, v):
            h = v[:, :, None]
            for kernel, stride, pad in CONVS:
                h = nn.relu(nn.Conv(CHANNELS, (kernel,), (stride,), padding=((pad, pad),))(h))
            return nn.Dense(10)(h.reshape(h.shape[0], -1))

    model, optimizer = CNN(), optax.adam(lr)
    params = {
        "params": {
            **{
                f"Conv_{i}": {
                    "kernel": jnp.asarray(init[i + 1]["w"]),
                    "bias": jnp.asarray(init[i + 1]["b"]),
                }
                for i in range(3)
            },
            "Dense_0": {"kernel": jnp.asarray(init[5]["w"]), "bias": jnp.asarray(init[5]["b"])},
        }
    }

    @jax.jit
    def step(p, state, xb, yb):
        def loss(q):
            return optax.softmax_cross_entropy_with_integer_labels(model.apply(q, xb), yb).mean()

        value, grads = jax.value_and_grad(loss)(p)
        updates, state = optimizer.update(grads, state, p)
        return optax.apply_updates(p, updates), state, value

    x_d, y_d = jnp.asarray(x), jnp.asarray(y)

    def train(steps: int) -> list:
        p = _optax_loop(step, params, x_d, y_d, lr, batch, steps)["params"]
        convs = [
            {"w": np.asarray(p[f"Conv_{i}"]["kernel"]), "b": np.asarray(p[f"Conv_{i}"]["bias"])}
            for i in range(3)
        ]
        return [
            {},
            *convs,
            {},
            {"w": np.asarray(p["Dense_0"]["kernel"]), "b": np.asarray(p["Dense_0"]["bias"])},
        ]

    return train


def equinox_trainer(init: list, x: np.ndarray, y: np.ndarray, lr: float, batch: int) -> Callable:
    """An Equinox module (channels-first, one example, vmapped) in a filter_jit optax step."""
    import equinox as eqx

    class CNN(eqx.Module):
        convs: list
        linear: eqx.nn.Linear

        def __init__(self, key):
            keys = jax.random.split(key, 4)
            self.convs = [
                eqx.nn.Conv1d(
                    1 if i == 0 else CHANNELS, CHANNELS, k, stride=s, padding=p, key=keys[i]
                )
                for i, (k, s, p) in enumerate(CONVS)
            ]
            self.linear = eqx.nn.Linear(CHANNELS * LENGTH_OUT, 10, key=keys[3])

        def __call__(self, v):
            h = v[None, :]  # (1 channel, 40)
            for conv in self.convs:
                h = jax.nn.relu(conv(h))
            return self.linear(h.reshape(-1))

    model = CNN(jax.random.key(0))
    weights = _channels_first(init)
    for i, (w, b) in enumerate(weights[:3]):
        model = eqx.tree_at(
            lambda m, i=i: (m.convs[i].weight, m.convs[i].bias),
            model,
            (jnp.asarray(w), jnp.asarray(b)[:, None]),
        )
    model = eqx.tree_at(
        lambda m: (m.linear.weight, m.linear.bias), model, tuple(map(jnp.asarray, weights[3]))
    )
    optimizer = optax.adam(lr)

    @eqx.filter_jit
    def step(m, state, xb, yb):
        def loss(q):
            return optax.softmax_cross_entropy_with_integer_labels(jax.vmap(q)(xb), yb).mean()

        value, grads = eqx.filter_value_and_grad(loss)(m)
        updates, state = optimizer.update(grads, state, m)
        return eqx.apply_updates(m, updates), state, value

    x_d, y_d = jnp.asarray(x), jnp.asarray(y)

    def train(steps: int) -> list:
        state = optimizer.init(eqx.filter(model, eqx.is_array))
        m = model
        for index in range(steps):
            i = (index * batch) % len(y_d)
            m, state, _ = step(m, state, x_d[i : i + batch], y_d[i : i + batch])
        m = jax.block_until_ready(m)
        layers = [*m.convs, m.linear]
        return _from_channels_first(
            [(np.asarray(layer.weight), np.asarray(layer.bias)) for layer in layers]
        )

    return train


TRAINERS: dict[str, Callable] = {
    "torch": torch_trainer,
    "torch1": functools.partial(torch_trainer, threads=1),
    "flax": flax_trainer,
    "equinox": equinox_trainer,
}
