"""SGD steps per second on a tiny network, seven ways: where fixed per-step costs dominate.

The network is the worked example's ReLU / sigmoid / linear 1-4-2-1 with biases, half squared
error, x = 2, y = 3, lr = 0.25 (``jaxbp.worked.grading.EXAMPLES["relu-sigmoid-linear"]``), in float32.
The contenders: ``jaxbp.fit`` (the whole run one program), the same run written by hand as a raw
``lax.scan``, a jitted step called from a Python loop, jaxbp's NumPy chain rule (float64), PyTorch
eager, Equinox (``filter_jit`` step in a Python loop) and Flax NNX (``nnx.jit`` step in a loop).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jaxbp
from benchmarks._harness import Contender, check_same_params, installed
from jaxbp.worked.grading import EXAMPLES, spec_of

EXAMPLE = EXAMPLES["relu-sigmoid-linear"]
SPEC = spec_of(EXAMPLE)
LR = EXAMPLE.learning_rate
CHECK_STEPS = 20


def example_numpy() -> tuple[list[dict[str, np.ndarray]], np.ndarray, np.ndarray]:
    """The 1-4-2-1 network's parameters, x ``(1, 1)`` and y ``(1, 1)``, float32 NumPy."""
    params = [
        {"w": np.array(w, np.float32), "b": np.array(b, np.float32)}
        for w, b in zip(EXAMPLE.weights, EXAMPLE.biases, strict=True)
    ]
    return params, np.array(EXAMPLE.x, np.float32), np.array(EXAMPLE.y, np.float32)


def raw_loss(params: Any, x: jax.Array, y: jax.Array) -> jax.Array:
    """The 1-4-2-1 network's loss written out in raw JAX (no jaxbp)."""
    a = jax.nn.relu(x @ params[0]["w"] + params[0]["b"])
    a = jax.nn.sigmoid(a @ params[1]["w"] + params[1]["b"])
    a = a @ params[2]["w"] + params[2]["b"]
    return jnp.mean(0.5 * jnp.sum((a - y) ** 2, axis=-1))


def raw_step(params: Any, x: jax.Array, y: jax.Array, lr: jax.Array) -> tuple[Any, jax.Array]:
    value, grads = jax.value_and_grad(raw_loss)(params, x, y)
    return jax.tree.map(lambda p, g: p - lr * g, params, grads), value


@jax.jit
def raw_scan(params: Any, x: jax.Array, y: jax.Array, lr: jax.Array, steps_like: jax.Array):
    """``steps_like.shape[0]`` SGD steps fused into one ``lax.scan``, written by hand."""
    return jax.lax.scan(lambda p, _: raw_step(p, x, y, lr), params, steps_like)


def manual_reference(steps: int) -> list[dict[str, np.ndarray]]:
    """The oracle: jaxbp's NumPy float64 chain rule, ``steps`` SGD steps."""
    params, x, y = example_numpy()
    for _ in range(steps):
        _, grads = jaxbp.manual.backprop(SPEC, "half_se", params, x, y)
        params = jaxbp.manual.sgd(params, grads, LR)
    return params


def contenders(fused_steps: int, loop_steps: int) -> list[Contender]:
    """Every available contender; fused ones do ``fused_steps`` per run, loops ``loop_steps``."""
    np_params, np_x, np_y = example_numpy()
    params, x, y = jax.tree.map(jnp.asarray, (np_params, np_x, np_y))
    lr = jnp.float32(LR)

    def fit(steps: int) -> Any:
        trained, _ = jaxbp.fit(SPEC, "half_se", params, x, y, lr=LR, epochs=steps)
        return jax.block_until_ready(trained)

    def scan(steps: int) -> Any:
        trained, _ = raw_scan(params, x, y, lr, jnp.zeros((steps, 0)))
        return jax.block_until_ready(trained)

    jit_step = jax.jit(raw_step)

    def jit_loop(steps: int) -> Any:
        p = params
        for _ in range(steps):
            p, _ = jit_step(p, x, y, lr)
        return jax.block_until_ready(p)

    def numpy_loop(steps: int) -> Any:
        p = np_params
        for _ in range(steps):
            _, grads = jaxbp.manual.backprop(SPEC, "half_se", p, np_x, np_y)
            p = jaxbp.manual.sgd(p, grads, LR)
        return p

    loops = [
        Contender("jaxbp.fit", lambda: fit(fused_steps), fused_steps, lambda: fit(CHECK_STEPS)),
        Contender(
            "raw lax.scan", lambda: scan(fused_steps), fused_steps, lambda: scan(CHECK_STEPS)
        ),
        Contender(
            "jit step, Python loop",
            lambda: jit_loop(loop_steps),
            loop_steps,
            lambda: jit_loop(CHECK_STEPS),
        ),
        Contender(
            "NumPy chain rule (float64)",
            lambda: numpy_loop(loop_steps),
            loop_steps,
            lambda: numpy_loop(CHECK_STEPS),
        ),
    ]
    for module, make in (("torch", _torch), ("equinox", _equinox), ("flax", _flax_nnx)):
        if installed(module):
            name, loop = make(np_params, np_x, np_y)
            loops.append(
                Contender(
                    name,
                    lambda loop=loop: loop(loop_steps),
                    loop_steps,
                    lambda loop=loop: loop(CHECK_STEPS),
                )
            )
    return loops


def check(all_contenders: list[Contender]) -> None:
    """Every contender's parameters after ``CHECK_STEPS`` steps equal the float64 chain rule's."""
    reference = manual_reference(CHECK_STEPS)
    got = {c.name: c.params() for c in all_contenders if c.params is not None}
    check_same_params(reference, got, rtol=1e-4, atol=1e-5)


def _torch(np_params, np_x, np_y):
    import torch

    tensors = [{k: torch.tensor(v) for k, v in layer.items()} for layer in np_params]
    x, y = torch.tensor(np_x), torch.tensor(np_y)

    def loop(steps: int):
        p = [{k: v.clone().requires_grad_(True) for k, v in layer.items()} for layer in tensors]
        for _ in range(steps):
            a = torch.relu(x @ p[0]["w"] + p[0]["b"])
            a = torch.sigmoid(a @ p[1]["w"] + p[1]["b"])
            a = a @ p[2]["w"] + p[2]["b"]
            loss = (0.5 * ((a - y) ** 2).sum(dim=-1)).mean()
            loss.backward()
            with torch.no_grad():
                for layer in p:
                    for v in layer.values():
                        v -= LR * v.grad
                        v.grad = None
        return [{k: v.detach().numpy() for k, v in layer.items()} for layer in p]

    return "PyTorch eager", loop


def _equinox(np_params, np_x, np_y):
    import equinox as eqx

    keys = jax.random.split(jax.random.key(0), 3)
    layers = []
    for layer, k in zip(np_params, keys, strict=True):
        fan_in, fan_out = layer["w"].shape
        linear = eqx.nn.Linear(fan_in, fan_out, key=k)
        linear = eqx.tree_at(lambda m: (m.weight, m.bias), linear, (layer["w"].T, layer["b"]))
        layers.append(jax.tree.map(jnp.asarray, linear))
    model = tuple(layers)
    x, y = jnp.asarray(np_x[0]), jnp.asarray(np_y[0])  # eqx.nn.Linear takes one example

    def loss_fn(m, x, y):
        a = jax.nn.relu(m[0](x))
        a = jax.nn.sigmoid(m[1](a))
        return 0.5 * jnp.sum((m[2](a) - y) ** 2)

    @eqx.filter_jit
    def step(m, x, y):
        value, grads = eqx.filter_value_and_grad(loss_fn)(m, x, y)
        return eqx.apply_updates(m, jax.tree.map(lambda g: -LR * g, grads)), value

    def loop(steps: int):
        m = model
        for _ in range(steps):
            m, _ = step(m, x, y)
        jax.block_until_ready(m)
        return [{"w": np.asarray(lin.weight).T, "b": np.asarray(lin.bias)} for lin in m]

    return "Equinox (filter_jit step, loop)", loop


def _flax_nnx(np_params, np_x, np_y):
    from flax import nnx

    class TinyNetwork(nnx.Module):
        def __init__(self, rngs: nnx.Rngs):
            self.layers = nnx.List([nnx.Linear(i, o, rngs=rngs) for i, o in SPEC.layer_shapes])

        def __call__(self, x):
            a = jax.nn.relu(self.layers[0](x))
            a = jax.nn.sigmoid(self.layers[1](a))
            return self.layers[2](a)

    x, y = jnp.asarray(np_x), jnp.asarray(np_y)

    @nnx.jit
    def step(model, x, y):
        def loss_fn(m):
            return jnp.mean(0.5 * jnp.sum((m(x) - y) ** 2, axis=-1))

        value, grads = nnx.value_and_grad(loss_fn)(model)
        state = nnx.state(model, nnx.Param)
        nnx.update(model, jax.tree.map(lambda p, g: p - LR * g, state, grads))
        return value

    model = TinyNetwork(nnx.Rngs(0))

    def loop(steps: int):
        for layer, values in zip(model.layers, np_params, strict=True):
            layer.kernel[...] = jnp.asarray(values["w"])
            layer.bias[...] = jnp.asarray(values["b"])
        for _ in range(steps):
            step(model, x, y)
        return [
            {"w": np.asarray(layer.kernel[...]), "b": np.asarray(layer.bias[...])}
            for layer in model.layers
        ]

    return "Flax NNX (nnx.jit step, loop)", loop
