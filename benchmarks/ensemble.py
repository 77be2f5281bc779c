"""Ensembles of M 1-4-2-1 networks (the worked example's), each with its own learning rate, in one program.

``jaxbp.fit_ensemble`` against the same thing written by hand (``vmap`` of a raw SGD step inside
a raw ``lax.scan``). Units are model-steps; the time per step is ``M`` times that.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import jaxbp
from benchmarks._harness import Contender, check_same_params
from benchmarks.tiny_network_steps import SPEC, example_numpy, raw_step

CHECK_STEPS = 20


def learning_rates(num_models: int) -> np.ndarray:
    return np.linspace(0.05, 0.25, num_models, dtype=np.float32)


@jax.jit
def raw_ensemble(params, x, y, lrs, steps_like):
    """Hand-fused: ``vmap`` of the raw step over models, inside one ``lax.scan`` over steps."""
    step = jax.vmap(raw_step, in_axes=(0, None, None, 0))
    return jax.lax.scan(lambda p, _: step(p, x, y, lrs), params, steps_like)


def contenders(num_models: int, steps: int) -> list[Contender]:
    _, np_x, np_y = example_numpy()
    x, y = jnp.asarray(np_x), jnp.asarray(np_y)
    stacked = jaxbp.init_ensemble(SPEC, jax.random.key(0), num_models)
    lrs = jnp.asarray(learning_rates(num_models))

    def fit(n: int):
        trained, _ = jaxbp.fit_ensemble(SPEC, "half_se", stacked, x, y, lr=lrs, epochs=n)
        return jax.block_until_ready(trained)

    def scan(n: int):
        trained, _ = raw_ensemble(stacked, x, y, lrs, jnp.zeros((n, 0)))
        return jax.block_until_ready(trained)

    units = num_models * steps
    return [
        Contender("jaxbp.fit_ensemble", lambda: fit(steps), units, lambda: fit(CHECK_STEPS)),
        Contender("raw vmap lax.scan", lambda: scan(steps), units, lambda: scan(CHECK_STEPS)),
    ]


def check(num_models: int, all_contenders: list[Contender]) -> None:
    """Both contenders agree on every model; the first and last equal the float64 chain rule."""
    got = {c.name: c.params() for c in all_contenders}
    reference = got.pop("raw vmap lax.scan")
    check_same_params(reference, got, rtol=1e-5, atol=1e-6)  # every model at once
    _, x, y = example_numpy()
    initial = jaxbp.init_ensemble(SPEC, jax.random.key(0), num_models)
    got["raw vmap lax.scan"] = reference
    for i in sorted({0, num_models - 1}):
        lr = float(learning_rates(num_models)[i])
        model = [{k: np.asarray(v[i], np.float64) for k, v in layer.items()} for layer in initial]
        for _ in range(CHECK_STEPS):
            _, grads = jaxbp.manual.backprop(SPEC, "half_se", model, x, y)
            model = jaxbp.manual.sgd(model, grads, lr)
        picked = {
            name: [{k: np.asarray(v[i]) for k, v in layer.items()} for layer in params]
            for name, params in got.items()
        }
        check_same_params(model, picked, rtol=1e-4, atol=1e-5)
