"""``jaxbp train`` on a ``.npy`` file streamed from a memmap, against the same data as ``.npz``.

Both contenders are the command line itself, each in a fresh process (its peak resident memory,
``ru_maxrss`` from ``os.wait4``, is its own), one after the other, the order rotated every round:

- ``npz``: ``--data d.npz``, loaded whole into memory (float64), split, standardised and put on
  the device, as for any ``.npz``.
- ``npy``: ``--data x.npy --target y.npy``: the features stay in the file; the split is by index,
  the standardisation is applied to each chunk as it is read (in the prefetch thread).

The run: a regression MLP (``--hidden 256``), batches of 256, ``--epochs`` epochs (at least 2), a
constant rate, one checkpoint at the end. Reported: training examples per second over the epochs
after the first (which includes compiling; from ``metrics.json``'s ``epoch_seconds``), the whole
wall time (reading and checking the data, the split, every epoch, the test), the peak RSS
(``VmHWM``), and the test loss, which
the two ways must agree on (the standardisation's mean and scale are summed in another order,
so only to rounding).

    python benchmarks/make_synthetic.py --out /tmp/jaxbp-stream --gib 2 --features 256
    python benchmarks/train_npy.py --data /tmp/jaxbp-stream --rows 262144 --rounds 3
    python benchmarks/train_npy.py --data /tmp/jaxbp-stream --epochs 2   # the whole file

With ``--out benchmarks/RESULTS_streaming.md`` the table replaces that file's generated section
named by ``--section``; on a busy machine (1-minute load above half the cores) the run refuses to
start unless ``--force``.
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
FLAGS = ["--task", "regression", "--hidden", "256", "--batch-size", "256", "--lr", "0.01",
         "--schedule", "constant", "--quiet", "--checkpoint-every", "1000"]  # fmt: skip


#: Runs the command in the worker process, then records its peak RSS (``VmHWM``, which starts
#: afresh at ``exec``; ``ru_maxrss`` would count the benchmark's own pages from before it).
_WORKER = """
import sys
from pathlib import Path
from jaxbp import cli
code = cli.main(sys.argv[2:])
status = Path("/proc/self/status").read_text().splitlines()
hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
Path(sys.argv[1]).write_text(str(hwm))
sys.exit(code)
"""


def run(data: list[str], epochs: int, out: Path) -> dict[str, Any]:
    """One ``jaxbp train`` process: its wall time, peak RSS and metrics."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    peak = out.with_name(out.name + ".hwm")
    command = [sys.executable, "-c", _WORKER, str(peak), "train", *data, *FLAGS,
               "--epochs", str(epochs), "--out", str(out)]  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"jaxbp train {' '.join(data)} failed:\n{result.stderr[-3000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    timed = metrics["epoch_seconds"][1:]  # epoch 1 includes compiling
    examples = metrics["examples"]["train"] // 256 * 256 * len(timed)
    return {
        "wall_seconds": wall,
        "peak_rss_mib": int(peak.read_text()) / 1024,
        "train_examples_per_second": examples / sum(timed),
        "test_loss": metrics["test_loss"],
    }


def prepare(data: Path, rows: int | None, tmp: Path, want_npz: bool) -> dict[str, list[str]]:
    """The contenders' ``--data`` flags: the files themselves, or their first ``rows`` rows."""
    x, y = np.load(data / "x.npy", mmap_mode="r"), np.load(data / "y.npy", mmap_mode="r")
    if rows is not None:
        np.save(tmp / "x.npy", x[:rows])
        np.save(tmp / "y.npy", y[:rows])
        data, x, y = tmp, x[:rows], y[:rows]
    flags = {"npy": ["--data", str(data / "x.npy"), "--target", str(data / "y.npy")]}
    if want_npz:
        np.savez(tmp / "d.npz", x=x, y=y)
        flags["npz"] = ["--data", str(tmp / "d.npz")]
    return flags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of x.npy and y.npy")
    parser.add_argument("--rows", type=int, default=None, help="use only the first ROWS rows")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--only", choices=("npy", "npz"), default=None)
    parser.add_argument("--section", default="train-npy", help="the section of --out to replace")
    add_output_arguments(parser, "none: print only")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first, which compiles, is not timed")
    watch = LoadWatch.start(args.out, args.force)
    with tempfile.TemporaryDirectory(dir=args.data.parent) as name:
        tmp = Path(name)
        flags = prepare(args.data, args.rows, tmp, want_npz=args.only != "npy")
        names = [args.only] if args.only else ["npz", "npy"]
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        for round_index in range(args.rounds):
            for name in rotation(names, round_index):
                out = tmp / f"run-{name}-{round_index}"
                results[name].append(run(flags[name], args.epochs, out))
                print(name, round_index, results[name][-1], flush=True)
    record = watch.stop()
    publish(render(args, results, record), args.out, record, args.section)


def render(args: argparse.Namespace, results: dict[str, list[dict[str, Any]]], record) -> str:
    x = np.load(args.data / "x.npy", mmap_mode="r")
    rows = args.rows or x.shape[0]
    lines = [
        f"`python benchmarks/train_npy.py {' '.join(sys.argv[1:])}`: {rows:,} x {x.shape[1]} "
        f"{x.dtype} ({rows * x[0].nbytes / 2**30:.2f} GiB), {args.epochs} epoch(s), "
        f"{args.rounds} round(s); python {platform.python_version()}, {os.cpu_count()} CPUs.",
        "",
        *[f"- {key}: {value}" for key, value in record.lines().items()],
        "",
        "| contender | train examples/s (median) | slowest-fastest round | / npz | "
        "wall s (median) | peak RSS MiB (max) | test loss |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    speeds = {n: [r["train_examples_per_second"] for r in runs] for n, runs in results.items()}
    medians = {n: statistics.median(s) for n, s in speeds.items()}
    for name, runs in results.items():
        ratio = f"{medians[name] / medians['npz']:.3f}" if "npz" in medians else ""
        wall = statistics.median(r["wall_seconds"] for r in runs)
        rss = max(r["peak_rss_mib"] for r in runs)
        spread = f"{min(speeds[name]):.0f}-{max(speeds[name]):.0f}"
        lines.append(
            f"| {name} | {medians[name]:.0f} | {spread} | {ratio} | {wall:.1f} | {rss:.0f} | "
            f"{runs[0]['test_loss']:.6g} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
