"""``fit`` on device arrays with a callback (chunks that gather their batches on the device)
against the whole-run program and against the same data as NumPy arrays (read on the host).

All three in one process, interleaved round by round (the order rotated each round and reversed
every other), one epoch each after a compiling epoch, shuffled by the same key; the final
parameters must be equal bit for bit. With ``--out benchmarks/RESULTS_streaming.md`` the table
replaces that file's generated section ``device-chunks``; on a busy machine (1-minute load above
half the cores) the run refuses to start unless ``--force``.

    python benchmarks/make_synthetic.py --out /tmp/jaxbp-stream --gib 2 --features 256
    python benchmarks/device_chunks.py --data /tmp/jaxbp-stream --rows 262144 --rounds 5
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere in the repo

import jax
import jax.numpy as jnp
import numpy as np

import jaxbp
from benchmarks._harness import LoadWatch, add_output_arguments, publish, rotation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of x.npy and y.npy")
    parser.add_argument("--rows", type=int, default=262144)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    add_output_arguments(parser, "none: print only")
    args = parser.parse_args()
    watch = LoadWatch.start(args.out, args.force)
    x = np.array(np.load(args.data / "x.npy", mmap_mode="r")[: args.rows])
    y = np.array(np.load(args.data / "y.npy", mmap_mode="r")[: args.rows])
    spec = jaxbp.MLP(sizes=(x.shape[1], 256, y.shape[1]), activations=("tanh", "linear"))
    params = jax.tree.map(lambda a: a.astype(np.float32), spec.init(jax.random.key(0)))
    options = {"lr": 0.01, "epochs": 1, "batch_size": args.batch_size, "key": jax.random.key(1)}
    xd, yd = jnp.asarray(x), jnp.asarray(y)
    contenders = {
        "whole-run program (device arrays)": ((xd, yd), {}),
        "device arrays + a callback (chunks)": ((xd, yd), {"callbacks": [lambda s, p, m: None]}),
        "NumPy arrays (read on the host)": ((x, y), {}),
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    final = {}
    for data, extra in contenders.values():  # compile: epoch 0
        jax.block_until_ready(jaxbp.fit(spec, "mse", params, *data, **options, **extra)[0])
    for round_index in range(args.rounds):
        for name in rotation(list(contenders), round_index):
            data, extra = contenders[name]
            start = time.perf_counter()
            trained, _ = jaxbp.fit(spec, "mse", params, *data, start_epoch=1, **options, **extra)
            jax.block_until_ready(trained)
            times[name].append(time.perf_counter() - start)
            final[name] = trained
    record = watch.stop()
    reference = next(iter(contenders))
    speeds = {name: args.rows / statistics.median(t) for name, t in times.items()}
    lines = [
        f"`python benchmarks/device_chunks.py {' '.join(sys.argv[1:])}`: {args.rows:,} x "
        f"{x.shape[1]} float32, batch {args.batch_size}, {args.rounds} rounds; jax "
        f"{jax.__version__} ({jax.default_backend()}), python {platform.python_version()}.",
        "",
        *[f"- {key}: {value}" for key, value in record.lines().items()],
        "",
        "| contender | examples/s (median) | slowest-fastest round | / whole-run | "
        "params = whole-run's, bit for bit |",
        "|---|---:|---:|---:|:-:|",
    ]
    for name in contenders:
        same = all(
            np.array_equal(a, b)
            for a, b in zip(jax.tree.leaves(final[name]), jax.tree.leaves(final[reference]), strict=True)
        )  # fmt: skip
        slowest, fastest = args.rows / max(times[name]), args.rows / min(times[name])
        lines.append(
            f"| {name} | {speeds[name]:.0f} | {slowest:.0f}-{fastest:.0f} | "
            f"{speeds[name] / speeds[reference]:.3f} | {'yes' if same else '**no**'} |"
        )
    publish("\n".join(lines) + "\n", args.out, record, "device-chunks")


if __name__ == "__main__":
    main()
