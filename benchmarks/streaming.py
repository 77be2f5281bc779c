"""Streamed training from a memmap against the same fit on in-memory device arrays.

Every contender runs in a fresh subprocess (so its peak resident memory, ``VmHWM`` from
``/proc/self/status``, is its own), one after the other, the order rotated every round:

- ``memory``: ``np.load`` the whole data set, ``jax.device_put`` it, ``jaxbp.fit`` on device arrays
  (one program per call, the shuffled batches gathered inside it).
- ``stream``: ``np.load(..., mmap_mode="r")`` and ``jaxbp.fit`` on the memmaps (chunks of K steps,
  read and transferred in a background thread).
- ``stream, no prefetch``: the same, reading each chunk in the main thread (``prefetch=0``).
- ``stream, K=...``: the same with a fixed number of steps per chunk.

Each worker trains epoch 0 (which includes compilation) and then times epoch 1 (``start_epoch=1``),
both shuffled by the same key; the examples/s of epoch 1 are reported, with the peak RSS growth
over the whole worker (from just before the data is opened). The final parameters of every
contender are compared, bit for bit, with ``memory``'s. A last run trains one epoch on a data set
several times larger than a stated memory budget and reports its examples/s and peak RSS.

    python benchmarks/make_synthetic.py --out /tmp/jaxbp-stream --gib 2 --features 256
    python benchmarks/streaming.py --data /tmp/jaxbp-stream --rounds 3

With ``--out benchmarks/RESULTS_streaming.md`` the tables replace the generated sections
``streaming`` (the main table), ``streaming-k`` (the K sweep) and ``streaming-big`` (the big data
set) of that file; on a
busy machine (1-minute load above half the cores) the run refuses to start unless ``--force``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere in the repo

from benchmarks._harness import LoadWatch, add_output_arguments, publish, rotation

ROOT = Path(__file__).resolve().parent.parent


def status_kib(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``, ``RssFile``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def worker(config: dict[str, Any]) -> dict[str, Any]:
    """One contender in this (fresh) process; returns its measurements."""
    import jax

    import jaxbp

    x_path, y_path = Path(config["data"]) / "x.npy", Path(config["data"]) / "y.npy"
    rows = config.get("rows")
    features = int(np.load(x_path, mmap_mode="r").shape[1])
    spec = jaxbp.MLP(sizes=(features, config["hidden"], 1), activations=("tanh", "linear"))
    params = jax.tree.map(lambda a: a.astype(np.float32), spec.init(jax.random.key(0)))
    key = jax.random.key(1)
    rss_before = status_kib("VmRSS")
    if config["mode"] == "memory":
        x = jax.device_put(np.array(np.load(x_path, mmap_mode="r")[:rows]))
        y = jax.device_put(np.array(np.load(y_path, mmap_mode="r")[:rows]))
        options: dict[str, Any] = {}
    else:
        x = np.load(x_path, mmap_mode="r")[:rows]
        y = np.load(y_path, mmap_mode="r")[:rows]
        options = {"prefetch": config.get("prefetch", 2), "chunk_steps": config.get("chunk_steps")}
    if not config.get("shuffle", True):
        key = None
    if config.get("max_steps"):
        options["callbacks"] = [lambda step, params, metrics: step >= config["max_steps"]]
    common = {"lr": config["lr"], "batch_size": config["batch"], "key": key, **options}
    seconds = []
    for epoch in range(config["epochs"]):
        start = time.perf_counter()
        params, history = jaxbp.fit(
            spec, "mse", params, x, y, epochs=1, start_epoch=epoch, **common
        )
        jax.block_until_ready(params)
        seconds.append(time.perf_counter() - start)
    examples = history.get("steps_done", x.shape[0] // config["batch"]) * config["batch"]
    if config["epochs"] > 1:
        examples = (x.shape[0] // config["batch"]) * config["batch"]
    out = Path(config["params_out"])
    np.savez(out, *[np.asarray(leaf) for leaf in jax.tree.leaves(params)])
    return {
        "seconds": seconds,
        "examples_per_epoch": examples,
        "examples_per_second": examples / seconds[-1],
        "rss_growth_mib": (status_kib("VmHWM") - rss_before) / 1024,
        "final_loss": float(np.asarray(history["loss"])[-64:].mean()),
        "host_fraction": history.get("host_seconds", float("nan")) / seconds[-1],
        "chunks": history.get("chunks", 0),
    }


def run_worker(config: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(config)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"worker {config['name']} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def same_params(a: str, b: str) -> bool:
    with np.load(a) as first, np.load(b) as second:
        return all(np.array_equal(first[k], second[k]) for k in first.files)


def machine() -> list[str]:
    import jax

    import jaxbp

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return [
        f"python {platform.python_version()}, {platform.platform()}",
        f"cpu cores: {os.cpu_count()}, memory: {memory:.1f} GiB",
        f"jax {jax.__version__} ({jax.default_backend()}), numpy {np.__version__}",
        f"jaxbp {jaxbp.__version__}",
    ]


def slug(name: str, round_index: int) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.strip()) + f"-{round_index}.npz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", default="/tmp/jaxbp-stream", help="directory with x.npy, y.npy")
    parser.add_argument("--big-data", default=None, help="a data set larger than --budget-mib")
    parser.add_argument("--budget-mib", type=float, default=1024)
    parser.add_argument("--big-random-steps", type=int, default=256)
    parser.add_argument("--only-big", action="store_true", help="run only the --big-data part")
    parser.add_argument("--rows", type=int, default=None, help="use the first ROWS rows only")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sweep-rows", type=int, default=262144, help="rows for the K sweep")
    parser.add_argument("--chunk-steps", default="16,64,256", help="K values for the sweep")
    add_output_arguments(parser, "none: print only")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    watch = LoadWatch.start(args.out, args.force)
    header = [f"- {line}" for line in machine()]
    header.append(f"- command: `python benchmarks/streaming.py {' '.join(sys.argv[1:])}`")
    tmp = Path(tempfile.mkdtemp(prefix="jaxbp-streaming-"))
    base = {"data": args.data, "hidden": args.hidden, "batch": args.batch, "lr": args.lr}
    main_set = {
        "memory": {"mode": "memory"},
        "stream": {"mode": "stream"},
        "stream, no prefetch": {"mode": "stream", "prefetch": 0},
    }
    sweep = {"memory, sweep rows": {"mode": "memory"}, "stream, K=auto": {"mode": "stream"}}
    for k in args.chunk_steps.split(","):
        sweep[f"stream, K={k}"] = {"mode": "stream", "chunk_steps": int(k)}
    tables = []
    groups = [] if args.only_big else [(main_set, args.rows), (sweep, args.sweep_rows)]
    for group, rows in groups:
        results: dict[str, list[dict[str, Any]]] = {}
        names = list(group)
        for round_index in range(args.rounds):
            for name in rotation(names, round_index):
                config = {**base, **group[name], "name": name, "rows": rows, "epochs": 2}
                config["params_out"] = str(tmp / slug(name, round_index))
                results.setdefault(name, []).append(run_worker(config))
                speed = results[name][-1]["examples_per_second"]
                print(f"  {name}, round {round_index}: {speed:.0f} examples/s", file=sys.stderr)
        tables.append(report(results, names[0], tmp))
    big = big_data_report(args, base, tmp) if args.big_data else ""
    record = watch.stop()
    header += [f"- {key}: {value}" for key, value in record.lines().items()]
    for table, section in zip(tables, ("streaming", "streaming-k"), strict=False):
        publish("\n".join(header) + "\n\n" + table + "\n", args.out, record, section)
    if big:
        section = "\n".join(header) + "\n\n" + big + "\n"
        publish(section, args.out, record, "streaming-big")


def big_data_report(args: argparse.Namespace, base: dict[str, Any], tmp: Path) -> str:
    """One epoch in data order and the first steps shuffled, on a data set over the budget."""
    size = (Path(args.big_data) / "x.npy").stat().st_size / 2**20
    lines = [
        f"Data set of {size / 1024:.2f} GiB, {size / args.budget_mib:.1f}x a memory budget of "
        f"{args.budget_mib:.0f} MiB.",
        "",
        "| run | examples/s (compilation included) | peak RSS growth, MiB | within the budget |",
        "|---|---:|---:|:-:|",
    ]
    runs = {
        "in data order (sequential reads), one epoch": {"shuffle": False},
        f"shuffled (random reads), first {args.big_random_steps} steps": {
            "max_steps": args.big_random_steps
        },
    }
    for label, extra in runs.items():
        config = {**base, "data": args.big_data, "rows": None, "epochs": 1, "mode": "stream"}
        big = run_worker({**config, **extra, "name": "big", "params_out": str(tmp / "big.npz")})
        growth = big["rss_growth_mib"]
        within = "yes" if growth < args.budget_mib else "**no**"
        lines.append(f"| {label} | {big['examples_per_second']:.0f} | {growth:.0f} | {within} |")
    return "\n".join(lines)


def report(results: dict[str, list[dict[str, Any]]], reference: str, tmp: Path) -> str:
    """A Markdown table: medians, the slowest and fastest round, the ratio to ``reference``,
    peak RSS, parameter equality."""

    def median(name: str) -> float:
        return statistics.median(r["examples_per_second"] for r in results[name])

    header = (
        f"| contender | examples/s (median) | slowest-fastest round | / {reference} | "
        "peak RSS growth, MiB (max) |"
    )
    lines = [
        header + f" params = {reference}'s, bit for bit | chunks | host work / time |",
        "|---|---:|---:|---:|---:|:-:|---:|---:|",
    ]
    for name, runs in results.items():
        equal = all(
            same_params(str(tmp / slug(name, i)), str(tmp / slug(reference, i)))
            for i in range(len(runs))
        )
        rss = max(r["rss_growth_mib"] for r in runs)
        speed = median(name)
        speeds = [r["examples_per_second"] for r in runs]
        host = statistics.median(r["host_fraction"] for r in runs)
        lines.append(
            f"| {name} | {speed:.0f} | {min(speeds):.0f}-{max(speeds):.0f} | "
            f"{speed / median(reference):.3f} | {rss:.0f} | "
            f"{'yes' if equal else '**no**'} | {runs[-1]['chunks'] or ''} | "
            f"{'' if host != host else f'{100 * host:.2f}%'} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
