"""MLPs with softmax cross-entropy: examples/s and GFLOP/s against the measured float32 matmul peak.

Two sizes: 64-128-128-10 with batch 64 (the digits data set's size) and 784-1024-1024-10 with
batch 256 (MNIST's), ReLU hidden layers, logits out, ``softmax_cross_entropy``, plain SGD, float32,
synthetic data (a fixed Gaussian x, one-hot y). A step costs ``6 x weights x batch`` FLOPs
(forward 2, backward 4 multiply-adds per weight and example). The contenders: ``jaxbp.fit`` (no
shuffling, and shuffled with a key), the same run as a raw ``lax.scan``, a jitted step in a Python
loop, and PyTorch eager. The peak is the best float32 matmul rate (JAX and PyTorch, square
matrices) measured in the same process.
"""

from __future__ import annotations

import itertools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jaxbp
from benchmarks._harness import Contender, check_same_params, installed

LR = 0.05
CHECK_STEPS = 3


def make_spec(sizes: tuple[int, ...]) -> jaxbp.MLP:
    return jaxbp.MLP(sizes=sizes, activations=("relu",) * (len(sizes) - 2) + ("linear",))


def weights(sizes: tuple[int, ...]) -> int:
    """Number of weights (biases not counted in the FLOP convention)."""
    return sum(a * b for a, b in itertools.pairwise(sizes))


def make_data(sizes: tuple[int, ...], batch: int, batches: int, seed: int = 0):
    """Float32 NumPy params (jaxbp layout), x ``(batch * batches, in)`` and one-hot y."""
    spec = make_spec(sizes)
    params = jax.tree.map(np.asarray, spec.init(jax.random.key(seed)))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch * batches, sizes[0])).astype(np.float32)
    y = np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], batch * batches)]
    return params, x, y


def raw_loss(params: Any, x: jax.Array, y: jax.Array) -> jax.Array:
    """ReLU MLP logits and softmax cross-entropy in raw JAX (no jaxbp)."""
    a = x
    for layer in params[:-1]:
        a = jax.nn.relu(a @ layer["w"] + layer["b"])
    logits = a @ params[-1]["w"] + params[-1]["b"]
    return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(logits), axis=-1))


def raw_step(params: Any, xb: jax.Array, yb: jax.Array, lr: jax.Array):
    value, grads = jax.value_and_grad(raw_loss)(params, xb, yb)
    return jax.tree.map(lambda p, g: p - lr * g, params, grads), value


def _raw_epochs(params, x, y, lr, epochs_like, *, batch: int):
    """Hand-fused: epochs x batches SGD steps as two nested ``lax.scan``s over reshaped data."""
    xs = x.reshape(-1, batch, x.shape[-1])
    ys = y.reshape(-1, batch, y.shape[-1])

    def epoch(p, _):
        return jax.lax.scan(lambda q, b: raw_step(q, b[0], b[1], lr), p, (xs, ys))

    return jax.lax.scan(epoch, params, epochs_like)


raw_epochs = jax.jit(_raw_epochs, static_argnames="batch")


def manual_reference(sizes, batch, batches, steps):
    """The oracle: jaxbp's NumPy float64 chain rule over the same batches in the same order."""
    params, x, y = make_data(sizes, batch, batches)
    spec = make_spec(sizes)
    for step in range(steps):
        index = slice((step % batches) * batch, (step % batches + 1) * batch)
        _, grads = jaxbp.manual.backprop(spec, "softmax_cross_entropy", params, x[index], y[index])
        params = jaxbp.manual.sgd(params, grads, LR)
    return params


def contenders(sizes, batch: int, batches: int, epochs: int, loop_steps: int) -> list[Contender]:
    """Fused contenders run ``epochs`` epochs of ``batches`` steps; loops run ``loop_steps``."""
    if batches < CHECK_STEPS:
        raise ValueError(f"mlp.contenders: batches must be >= {CHECK_STEPS}, got {batches}.")
    spec = make_spec(sizes)
    np_params, np_x, np_y = make_data(sizes, batch, batches)
    params, x, y = jax.tree.map(jnp.asarray, (np_params, np_x, np_y))
    examples = batch * batches * epochs
    check_x, check_y = x[: batch * CHECK_STEPS], y[: batch * CHECK_STEPS]

    def fit(key=None, xs=x, ys=y, n_epochs=epochs):
        trained, _ = jaxbp.fit(
            spec, "softmax_cross_entropy", params, xs, ys,
            lr=LR, epochs=n_epochs, batch_size=batch, key=key,
        )  # fmt: skip
        return jax.block_until_ready(trained)

    def scan(xs=x, ys=y, n_epochs=epochs):
        trained, _ = raw_epochs(
            params, xs, ys, jnp.float32(LR), jnp.zeros((n_epochs, 0)), batch=batch
        )
        return jax.block_until_ready(trained)

    jit_step = jax.jit(raw_step)

    def jit_loop(steps: int):
        p = params
        for step in range(steps):
            i = (step % batches) * batch
            p, _ = jit_step(p, x[i : i + batch], y[i : i + batch], jnp.float32(LR))
        return jax.block_until_ready(p)

    key = jax.random.key(0)
    result = [
        Contender("jaxbp.fit", fit, examples, lambda: fit(xs=check_x, ys=check_y, n_epochs=1)),
        Contender("jaxbp.fit, shuffled", lambda: fit(key), examples),
        Contender("raw lax.scan", scan, examples, lambda: scan(check_x, check_y, 1)),
        Contender(
            "jit step, Python loop",
            lambda: jit_loop(loop_steps),
            loop_steps * batch,
            lambda: jit_loop(CHECK_STEPS),
        ),
    ]
    if sizes[1] >= 512:  # an in-run profile: the step's matrix products alone, a lower bound

        def products_only(steps: int):
            for step in range(steps):
                i = (step % batches) * batch
                out = _products(params, x[i : i + batch])
            return jax.block_until_ready(out)

        result.append(
            Contender(
                "bound: the step's matmuls alone",
                lambda: products_only(loop_steps),
                loop_steps * batch,
            )
        )
    if installed("torch"):
        loop = _torch_loop(np_params, np_x, np_y, batch, batches)
        result.append(
            Contender(
                "PyTorch eager",
                lambda: loop(loop_steps),
                loop_steps * batch,
                lambda: loop(CHECK_STEPS),
            )
        )
    return result


@jax.jit
def _products(params: Any, x: jax.Array) -> list[jax.Array]:
    """The matrix products of one SGD step of a ReLU MLP, and nothing else.

    Forward ``a_l = a_{l-1} @ W_l``; backward ``dW_l = a_{l-1}^T @ delta_l`` for every layer and
    ``delta_{l-1} = delta_l @ W_l^T`` for all but the first: ``6 x weights x batch`` FLOPs.
    """
    inputs, a = [], x
    for layer in params:
        inputs.append(a)
        a = a @ layer["w"]
    delta, grads = a, []
    for index in reversed(range(len(params))):
        grads.append(inputs[index].T @ delta)
        if index:
            delta = delta @ params[index]["w"].T
    return grads


def check(sizes, batch: int, batches: int, all_contenders: list[Contender]) -> None:
    reference = manual_reference(sizes, batch, batches, CHECK_STEPS)
    got = {c.name: c.params() for c in all_contenders if c.params is not None}
    check_same_params(reference, got, rtol=1e-4, atol=1e-5)


def _torch_loop(np_params, np_x, np_y, batch: int, batches: int):
    import torch

    x, y = torch.tensor(np_x), torch.tensor(np_y)
    initial = [{k: torch.tensor(v) for k, v in layer.items()} for layer in np_params]

    def loop(steps: int):
        p = [{k: v.clone().requires_grad_(True) for k, v in layer.items()} for layer in initial]
        for step in range(steps):
            i = (step % batches) * batch
            a = x[i : i + batch]
            for layer in p[:-1]:
                a = torch.relu(a @ layer["w"] + layer["b"])
            logits = a @ p[-1]["w"] + p[-1]["b"]
            loss = -(y[i : i + batch] * torch.log_softmax(logits, dim=-1)).sum(dim=-1).mean()
            loss.backward()
            with torch.no_grad():
                for layer in p:
                    for v in layer.values():
                        v -= LR * v.grad
                        v.grad = None
        return [{k: v.detach().numpy() for k, v in layer.items()} for layer in p]

    return loop


def matmul_contenders(size: int, repeats: int) -> list[Contender]:
    """Float32 ``(size, size) @ (size, size)``, ``repeats`` times a run; units are FLOPs."""
    flops = 2 * size**3 * repeats
    rng = np.random.default_rng(0)
    a_np = rng.standard_normal((size, size)).astype(np.float32)
    b_np = rng.standard_normal((size, size)).astype(np.float32)
    a, b = jnp.asarray(a_np), jnp.asarray(b_np)
    matmul = jax.jit(lambda a, b: a @ b)

    def jax_run():
        for _ in range(repeats):
            out = matmul(a, b)
        return out.block_until_ready()

    result = [Contender(f"JAX jit matmul {size}", jax_run, flops)]
    if installed("torch"):
        import torch

        ta, tb = torch.tensor(a_np), torch.tensor(b_np)

        def torch_run():
            for _ in range(repeats):
                out = ta @ tb
            return out

        result.append(Contender(f"PyTorch matmul {size}", torch_run, flops))
    return result
