"""Rerun every published benchmark table, one command: ``python -m benchmarks.rerun_all``.

    python -m benchmarks.rerun_all --list          # what would run, and where each result goes
    python -m benchmarks.rerun_all                 # all of it (an hour or more on 2 cores)
    python -m benchmarks.rerun_all --only mnist1d own-conv

Each job is one benchmark script in its own process, one after the other; before it starts, this
prints the command and the results file (and the generated section of it) the job rewrites. A
job refuses to start on a busy machine (1-minute load above half the cores, see
``benchmarks/_harness.py``) and the run stops there, leaving the remaining files as they are;
``--force`` passes ``--force`` on, and the files are marked "BUSY: not comparable". The streaming
jobs need synthetic data sets (2 GiB and 4 GiB of ``.npy``), written by
``benchmarks/make_synthetic.py`` when missing. The GPU job runs only when JAX sees an accelerator.
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path("benchmarks")


@dataclasses.dataclass(frozen=True)
class Job:
    name: str
    script: str
    args: tuple[str, ...]
    results: str  # file name under benchmarks/
    sections: tuple[str, ...] = ()  # the generated sections of a file that also holds prose
    data: str | None = None  # "data" or "big": the synthetic data set it reads
    accelerator: bool = False  # only when JAX sees a GPU or TPU

    def command(self, data: Path, big: Path) -> list[str]:
        args = [a.replace("{data}", str(data)).replace("{big}", str(big)) for a in self.args]
        if self.sections:  # whole-file results have their default --out
            args += ["--out", str(RESULTS / self.results)]
        return [sys.executable, f"benchmarks/{self.script}", *args]

    def destination(self) -> str:
        where = f"benchmarks/{self.results}"
        named = ", ".join(f"'{section}'" for section in self.sections)
        return (
            f"{where}, generated section{'s' * (len(self.sections) > 1)} {named}"
            if named
            else where
        )


JOBS = (
    Job("run", "run.py", (), "RESULTS.md"),
    Job("mnist1d", "mnist1d_cnn.py", (), "RESULTS_mnist1d.md"),
    Job("own-conv", "own_conv.py", (), "RESULTS_own_conv.md"),
    Job("scaling-cpu", "scaling.py", (), "RESULTS_scaling.md", ("scaling-cpu",)),
    Job("streaming", "streaming.py", ("--data", "{data}", "--rounds", "3"),
        "RESULTS_streaming.md", ("streaming", "streaming-k"), "data"),
    Job("streaming-big", "streaming.py",
        ("--big-data", "{big}", "--budget-mib", "1024", "--only-big", "--big-random-steps", "64"),
        "RESULTS_streaming.md", ("streaming-big",), "big"),
    Job("device-chunks", "device_chunks.py",
        ("--data", "{data}", "--rows", "262144", "--rounds", "7"),
        "RESULTS_streaming.md", ("device-chunks",), "data"),
    Job("train-npy", "train_npy.py",
        ("--data", "{data}", "--rows", "262144", "--rounds", "2", "--epochs", "3",
         "--section", "train-npy"),
        "RESULTS_streaming.md", ("train-npy",), "data"),
    Job("train-npy-whole", "train_npy.py",
        ("--data", "{data}", "--epochs", "2", "--section", "train-npy-whole"),
        "RESULTS_streaming.md", ("train-npy-whole",), "data"),
    Job("row-reads", "row_reads.py", (), "RESULTS_streaming.md", ("row-reads",)),
    Job("gpu", "gpu.py", (), "RESULTS_gpu.md", accelerator=True),
)  # fmt: skip
DATA_GIB = {"data": 2, "big": 4}


def _make_data(kind: str, folder: Path) -> None:
    if (folder / "x.npy").exists() and (folder / "y.npy").exists():
        return
    command = [sys.executable, "benchmarks/make_synthetic.py", "--out", str(folder),
               "--gib", str(DATA_GIB[kind]), "--features", "256"]  # fmt: skip
    print(f"[rerun] writing the synthetic data set {folder}: {' '.join(command[1:])}", flush=True)
    subprocess.run(command, cwd=ROOT, check=True)


def _has_accelerator() -> bool:
    import jax

    return jax.default_backend() != "cpu"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print the jobs and their files only")
    parser.add_argument("--only", nargs="+", choices=[job.name for job in JOBS], metavar="JOB")
    parser.add_argument("--force", action="store_true", help="write even on a busy machine, marked")
    parser.add_argument("--data", type=Path, default=Path("/tmp/jaxbp-stream"))
    parser.add_argument("--big-data", type=Path, default=Path("/tmp/jaxbp-stream-big"))
    args = parser.parse_args(argv)
    jobs = [job for job in JOBS if args.only is None or job.name in args.only]
    for job in jobs:
        print(
            f"{job.name}: -> {job.destination()}\n    {' '.join(job.command(args.data, args.big_data)[1:])}"
        )
    if args.list:
        return 0
    accelerator = _has_accelerator() if any(job.accelerator for job in jobs) else False
    for job in jobs:
        if job.accelerator and not accelerator:
            print(
                f"[rerun] {job.name}: skipped, JAX sees no accelerator ({job.destination()} kept)"
            )
            continue
        if job.data is not None:
            _make_data(job.data, args.data if job.data == "data" else args.big_data)
        command = job.command(args.data, args.big_data) + (["--force"] if args.force else [])
        print(
            f"\n[rerun] {job.name} -> {job.destination()}\n[rerun] {' '.join(command[1:])}",
            flush=True,
        )
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, check=False)
        if done.returncode != 0:
            print(f"[rerun] {job.name} stopped (exit {done.returncode}); {job.destination()} and "
                  "the files of the jobs after it are left as they were.")  # fmt: skip
            return done.returncode
        print(
            f"[rerun] {job.name}: {job.destination()} rewritten ({time.perf_counter() - start:.0f} s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
