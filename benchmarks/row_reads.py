"""Reading rows of a ``.npy`` file: ``preadv`` (what jaxbp does) against ``np.take`` through the
memory map (what it did for rows under 256 bytes), side by side in one process.

jaxbp reads every row of a file-backed memmap with ``os.preadv`` (``jaxbp.data._rows``): a file
cut short while it is read then ends with ``FileShrankError`` (exit 2 in ``jaxbp train``)
instead of killing the process with ``SIGBUS``, and no page of the file enters the process.
The price is a system call per span of nearby rows, which costs most for narrow rows read in a
shuffled order. This script measures that price, for narrow (160-byte) and wide (1 KiB) rows,
for a shuffled batch and for a contiguous chunk, with the file in the page cache:

- ``preadv``: ``jaxbp.data._rows.row_reader(memmap)(rows)``.
- ``mapping``: ``np.take(memmap, rows, axis=0)``, then the mapping's pages released
  (``madvise(MADV_DONTNEED)``, as jaxbp did), so that both keep the process small.

Each contender's rows are first checked equal, byte for byte; then the two run interleaved
(:func:`benchmarks._harness.interleave`), and the table gives the median MiB/s and the ratio.

    python benchmarks/row_reads.py                       # print only
    python benchmarks/row_reads.py --out benchmarks/RESULTS_streaming.md
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere in the repo

from benchmarks._harness import (
    Contender,
    LoadRecord,
    LoadWatch,
    add_output_arguments,
    interleave,
    machine,
    publish,
)
from jaxbp.data._rows import release, row_reader

SECTION = "row-reads"
#: (row width in float32 values, the workload, rows per read)
WORKLOADS = (
    (40, "shuffled", 4096),
    (40, "contiguous", 65536),
    (256, "shuffled", 4096),
    (256, "contiguous", 65536),
)


def _rows(kind: str, count: int, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "shuffled":
        return rng.permutation(n)[:count]
    start = int(rng.integers(0, n - count))
    return np.arange(start, start + count)


def _mapping(array: np.ndarray, rows: np.ndarray) -> np.ndarray:
    out = np.take(array, rows, axis=0)
    release(array)
    return out


def run_workloads(folder: Path, mib: int, rounds: int, reads: int) -> list[dict]:
    """Every workload's timings: a file of about ``mib`` MiB per row width, ``reads`` reads
    (each a fresh draw of rows) per timed call, ``rounds`` rounds."""
    results = []
    rng = np.random.default_rng(0)
    for width, kind, count in WORKLOADS:
        path = folder / f"x{width}.npy"
        if not path.exists():
            n = mib * 2**20 // (4 * width)
            np.save(path, rng.standard_normal((n, width), dtype=np.float32))
        array = np.load(path, mmap_mode="r")
        np.asarray(array).sum()  # into the page cache
        release(array)
        read = row_reader(array)
        draws = [_rows(kind, count, len(array), rng) for _ in range(reads)]
        for rows in draws[:2]:
            if not np.array_equal(read(rows), _mapping(array, rows)):
                raise AssertionError(f"{width}-value rows, {kind}: preadv and the mapping differ")
        contenders = [
            Contender("preadv", lambda d=draws, f=read: [f(rows) for rows in d], reads * count),
            Contender("mapping", lambda d=draws, a=array: [_mapping(a, r) for r in d], reads * count),
        ]  # fmt: skip
        timings = interleave(contenders, rounds)
        row_bytes = 4 * width
        mib_s = {name: row_bytes / t.seconds_per_unit / 2**20 for name, t in timings.items()}
        per_read = {name: t.seconds_per_unit * count * 1e3 for name, t in timings.items()}
        spread = max(t.spread for t in timings.values())
        results.append(dict(row_bytes=row_bytes, kind=kind, count=count, mib_s=mib_s,
                            per_read=per_read, spread=spread))  # fmt: skip
    return results


def render(results: list[dict], args: argparse.Namespace, record: LoadRecord) -> str:
    lines = [
        f"`python benchmarks/row_reads.py --mib {args.mib} --rounds {args.rounds} --reads "
        f"{args.reads}`: files of {args.mib} MiB in the page cache; medians of {args.rounds} "
        f"interleaved rounds of {args.reads} reads each.",
        "",
        "| rows | read | preadv MiB/s | mapping MiB/s | preadv / mapping | ms per read (preadv, mapping) | spread (max) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ratio = r["mib_s"]["preadv"] / r["mib_s"]["mapping"]
        lines.append(
            f"| {r['row_bytes']} bytes | {r['count']} {r['kind']} | {r['mib_s']['preadv']:.0f} | "
            f"{r['mib_s']['mapping']:.0f} | **{ratio:.2f}** | {r['per_read']['preadv']:.2f}, "
            f"{r['per_read']['mapping']:.2f} | {r['spread']:.0%} |"
        )
    keep = ("python", "platform", "cpu", "cpu cores (os.cpu_count)", "numpy", "jax")
    described = {key: value for key, value in machine().items() if key in keep}
    lines += ["", *(f"- {key}: {value}" for key, value in described.items())]
    lines += [f"- {key}: {value}" for key, value in record.lines().items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="size of each file (default 256)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--reads", type=int, default=20, help="reads per timed call")
    parser.add_argument("--folder", type=Path, default=None, help="where the files go (a temp dir)")
    add_output_arguments(parser, "none: print only")
    args = parser.parse_args(argv)
    smallest = max(count * 4 * width for width, _, count in WORKLOADS) * 2 // 2**20
    if args.mib < smallest:
        parser.error(f"--mib {args.mib}: the contiguous reads of wide rows need files of at least {smallest} MiB")  # fmt: skip
    watch = LoadWatch.start(args.out, args.force)
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.folder or Path(scratch)
        os.makedirs(folder, exist_ok=True)
        results = run_workloads(folder, args.mib, args.rounds, args.reads)
    record = watch.stop()
    publish(render(results, args, record), args.out, record, SECTION if args.out else None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
