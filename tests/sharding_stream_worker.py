"""Sharded streaming in fresh processes, for tests/training/test_sharding_streams.py: memmaps and .npy paths.

As in tests/sharding_worker.py, the simulated device count and ``jax.distributed`` must be set
before JAX starts, so these runs happen here. Two modes:

    python tests/sharding_stream_worker.py devices DIR
        (with XLA_FLAGS=--xla_force_host_platform_device_count=8): ``fit`` on a memmap (with a
        callback and validation), on the .npy paths and on device arrays, over an 8-device mesh,
        ordered and shuffled; then the refused batch sizes. Writes DIR/devices.json.
    python tests/sharding_stream_worker.py process PROCESS_ID NUM_PROCESSES PORT DIR
        one of several processes on 127.0.0.1, each reading its rows of the same .npy files.
        Writes DIR/process{PROCESS_ID}.json.

Every row the reader of ``x`` is asked for is recorded (``jaxbp.data.sources.row_reader`` wrapped;
this process is the worker's own), so the test sees which rows each process read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from tests.sharding_worker import LEARNING_RATE, LOSS, _tree, initialize, problem

#: x rows of 32 float64 (256 bytes: read with os.preadv), y rows of 2 (16 bytes: np.take), so
#: both readers of jaxbp.data._rows run. 72 rows divide by 8 devices (the device-array run needs it);
#: batches of 16 leave 8 rows out of every epoch.
PROBLEM: dict[str, Any] = {"sizes": (32, 8, 2), "n": 72}
BATCH, EPOCHS = 16, 3
#: Validation every 5 steps and chunks of at most 4: chunks of 4, 1, 4, 1, 2 steps, some
#: crossing an epoch boundary (4 steps per epoch).
VALIDATE_EVERY, CHUNK_STEPS = 5, 4
KEYS: dict[str, int | None] = {"ordered": None, "shuffled": 7}
#: A batch size that does not divide by 8 devices.
BAD_BATCH = 12


def save(directory: Path) -> tuple[Path, Path]:
    """The problem's ``x`` and ``y`` as ``.npy`` files in ``directory``."""
    _, x, y = problem(PROBLEM)
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / "x.npy", x)
    np.save(directory / "y.npy", y)
    return directory / "x.npy", directory / "y.npy"


def _record_reads() -> list[list[int]]:
    """Wrap ``jaxbp.data.sources.row_reader``: each read of ``x`` (32 columns) appends its rows."""
    from jaxbp.data import sources

    reads: list[list[int]] = []
    original = sources.row_reader

    def recording(array: np.ndarray) -> Any:
        read = original(array)
        if array.shape[1:] != (PROBLEM["sizes"][0],):
            return read

        def read_and_record(rows: np.ndarray) -> np.ndarray:
            reads.append(np.asarray(rows).tolist())
            return read(rows)

        return read_and_record

    sources.row_reader = recording
    return reads


def _fit(mesh: Any, x: Any, y: Any, key: Any, **options: Any) -> tuple[Any, Any]:
    import jax

    import jaxbp

    params, _, _ = problem(PROBLEM)
    spec = jaxbp.MLP(PROBLEM["sizes"], ("tanh", "linear"))
    return jaxbp.fit(
        spec, LOSS, jax.tree.map(jax.numpy.asarray, params), x, y, lr=LEARNING_RATE,
        epochs=EPOCHS, batch_size=options.pop("batch_size", BATCH), key=key, mesh=mesh, **options,
    )  # fmt: skip


def _recorder(calls: list[list[int]]) -> Any:
    """A callback that records the step and how many devices hold the params it is given."""

    def record(step: int, params: Any, metrics: dict[str, Any]) -> None:
        calls.append([step, len(params[0]["w"].sharding.device_set)])

    return record


def run_devices(directory: Path) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp

    reads = _record_reads()
    x_path, y_path = save(directory)
    _, x, y = problem(PROBLEM)
    mesh = jax.make_mesh((8,), ("data",))
    out: dict[str, Any] = {"device_count": jax.device_count(), "runs": {}, "errors": {}}
    for order, seed in KEYS.items():
        key = None if seed is None else jax.random.key(seed)
        calls: list[list[int]] = []
        streamed = {
            "callbacks": [_recorder(calls)],
            "validation": (x[:8], y[:8]),
            "validate_every": VALIDATE_EVERY,
            "chunk_steps": CHUNK_STEPS,
        }
        inputs = {
            "memmap": (np.load(x_path, mmap_mode="r"), np.load(y_path, mmap_mode="r"), streamed),
            "path": (str(x_path), str(y_path), {}),
            "device": (jnp.asarray(x), jnp.asarray(y), {}),
        }
        for name, (x_in, y_in, options) in inputs.items():
            del reads[:]
            params, history = _fit(mesh, x_in, y_in, key, **options)
            out["runs"][f"{name}_{order}"] = {
                "params": _tree(params),
                "loss": _tree(history["loss"]),
                "chunks": history.get("chunks"),
                "val_step": np.asarray(history.get("val_step", [])).tolist(),
                "calls": list(calls) if options else [],
                "rows_read": sum(len(rows) for rows in reads),
                "first_read": reads[0] if reads else [],
            }
    for name, make in (
        ("memmap", lambda: (np.load(x_path, mmap_mode="r"), np.load(y_path, mmap_mode="r"))),
        ("path", lambda: (str(x_path), str(y_path))),
    ):
        calls, x_in, y_in = [], *make()
        del reads[:]
        try:
            _fit(mesh, x_in, y_in, None, batch_size=BAD_BATCH, callbacks=[_recorder(calls)])
            message = "no error"
        except (ValueError, TypeError) as error:
            message = f"{type(error).__name__}: {error}"
        out["errors"][name] = {"message": message, "calls": calls, "reads": len(reads)}
    return out


def run_process(process_id: int, num_processes: int, port: int, directory: Path) -> dict[str, Any]:
    import jax

    initialize(process_id, num_processes, port)
    reads = _record_reads()
    x_path, y_path = save(directory / f"data{process_id}")  # the same bytes in every process
    mesh = jax.make_mesh((jax.device_count(),), ("data",))
    calls: list[list[int]] = []
    params, history = _fit(
        mesh, str(x_path), str(y_path), jax.random.key(KEYS["shuffled"]),
        callbacks=[_recorder(calls)], chunk_steps=CHUNK_STEPS,
    )  # fmt: skip
    out = {
        "process_index": jax.process_index(),
        "device_count": jax.device_count(),
        "params": _tree(params),
        "loss": _tree(history["loss"]),
        "calls": calls,
        "reads": reads,
    }
    jax.distributed.shutdown()
    return out


def main(argv: list[str]) -> None:
    import jax

    jax.config.update("jax_enable_x64", True)
    if argv[0] == "devices":
        directory = Path(argv[1])
        result, path = run_devices(directory), directory / "devices.json"
    elif argv[0] == "process":
        directory = Path(argv[4])
        result = run_process(int(argv[1]), int(argv[2]), int(argv[3]), directory)
        path = directory / f"process{argv[1]}.json"
    else:
        raise SystemExit(f"unknown mode {argv[0]!r}; use 'devices' or 'process'")
    path.write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
