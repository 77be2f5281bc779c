"""Data-parallel training: the same ``jaxbp.fit`` call on one device or on every visible device.

    python examples/data_parallel.py                       # 1 CPU, or every GPU / TPU chip seen
    XLA_FLAGS=--xla_force_host_platform_device_count=8 python examples/data_parallel.py  # 8 CPUs
    python examples/data_parallel.py --distributed         # each host of a TPU slice / Slurm job
    python examples/data_parallel.py --coordinator 10.0.0.1:1234 --num-processes 2 --process-id 0

The mesh spans every device; ``fit`` splits each batch over it and XLA adds the gradient
all-reduce. Only the ``mesh=`` argument differs from single-device code. See docs/scaling.md.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import jaxbp

SIZES = (16, 128, 128, 1)
ACTIVATIONS = ("tanh", "tanh", "linear")
EXAMPLES = 8192  # the global data set; divides by 1, 2, 4, 8, ... devices
BATCH_SIZE = 1024  # global examples per step: each device gets BATCH_SIZE / devices
EPOCHS = 30
LEARNING_RATE = 0.05
SEED = 0


def make_data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A smooth regression target, ``y = sin(x @ v)``; the same in every process."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((EXAMPLES, SIZES[0])).astype(np.float32)
    v = rng.standard_normal((SIZES[0], 1)) / np.sqrt(SIZES[0])
    return x, np.sin(x @ v).astype(np.float32)


def main(epochs: int = EPOCHS, distributed: dict | None = None) -> None:
    if distributed is not None:  # before any other JAX call
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # for CPU hosts
        jax.distributed.initialize(**distributed)
    mesh = jax.make_mesh((jax.device_count(),), ("data",))
    x, y = make_data(SEED)
    # Each process feeds only its slice of the global batch (a real job would load only that).
    rows = EXAMPLES // jax.process_count()
    mine = slice(jax.process_index() * rows, (jax.process_index() + 1) * rows)

    spec = jaxbp.MLP(SIZES, ACTIVATIONS)
    params = spec.init(jax.random.key(SEED))  # the same key: the same params in every process
    start = time.perf_counter()
    params, history = jaxbp.fit(
        spec,
        "half_se",
        params,
        x[mine],
        y[mine],
        lr=LEARNING_RATE,
        epochs=epochs,
        batch_size=BATCH_SIZE,
        key=jax.random.key(SEED + 1),
        mesh=mesh,
    )
    losses = np.asarray(history["loss"])  # blocks until the run is done
    seconds = time.perf_counter() - start
    if jax.process_index() == 0:
        print(
            f"devices: {jax.device_count()} ({jax.default_backend()}), processes: "
            f"{jax.process_count()}, mesh: {dict(mesh.shape)}"
        )
        print(f"loss: {losses[0]:.4f} -> {losses[-1]:.4f} in {losses.size} steps")
        print(f"{EXAMPLES * epochs / seconds:,.0f} examples/s (compilation included)")


def _parse() -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--distributed", action="store_true", help="auto-detect the cluster")
    parser.add_argument("--coordinator", help="host:port of process 0")
    parser.add_argument("--num-processes", type=int)
    parser.add_argument("--process-id", type=int)
    args = parser.parse_args()
    if args.coordinator:
        return {
            "coordinator_address": args.coordinator,
            "num_processes": args.num_processes,
            "process_id": args.process_id,
        }
    return {} if args.distributed else None


if __name__ == "__main__":
    main(distributed=_parse())
