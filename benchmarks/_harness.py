"""The interleaved timing harness shared by every workload, and the machine description.

A ``Contender`` is a name, a ``run()`` that does ``units`` units of work (SGD steps, examples,
model-steps) and blocks until the result is ready, and ``params()`` giving the parameters after a
fixed short run, in jaxbp's layout, for the correctness check that precedes any timing.

``interleave`` runs every contender once per round, rotating the order each round (and reversing
it every other round) so that no contender always runs first, last or after the same neighbour,
with Python's garbage collector run before and paused during each timed call (as ``timeit``
does), and reports per contender
the median seconds per unit over the rounds, and the CPU cores it kept busy: process CPU time
divided by wall time, measured around each timed call.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

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
        shift = round_index % len(contenders)
        order = contenders[shift:] + contenders[:shift]
        if round_index % 2:  # reversed every other round, so neighbours change too
            order = order[::-1]
        for contender in order:
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
        "load average at start (1, 5, 15 min)": " ".join(f"{v:.2f}" for v in os.getloadavg()),
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
