"""Examples per second of data-parallel ``jaxbp.fit`` on 1, 2, 4, 8, ... devices.

    python benchmarks/scaling.py                      # CPU: 1, 2, 4, 8 simulated devices
    python benchmarks/scaling.py --platform gpu       # GPU: 1, 2, 4, ... of the visible GPUs
    python benchmarks/scaling.py --platform gpu --preset large --devices 1 2 4 8
    python benchmarks/scaling.py --platform tpu --preset large --devices 1 2 4 8

Every device count runs in its own process: the simulated CPU device count
(``XLA_FLAGS=--xla_force_host_platform_device_count=D``) must be set before JAX starts. The
processes run in rounds, one per device count per round, the order rotating every round, so a
busy spell on a shared machine does not land on one device count only. In each process:
a correctness check first (the parameters after one epoch on D devices against one device, to
float32 tolerance), then one call that compiles (timed apart), then ``--repeats`` timed calls
on data already placed with ``jaxbp.shard_batch``, each ending in ``block_until_ready``.

On the CPU the simulated devices share the machine's cores, so more devices cannot be faster:
the numbers show the cost of the sharded program (partitioning, the gradient all-reduce), not a
speed-up. On GPUs each device is real hardware.

With ``--out benchmarks/RESULTS_scaling.md`` the table replaces the generated section
``scaling-<platform>`` of that file; on a busy machine (1-minute load above half the cores) the
run refuses to start unless ``--force``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere in the repo

from benchmarks._harness import LoadWatch, add_output_arguments, publish, rotation

PRESETS = {  # global examples, global batch per step, layer sizes, epochs per timed call
    "small": {"examples": 16384, "batch": 2048, "sizes": (32, 256, 256, 10), "epochs": 2},
    "large": {"examples": 262144, "batch": 16384, "sizes": (256, 2048, 2048, 10), "epochs": 4},
}
SEED = 0


def child(devices: int, preset: str, repeats: int, platform_name: str) -> dict[str, Any]:
    """Time ``fit`` on the first ``devices`` devices of this process; return the measurements."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import jaxbp

    if jax.default_backend() != platform_name or jax.device_count() < devices:
        raise SystemExit(
            f"asked for {devices} {platform_name} devices, JAX sees {jax.device_count()} "
            f"{jax.default_backend()} devices; install the matching jax build (docs/scaling.md)."
        )

    setup = PRESETS[preset]
    sizes = setup["sizes"]
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((setup["examples"], sizes[0])).astype(np.float32)
    y = rng.standard_normal((setup["examples"], sizes[-1])).astype(np.float32)
    spec = jaxbp.MLP(sizes, ("relu",) * (len(sizes) - 2) + ("linear",))
    params = spec.init(jax.random.key(SEED), jnp.float32)
    mesh = jax.make_mesh((devices,), ("data",), devices=jax.devices()[:devices])
    common = {"lr": 0.01, "batch_size": setup["batch"], "key": jax.random.key(SEED + 1)}

    sharded, _ = jaxbp.fit(spec, "half_se", params, x, y, epochs=1, mesh=mesh, **common)
    single, _ = jaxbp.fit(spec, "half_se", params, x, y, epochs=1, **common)
    worst = max(
        float(jnp.max(jnp.abs(a - b) / (1e-5 + 1e-3 * jnp.abs(b))))
        for a, b in zip(jax.tree.leaves(sharded), jax.tree.leaves(single), strict=True)
    )
    if worst > 1.0:
        raise SystemExit(
            f"{devices} devices: params differ from one device beyond float32 tolerance"
        )

    xs, ys = jaxbp.shard_batch(mesh, x, y)
    epochs = setup["epochs"]

    def run() -> None:
        out, history = jaxbp.fit(
            spec, "half_se", params, xs, ys, epochs=epochs, mesh=mesh, **common
        )
        jax.block_until_ready((out, history))

    start = time.perf_counter()
    run()
    first = time.perf_counter() - start
    walls, cores = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - wall)
        cores.append((time.process_time() - cpu) / walls[-1])
    seconds = statistics.median(walls)
    return {
        "devices": devices,
        "seconds": seconds,
        "examples_per_s": setup["examples"] * epochs / seconds,
        "compile_and_first_s": first,
        "cores": statistics.median(cores),
        "backend": jax.default_backend(),
        "device_kind": jax.devices()[0].device_kind,
        "jax": jax.__version__,
    }


def _run_child(devices: int, args: argparse.Namespace) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")]
    )
    if args.platform == "cpu":
        env["JAX_PLATFORMS"] = "cpu"
        env["XLA_FLAGS"] = (
            f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}"
        )
    command = [sys.executable, __file__, "--child", str(devices), "--preset", args.preset]
    command += ["--repeats", str(args.repeats), "--platform", args.platform]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{devices} devices failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", choices=("cpu", "gpu", "tpu"), default="cpu")
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    add_output_arguments(parser, "none: print only")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.preset, args.repeats, args.platform)))
        return

    watch = LoadWatch.start(args.out, args.force)
    results: dict[int, list[dict[str, Any]]] = {d: [] for d in args.devices}
    for round_index in range(args.rounds):
        for devices in rotation(args.devices, round_index):
            results[devices].append(_run_child(devices, args))
    record = watch.stop()

    info = results[args.devices[0]][0]
    lines = [
        f"`python benchmarks/scaling.py {' '.join(sys.argv[1:])}`: jax {info['jax']}, backend "
        f"{info['backend']} ({info['device_kind']}), python {platform.python_version()}, "
        f"{os.cpu_count()} CPU cores, preset {args.preset} {PRESETS[args.preset]}, seed {SEED}; "
        f"{args.rounds} rounds x {args.repeats} timed calls per device count.",
        "",
        *[f"- {key}: {value}" for key, value in record.lines().items()],
        "",
        "| devices | examples/s (median of rounds) | slowest-fastest round | vs first | "
        "compile + first call s | CPU cores busy |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    base = statistics.median(r["examples_per_s"] for r in results[args.devices[0]])
    for devices in args.devices:
        rows = results[devices]
        rates = [r["examples_per_s"] for r in rows]
        rate = statistics.median(rates)
        first = statistics.median(r["compile_and_first_s"] for r in rows)
        cores = statistics.median(r["cores"] for r in rows)
        lines.append(
            f"| {devices} | {rate:,.0f} | {min(rates):,.0f}-{max(rates):,.0f} | "
            f"{rate / base:.2f} | {first:.2f} | {cores:.2f} |"
        )
    publish("\n".join(lines) + "\n", args.out, record, f"scaling-{args.platform}")


if __name__ == "__main__":
    main()
