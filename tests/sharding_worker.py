"""Runs sharded training in a fresh process for tests/training/test_sharding.py and writes what it got.

JAX reads ``XLA_FLAGS`` (the simulated device count) and ``jax.distributed`` must start before
any computation, so these runs cannot happen inside the pytest process. Two modes:

    python tests/sharding_worker.py devices OUT.json
        (with XLA_FLAGS=--xla_force_host_platform_device_count=8): every case in CASES, sharded
        and on one device, plus the messages of the refused remainders.
    python tests/sharding_worker.py process PROCESS_ID NUM_PROCESSES PORT OUT.json
        one of several processes on 127.0.0.1, each feeding its slice of the global batch.

The problems (data, initial params) are built here from NumPy seeds, so the test process can
rebuild them for its oracle.
"""

from __future__ import annotations

import itertools
import json
import sys
from typing import Any

import numpy as np

CASES: dict[str, dict[str, Any]] = {
    # Full batch: one step per epoch, every example split over 8 devices.
    "full": {"mesh": ((8,), ("data",)), "sizes": (3, 16, 2), "batch_size": None, "epochs": 5},
    # Mini-batch in the data's order: 4 steps per epoch, each batch split over 8 devices.
    "mini": {"mesh": ((8,), ("data",)), "sizes": (3, 16, 2), "batch_size": 8, "epochs": 3},
    # Shuffled mini-batches with the remainder of n left out of every epoch (40 = 2 * 16 + 8).
    "shuffled": {
        "mesh": ((8,), ("data",)),
        "sizes": (3, 5, 4, 2),
        "n": 40,
        "batch_size": 16,
        "epochs": 3,
        "key": 7,
    },
    # An optax optimizer: its state replicated next to the params.
    "adam": {
        "mesh": ((8,), ("data",)),
        "sizes": (3, 16, 2),
        "batch_size": 8,
        "epochs": 2,
        "adam": 0.01,
    },
    # Wide layers split by columns over "model", the batch over "data"; adam's state follows.
    "wide": {
        "mesh": ((4, 2), ("data", "model")),
        "sizes": (3, 16, 8, 3),
        "batch_size": 8,
        "epochs": 2,
        "adam": 0.01,
    },
    # Ensembles: 8 models split over 8 devices (the batch replicated), then over a 2 x 4 mesh.
    "ensemble": {
        "mesh": ((8,), ("model",)),
        "sizes": (3, 6, 2),
        "batch_size": 8,
        "epochs": 2,
        "models": 8,
    },
    "ensemble_2d": {
        "mesh": ((2, 4), ("data", "model")),
        "sizes": (3, 6, 2),
        "batch_size": 8,
        "epochs": 2,
        "models": 8,
    },
}
ACTIVATIONS = {2: ("tanh", "linear"), 3: ("relu", "tanh", "linear")}
LOSS = "half_se"
LEARNING_RATE = 0.1


def problem(case: dict[str, Any], seed: int = 0) -> tuple[list, np.ndarray, np.ndarray]:
    """(initial params as NumPy float64, x, y); a stacked ensemble when the case has models."""
    rng = np.random.default_rng(seed)
    sizes, n = case["sizes"], case.get("n", 32)
    x = rng.standard_normal((n, sizes[0]))
    y = rng.standard_normal((n, sizes[-1]))

    def one() -> list:
        return [
            {
                "w": rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in),
                "b": 0.3 * rng.standard_normal(fan_out),  # non-zero: relu inputs of both signs
            }
            for fan_in, fan_out in itertools.pairwise(sizes)
        ]

    if "models" not in case:
        return one(), x, y
    models = [one() for _ in range(case["models"])]
    stacked = [
        {k: np.stack([m[i][k] for m in models]) for k in models[0][i]}
        for i in range(len(sizes) - 1)
    ]
    return stacked, x, y


def learning_rates(case: dict[str, Any]) -> np.ndarray:
    """One learning rate per model, all different, so a model swap would show."""
    return LEARNING_RATE * (1.0 + 0.1 * np.arange(case["models"]))


def _train(case: dict[str, Any], mesh: Any, params: list, x: Any, y: Any) -> tuple[Any, Any]:
    import jax
    import optax

    import jaxbp

    spec = jaxbp.MLP(case["sizes"], ACTIVATIONS[len(case["sizes"]) - 1])
    key = jax.random.key(case["key"]) if "key" in case else None
    common = {"epochs": case["epochs"], "batch_size": case["batch_size"], "key": key, "mesh": mesh}
    if "models" in case:
        return jaxbp.fit_ensemble(spec, LOSS, params, x, y, lr=learning_rates(case), **common)
    if "adam" in case:
        return jaxbp.fit(spec, LOSS, params, x, y, optimizer=optax.adam(case["adam"]), **common)
    return jaxbp.fit(spec, LOSS, params, x, y, lr=LEARNING_RATE, **common)


def _tree(tree: Any) -> Any:
    import jax

    return jax.tree.map(lambda leaf: np.asarray(leaf, np.float64).tolist(), tree)


def run_devices() -> dict[str, Any]:
    import jax
    import jax.numpy as jnp

    out: dict[str, Any] = {"device_count": jax.device_count(), "cases": {}, "errors": {}}
    for name, case in CASES.items():
        params, x, y = problem(case)
        params = jax.tree.map(jnp.asarray, params)
        mesh = jax.make_mesh(*case["mesh"])  # Explicit axes by default; fit accepts them
        sharded, history = _train(case, mesh, params, x, y)
        single, single_history = _train(case, None, params, x, y)
        out["cases"][name] = {
            "sharded": _tree(sharded),
            "single": _tree(single),
            "loss": _tree(history["loss"]),
            "single_loss": _tree(single_history["loss"]),
            "input_specs": [str(leaf.sharding.spec) for leaf in jax.tree.leaves(sharded)],
        }
    out["errors"] = _refusals()
    out["own_model"] = run_own_model()
    return out


def own_model(params: dict, x: Any) -> Any:
    """A user's model over a dict of params, with a scalar leaf; x of rank 3 ``(n, 4, 2)``."""
    import jax.numpy as jnp

    hidden = jnp.tanh(jnp.einsum("nlc,lch->nh", x, params["conv"]) + params["bias"])
    return hidden @ params["out"] * params["scale"]


def own_problem() -> tuple[dict, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    params = {
        "conv": 0.5 * rng.standard_normal((4, 2, 8)),
        "bias": 0.3 * rng.standard_normal(8),
        "out": 0.5 * rng.standard_normal((8, 3)),
        "scale": np.float64(1.5),
    }
    x = rng.standard_normal((32, 4, 2))
    labels = rng.integers(0, 3, 32)
    return params, x, labels


def run_own_model() -> dict[str, Any]:
    """``own_model`` with integer labels, mini-batches shuffled, on the 8-device mesh and on one."""
    import jax
    import optax

    import jaxbp

    params, x, labels = own_problem()
    loss = optax.softmax_cross_entropy_with_integer_labels
    mesh = jax.make_mesh((8,), ("data",))
    runs = {}
    for name, run_mesh in (("sharded", mesh), ("single", None)):
        trained, history = jaxbp.fit(
            own_model, loss, jax.tree.map(jax.numpy.asarray, params), x, labels, lr=0.2,
            epochs=3, batch_size=8, key=jax.random.key(4), mesh=run_mesh,
        )  # fmt: skip
        runs[name] = {"params": _tree(trained), "loss": _tree(history["loss"])}
    return runs


def _refusals() -> dict[str, str]:
    """The messages for batches and ensembles that do not divide by the device count."""
    import jax

    import jaxbp

    spec = jaxbp.MLP((3, 4, 2), ("tanh", "linear"))
    params, x, y = problem({"sizes": (3, 4, 2), "n": 36})
    mesh = jax.make_mesh((8,), ("data",))
    attempts = {
        "rows": lambda: jaxbp.fit(spec, LOSS, params, x, y, lr=0.1, epochs=1, mesh=mesh),
        "batch_size": lambda: jaxbp.fit(
            spec, LOSS, params, x[:32], y[:32], lr=0.1, epochs=1, batch_size=12, mesh=mesh
        ),
        "models": lambda: jaxbp.fit_ensemble(
            spec,
            LOSS,
            problem({"sizes": (3, 4, 2), "models": 6})[0],
            x[:32],
            y[:32],
            lr=0.1,
            epochs=1,
            mesh=jax.make_mesh((8,), ("model",)),
        ),
    }
    messages = {}
    for name, attempt in attempts.items():
        try:
            attempt()
            messages[name] = "no error"
        except (ValueError, TypeError) as error:
            messages[name] = f"{type(error).__name__}: {error}"
    return messages


def initialize(process_id: int, num_processes: int, port: int) -> None:
    """Join the local ``jax.distributed`` run of ``num_processes`` (coordinator on ``port``)."""
    import jax

    # Gloo CPU collectives: the default in JAX 0.10, to be asked for in older versions.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}",
        coordinator_bind_address=f"127.0.0.1:{port}",
        num_processes=num_processes,
        process_id=process_id,
        initialization_timeout=60,
    )


def run_process(process_id: int, num_processes: int, port: int) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp

    import jaxbp

    initialize(process_id, num_processes, port)
    out: dict[str, Any] = {
        "process_index": jax.process_index(),
        "device_count": jax.device_count(),
        "local_device_count": jax.local_device_count(),
        "cases": {},
    }
    mesh = jax.make_mesh((jax.device_count(),), ("data",))
    for name in PROCESS_CASES:
        case = CASES[name]
        params, x, y = problem(case)
        rows = x.shape[0] // num_processes
        mine = slice(process_id * rows, (process_id + 1) * rows)  # this process's slice only
        x_in, y_in = x[mine], y[mine]
        if name == "full":  # placed beforehand: fit gets global arrays that span the processes
            x_in, y_in = jaxbp.shard_batch(mesh, x_in, y_in)
            assert not x_in.is_fully_addressable and x_in.shape == x.shape
        trained, history = _train(case, mesh, jax.tree.map(jnp.asarray, params), x_in, y_in)
        out["cases"][name] = {"sharded": _tree(trained), "loss": _tree(history["loss"])}
    jax.distributed.shutdown()
    return out


#: The cases the multi-process test runs (their batches divide by 2 processes x 2 devices).
PROCESS_CASES = ("full", "shuffled")


def main(argv: list[str]) -> None:
    import jax

    jax.config.update("jax_enable_x64", True)
    if argv[0] == "devices":
        result, path = run_devices(), argv[1]
    elif argv[0] == "process":
        result = run_process(int(argv[1]), int(argv[2]), int(argv[3]))
        path = argv[4]
    else:
        raise SystemExit(f"unknown mode {argv[0]!r}; use 'devices' or 'process'")
    with open(path, "w") as file:
        json.dump(result, file)


if __name__ == "__main__":
    main(sys.argv[1:])
