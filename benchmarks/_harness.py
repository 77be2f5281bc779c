"""The interleaved timing harness shared by every benchmark, the machine description, and the
rule that keeps numbers from a busy machine out of the published results.

A ``Contender`` is a name, a ``run()`` that does ``units`` units of work (SGD steps, examples,
model-steps) and blocks until the result is ready, and ``params()`` giving the parameters after a
fixed short run, in jaxbp's layout, for the correctness check that precedes any timing.

``interleave`` runs every contender once per round, rotating the order each round (and reversing
it every other round) so that no contender always runs first, last or after the same neighbour,
with Python's garbage collector run before and paused during each timed call (as ``timeit``
does), and reports per contender
the median seconds per unit over the rounds, and the CPU cores it kept busy: process CPU time
divided by wall time, measured around each timed call, with the fastest and slowest round.

Every benchmark script records the load around its run (:class:`LoadWatch`) and writes its
results file through :func:`publish`. A machine counts as busy when its 1-minute load average
before the run exceeds half of ``os.cpu_count()``: other work then holds at least half the cores
and every number is slower and noisier than on a quiet machine. Such a run refuses to start when
it would write a results file (:meth:`LoadWatch.start`); with ``--force`` it runs and its file is
marked ``BUSY: not comparable``. The load after the run is recorded beside it, with the cores the
run itself kept busy: the benchmark's own threads count in the load, so the load after a run
that keeps every core busy is high on any machine and cannot decide by itself.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np


@dataclasses.dataclass
class Contender:
    """One way of doing a workload.

    Attributes:
        name: shown in the tables.
        run: does ``units`` units of work and blocks until done.
        units: how many units one ``run()`` does.
        params: ``params()`` -> parameters after the workload's check run (jaxbp layout, NumPy).
        setup: called once before timing (compile, warm up); its seconds are reported apart.
    """

    name: str
    run: Callable[[], Any]
    units: int
    params: Callable[[], Any] | None = None
    setup: Callable[[], Any] | None = None


@dataclasses.dataclass
class Timing:
    name: str
    seconds_per_unit: float  # median over rounds
    spread: float  # (max - min) / median over rounds
    cores: float  # median CPU-time / wall-time
    setup_seconds: float
    rounds: int
    fastest: float = math.nan  # seconds per unit, the best round
    slowest: float = math.nan  # seconds per unit, the worst round

    def rate_range(self) -> str:
        """Units per second of the slowest and the fastest round: ``"410-655"``."""
        return f"{rate_text(1 / self.slowest)}-{rate_text(1 / self.fastest)}"


def rate_text(per_second: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if per_second >= scale:
            return f"{per_second / scale:.3g}{suffix}"
    return f"{per_second:.3g}"


T = TypeVar("T")


def rotation(items: Sequence[T], round_index: int) -> list[T]:
    """The order of round ``round_index``: rotated by one each round and reversed every other
    round, so that no contender always runs first, last or after the same neighbour."""
    shift = round_index % len(items)
    order = list(items[shift:]) + list(items[:shift])
    return order[::-1] if round_index % 2 else order


def check_same_params(reference: Any, contenders: dict[str, Any], rtol: float, atol: float) -> None:
    """Raise when any contender's parameters differ from the reference beyond the tolerance."""
    ref_leaves = _leaves(reference)
    for name, params in contenders.items():
        leaves = _leaves(params)
        if len(leaves) != len(ref_leaves):
            raise AssertionError(
                f"{name}: {len(leaves)} parameter arrays, expected {len(ref_leaves)}"
            )
        for i, (got, want) in enumerate(zip(leaves, ref_leaves, strict=True)):
            if got.shape != want.shape or not np.allclose(got, want, rtol=rtol, atol=atol):
                error = np.max(np.abs(got - want)) if got.shape == want.shape else "shape"
                raise AssertionError(
                    f"{name}: parameter array {i} differs from the reference (max abs error "
                    f"{error}, rtol={rtol}, atol={atol})"
                )


def _leaves(params: Any) -> list[np.ndarray]:
    return [
        np.asarray(layer[key], np.float64) for layer in params for key in ("w", "b") if key in layer
    ]


def interleave(contenders: list[Contender], rounds: int) -> dict[str, Timing]:
    """Time every contender ``rounds`` times, rotating the order each round."""
    setup_seconds = {}
    for contender in contenders:
        start = time.perf_counter()
        if contender.setup is not None:
            contender.setup()
        contender.run()  # warm up: compile, allocate, fill caches
        setup_seconds[contender.name] = time.perf_counter() - start
    walls: dict[str, list[float]] = {c.name: [] for c in contenders}
    cores: dict[str, list[float]] = {c.name: [] for c in contenders}
    for round_index in range(rounds):
        for contender in rotation(contenders, round_index):
            gc.collect()  # garbage left by one contender is not collected in another's time
            gc.disable()
            try:
                cpu, wall = time.process_time(), time.perf_counter()
                contender.run()
                wall = time.perf_counter() - wall
                cpu = time.process_time() - cpu
            finally:
                gc.enable()
            walls[contender.name].append(wall / contender.units)
            cores[contender.name].append(cpu / wall)
    return {
        c.name: Timing(
            name=c.name,
            seconds_per_unit=statistics.median(walls[c.name]),
            spread=(max(walls[c.name]) - min(walls[c.name])) / statistics.median(walls[c.name]),
            cores=statistics.median(cores[c.name]),
            setup_seconds=setup_seconds[c.name],
            rounds=rounds,
            fastest=min(walls[c.name]),
            slowest=max(walls[c.name]),
        )
        for c in contenders
    }


def machine() -> dict[str, str]:
    """Machine, versions, threads: everything a reader needs to compare runs."""
    import jax

    info = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu cores (os.cpu_count)": str(os.cpu_count()),
        "cores this process may use": str(len(os.sched_getaffinity(0))),
        "jax": jax.__version__,
        "jax backend": jax.default_backend(),
        "jax devices": str(jax.devices()),
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", "(unset)"),
        "numpy": np.__version__,
    }
    for module in ("optax", "torch", "equinox", "flax"):
        try:
            info[module] = __import__(module).__version__
        except ImportError:
            info[module] = "not installed"
    try:
        import torch

        info["torch threads"] = str(torch.get_num_threads())
    except ImportError:
        pass
    return info


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def installed(module: str) -> bool:
    """Whether an optional contender's package can be imported."""
    try:
        __import__(module)
    except ImportError:
        return False
    return True


# --- the load around a run, and the results files -----------------------------------------------
BUSY_MARK = "BUSY: not comparable"
BUSY_FRACTION = 0.5  # of os.cpu_count(): more 1-minute load than this before a run is "busy"


def _loads() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return one, five, fifteen


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished child processes (user + system)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


@dataclasses.dataclass(frozen=True)
class LoadRecord:
    """The load average (1, 5, 15 min) before and after a run, and what the run itself used."""

    cores: int
    before: tuple[float, float, float]
    after: tuple[float, float, float]
    own_cores: float  # CPU seconds of the run (children included) / its wall seconds
    wall_seconds: float

    @property
    def busy(self) -> bool:
        return self.before[0] > BUSY_FRACTION * self.cores

    def reason(self) -> str:
        return (
            f"the 1-minute load average was {self.before[0]:.2f} before the run on "
            f"{self.cores} cores, more than half of them ({BUSY_FRACTION * self.cores:g}) busy "
            "with other work"
        )

    def lines(self) -> dict[str, str]:
        """For a results file's machine section."""
        return {
            "load average before the run (1, 5, 15 min)": _triple(self.before),
            "load average after the run (1, 5, 15 min)": _triple(self.after),
            "CPU cores the run kept busy (CPU time / wall time)": f"{self.own_cores:.2f}",
            "wall time of the run": f"{self.wall_seconds:.0f} s",
            "quiet machine (1-minute load before <= half the cores)": "no" if self.busy else "yes",
        }

    def banner(self) -> str:
        """The mark at the top of a results file from a busy machine ('' on a quiet one)."""
        if not self.busy:
            return ""
        return (
            f"**{BUSY_MARK}.** Measured while {self.reason()}. Rerun on a quiet machine "
            "(`python -m benchmarks.rerun_all`) before comparing these numbers.\n\n"
        )


def _triple(values: Sequence[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


class LoadWatch:
    """Records the load and CPU time from :meth:`start` to :meth:`stop`."""

    def __init__(self) -> None:
        self.before = _loads()
        self._cpu, self._wall = _cpu_seconds(), time.perf_counter()

    @classmethod
    def start(cls, out: Path | None, force: bool) -> LoadWatch:
        """Begin a run; refuse it (``SystemExit``) when it would write ``out`` on a busy machine
        and ``force`` is not set, before any time is spent."""
        watch = cls()
        record = watch.stop()
        if out is not None and record.busy:
            if not force:
                raise SystemExit(
                    f"[bench] not running: {record.reason()}, so the results would not be "
                    f"comparable and {out} is left as it is. Run at a quiet moment, or pass "
                    f"--force to write them marked '{BUSY_MARK}'."
                )
            print(f"[bench] --force: {record.reason()}; {out} will be marked '{BUSY_MARK}'.")
        return watch

    def stop(self) -> LoadRecord:
        wall = time.perf_counter() - self._wall
        return LoadRecord(
            cores=os.cpu_count() or 1,
            before=self.before,
            after=_loads(),
            own_cores=(_cpu_seconds() - self._cpu) / wall if wall > 0 else 0.0,
            wall_seconds=wall,
        )


def add_output_arguments(parser: argparse.ArgumentParser, default: str) -> None:
    """``--out`` (where the results go) and ``--force`` (write them from a busy machine)."""
    parser.add_argument("--out", type=Path, default=None, help=f"results file (default {default})")
    parser.add_argument(
        "--force",
        action="store_true",
        help=f"run and write results even on a busy machine, marked '{BUSY_MARK}'",
    )


def publish(text: str, out: Path | None, record: LoadRecord, section: str | None = None) -> None:
    """Print ``text``; write it to ``out`` (all of it, or between ``section``'s markers).

    A results file written from a busy machine starts with :meth:`LoadRecord.banner`;
    :meth:`LoadWatch.start` has already refused such a run unless ``--force`` was given.
    """
    text = record.banner() + text
    print(text)
    if out is None:
        return
    if section is None:
        out.write_text(text)
    else:
        out.write_text(replace_section(out.read_text(), section, text))
    where = f"{out}, section {section!r}" if section else str(out)
    print(f"[bench] wrote {where}")


def replace_section(document: str, section: str, text: str) -> str:
    """``document`` with what lies between ``section``'s begin and end markers replaced."""
    begin, end = f"<!-- begin generated: {section} -->", f"<!-- end generated: {section} -->"
    if document.count(begin) != 1 or document.count(end) != 1:
        raise SystemExit(
            f"[bench] the results file needs exactly one '{begin}' and one '{end}' line "
            "around the table this run regenerates."
        )
    head, rest = document.split(begin)
    _, tail = rest.split(end)
    return f"{head}{begin}\n{text.strip()}\n{end}{tail}"
