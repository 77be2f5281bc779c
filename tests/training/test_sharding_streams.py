"""Data-parallel streaming: memmaps and .npy paths over 8 simulated devices and over 2 processes.

The sharded runs happen in fresh processes (tests/sharding_stream_worker.py; see
tests/training/test_sharding.py for why). The oracle is a plain single-device SGD loop written here with
``jax.value_and_grad`` over the batches ``fit`` documents (rows in order, or a
``fold_in(key, epoch)`` permutation; the last ``n % batch_size`` rows of every epoch left out).
Everything runs in float64. The streamed and whole-run sharded programs run the same step on the
same batches, so their parameters must be equal bit for bit; against the oracle the gradient is
summed over the devices in another order, so they agree within float64 round-off (the shared
tolerance of tests/helpers.py: rtol 1e-10, atol 1e-12), not bitwise.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests import sharding_stream_worker as worker
from tests.helpers import assert_close, device_env, free_port, run_processes
from tests.sharding_worker import LEARNING_RATE, problem

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "tests" / "sharding_stream_worker.py"
TIMEOUT_S = 120


@pytest.fixture(scope="module")
def eight_devices(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("sharded_streams")
    run = subprocess.run(
        [sys.executable, str(WORKER), "devices", str(directory)],
        env=device_env(8),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads((directory / "devices.json").read_text())


def _plain_sgd(seed: int | None) -> tuple[list, np.ndarray, np.ndarray]:
    """(params, per-step losses, the rows of every step ``(steps, batch)``): one device, jax.grad."""

    def loss(params: list, x: jax.Array, y: jax.Array) -> jax.Array:
        hidden = jnp.tanh(x @ params[0]["w"] + params[0]["b"])
        prediction = hidden @ params[1]["w"] + params[1]["b"]
        return jnp.mean(0.5 * jnp.sum((prediction - y) ** 2, axis=-1))

    value_and_grad = jax.jit(jax.value_and_grad(loss))
    params, x, y = problem(worker.PROBLEM)
    params = jax.tree.map(jnp.asarray, params)
    n, batch = x.shape[0], worker.BATCH
    losses, rows = [], []
    for epoch in range(worker.EPOCHS):
        order = np.arange(n)
        if seed is not None:
            order = np.asarray(jax.random.permutation(jax.random.fold_in(jax.random.key(seed), epoch), n))  # fmt: skip
        for step in range(n // batch):
            batch_rows = order[step * batch : (step + 1) * batch]
            value, grads = value_and_grad(params, x[batch_rows], y[batch_rows])
            params = jax.tree.map(lambda p, g: p - LEARNING_RATE * g, params, grads)
            losses.append(value)
            rows.append(batch_rows)
    return params, np.asarray(losses), np.stack(rows)


def _arrays(tree: Any) -> list:
    return [{k: np.asarray(v, np.float64) for k, v in layer.items()} for layer in tree]


@pytest.mark.parametrize("order", list(worker.KEYS))
def test_a_memmap_and_a_path_on_eight_devices_train_like_device_arrays_and_plain_sgd(
    eight_devices: dict[str, Any], order: str
) -> None:
    assert eight_devices["device_count"] == 8
    runs = {name: eight_devices["runs"][f"{name}_{order}"] for name in ("memmap", "path", "device")}
    expected, losses, _ = _plain_sgd(worker.KEYS[order])
    steps = worker.EPOCHS * (worker.PROBLEM["n"] // worker.BATCH)
    for name, run in runs.items():
        assert_close(_arrays(run["params"]), expected)
        assert_close(np.array(run["loss"]), losses)
        assert len(run["loss"]) == steps, name
    for name in ("memmap", "path"):  # the same step on the same batches: bit for bit
        assert runs[name]["params"] == runs["device"]["params"], name
        assert runs[name]["loss"] == runs["device"]["loss"], name
        # every example of every step read once, and nothing else (the 8 left-over rows per epoch)
        # but the value check's first 3 rows (each example's loss its own), read before the run
        assert runs[name]["first_read"] == [0, 1, 2], name
        assert runs[name]["rows_read"] == steps * worker.BATCH + 3, name
    memmap = runs["memmap"]  # chunks of 4, 1, 4, 1, 2 steps: cut at validation, cross epochs
    assert memmap["chunks"] == 5
    assert memmap["val_step"] == [5, 10, 12]
    assert memmap["calls"] == [[4, 8], [5, 8], [9, 8], [10, 8], [12, 8]]  # params on 8 devices
    assert runs["device"]["chunks"] is None  # the whole-run program, the independent sharded path


@pytest.mark.parametrize("name", ["memmap", "path"])
def test_a_batch_that_does_not_divide_over_the_devices_is_refused_before_anything_runs(
    eight_devices: dict[str, Any], name: str
) -> None:
    error = eight_devices["errors"][name]
    assert re.search(
        rf"^ValueError: fit: every step's batch \(batch_size {worker.BAD_BATCH}\) has "
        rf"{worker.BAD_BATCH} examples; it must divide by the 8 devices of mesh axis 'data'.*"
        r"use 8 or 16 instead",
        error["message"],
    ), error["message"]
    assert error["calls"] == [] and error["reads"] == 0  # no callback ran, no batch was read


def test_two_processes_read_only_their_rows_of_the_file_and_train_like_plain_sgd(
    tmp_path: Path,
) -> None:
    num_processes, port = 2, free_port()
    command = [sys.executable, str(WORKER), "process"]
    commands = [
        [*command, str(i), str(num_processes), str(port), str(tmp_path)]
        for i in range(num_processes)
    ]
    # 2 devices per process: 4 in all, collectives within and across
    run_processes(commands, device_env(2), tmp_path, TIMEOUT_S)
    results = [json.loads((tmp_path / f"process{i}.json").read_text()) for i in range(2)]
    assert [r["process_index"] for r in results] == [0, 1]
    assert all(r["device_count"] == 4 for r in results)
    expected, losses, rows = _plain_sgd(worker.KEYS["shuffled"])
    for result in results:
        assert result["params"] == results[0]["params"]
        assert_close(_arrays(result["params"]), expected)
        assert_close(np.array(result["loss"]), losses)
        assert [c[0] for c in result["calls"]] == [4, 8, 12]
    # Each read is a chunk's (steps, batch / 2) rows; side by side, in process order, the
    # processes' reads are every step's global batch, and each process read only its half.
    half = worker.BATCH // num_processes
    local = [np.concatenate([np.reshape(r, (-1, half)) for r in p["reads"]]) for p in results]
    np.testing.assert_array_equal(np.concatenate(local, axis=1), rows)
    assert all(part.size == rows.size // num_processes for part in local)
