"""Both CPU cores: does a different batching of the small MLP's work keep both CPU cores busy?

The 64-128-128-10 MLP with batch 64 is too small for XLA CPU to split one step's matmuls over
threads. Each contender below does independent training work and is measured in model-examples
per second (one example through one model's SGD step), with the cores it kept busy:

- one ``jaxbp.fit`` (the baseline);
- ``jaxbp.fit_ensemble`` with M = 2 and 4 models on the same batches (``vmap``: one program whose
  matmuls are M times larger);
- two ``jaxbp.fit`` calls on two Python threads at once (two programs; JAX releases the GIL while
  a program runs);
- one ``jaxbp.fit`` with batch 128 (twice the work per step; not the same training, shown for the
  matmul size alone).
"""

from __future__ import annotations

import threading

import jax
import jax.numpy as jnp
import numpy as np

import jaxbp
from benchmarks._harness import Contender
from benchmarks.mlp import LR, make_data, make_spec

SIZES = (64, 128, 128, 10)
BATCH = 64


def contenders(batches: int, epochs: int) -> list[Contender]:
    spec = make_spec(SIZES)
    np_params, np_x, np_y = make_data(SIZES, BATCH, batches)
    params, x, y = jax.tree.map(jnp.asarray, (np_params, np_x, np_y))
    examples = BATCH * batches * epochs
    loss = "softmax_cross_entropy"

    def fit(p=params, batch=BATCH):
        trained, _ = jaxbp.fit(spec, loss, p, x, y, lr=LR, epochs=epochs, batch_size=batch)
        return jax.block_until_ready(trained)

    def ensemble(stacked):
        trained, _ = jaxbp.fit_ensemble(
            spec, loss, stacked, x, y, lr=LR, epochs=epochs, batch_size=BATCH
        )
        return jax.block_until_ready(trained)

    stacked = {m: jaxbp.init_ensemble(spec, jax.random.key(1), m) for m in (2, 4)}
    other = jax.tree.map(lambda p: p * np.float32(0.5), params)

    def two_threads():
        threads = [threading.Thread(target=fit, args=(p,)) for p in (params, other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    return [
        Contender("1 model: jaxbp.fit", fit, examples),
        Contender("2 models: fit_ensemble (vmap)", lambda: ensemble(stacked[2]), 2 * examples),
        Contender("4 models: fit_ensemble (vmap)", lambda: ensemble(stacked[4]), 4 * examples),
        Contender("2 models: 2 fits on 2 threads", two_threads, 2 * examples),
        Contender("1 model, batch 128: jaxbp.fit", lambda: fit(batch=2 * BATCH), examples),
    ]
