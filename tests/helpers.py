"""Shared test helpers: one tolerance per dtype, never tuned per test; the train command in-process."""

from __future__ import annotations

from typing import Any

import chex
import jax.numpy as jnp
import numpy as np

TOLERANCES = {
    jnp.dtype("float64"): {"rtol": 1e-10, "atol": 1e-12},
    jnp.dtype("float32"): {"rtol": 1e-5, "atol": 1e-6},
}


def assert_close(actual: Any, expected: Any, dtype: Any = jnp.float64) -> None:
    """Trees equal in structure, every leaf within the tolerance of ``dtype``."""
    actual = jax_to_numpy(actual)
    expected = jax_to_numpy(expected)
    chex.assert_trees_all_close(actual, expected, **TOLERANCES[jnp.dtype(dtype)])


def jax_to_numpy(tree: Any) -> Any:
    import jax

    return jax.tree.map(lambda leaf: np.asarray(leaf, np.float64), tree)


#: The smallest ``jaxbp train`` run the command-line tests use.
TINY = ["--hidden", "8", "--batch-size", "64", "--quiet"]


def train(capsys: Any, *args: Any) -> tuple[int, str, str]:
    """Run ``jaxbp train ARGS`` in this process: ``(exit code, stdout, stderr)``."""
    from jaxbp import cli

    code = cli.main(["train", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read_metrics(directory: Any) -> dict[str, Any]:
    """A run folder's ``metrics.json``."""
    import json
    from pathlib import Path

    return json.loads((Path(directory) / "metrics.json").read_text())


def bitwise_equal(a: Any, b: Any) -> bool:
    """Two pytrees with the same leaves, bit for bit."""
    import jax

    leaves = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return all(np.array_equal(x, y) for x, y in leaves)


def device_env(devices: int, **extra: str) -> dict[str, str]:
    """The environment of a worker process with ``devices`` simulated CPU devices."""
    import os
    from pathlib import Path

    flags = f"--xla_force_host_platform_device_count={devices}"
    if "XLA_FLAGS" in extra:
        flags = f"{flags} {extra.pop('XLA_FLAGS')}"
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": flags}
    return {**env, **extra}


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_processes(
    commands: list[list[str]], env: dict[str, str], logs: Any, timeout: float
) -> list[str]:
    """Start one process per command (output to ``logs / process<i>.log``) and wait for all,
    stopping at ``timeout`` s or at the first failure; never leaves one running. Asserts that
    every process exited with 0 and returns the tail of each log."""
    import subprocess
    import time

    files = [(logs / f"process{i}.log").open("w") for i in range(len(commands))]
    processes = [
        subprocess.Popen(command, env=env, stdout=file, stderr=subprocess.STDOUT)
        for command, file in zip(commands, files, strict=True)
    ]
    deadline = time.monotonic() + timeout
    codes: list[int | None] = []
    try:  # stop waiting at the deadline, or as soon as one process fails
        while time.monotonic() < deadline:
            codes = [process.poll() for process in processes]
            if None not in codes or any(code not in (None, 0) for code in codes):
                break
            time.sleep(0.1)
    finally:
        for process in processes:  # on a timeout or any failure, never leave one running
            if process.poll() is None:
                process.kill()
                process.wait()
        for file in files:
            file.close()
    texts = [(logs / f"process{i}.log").read_text()[-2000:] for i in range(len(commands))]
    assert codes == [0] * len(commands), texts
    return texts
