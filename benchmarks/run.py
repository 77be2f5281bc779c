"""Run every benchmark, contenders interleaved in one process, and write benchmarks/RESULTS.md.

    python benchmarks/run.py            # the full run (a few minutes), writes benchmarks/RESULTS.md
    python benchmarks/run.py --quick    # a smoke run (seconds), prints the report only
    python benchmarks/run.py --check-only --quick   # correctness checks only, no timing

The full run refuses to start when the machine is busy (1-minute load above half the cores);
``--force`` runs anyway and marks RESULTS.md "BUSY: not comparable".

Before any timing, each workload checks that its contenders compute the same parameters (against
jaxbp's NumPy float64 chain rule where one exists). Each workload then runs its contenders in
rounds, rotating the order every round, and reports medians. Contenders from the optional extra
``jaxbp[bench]`` (PyTorch, Equinox, Flax) are skipped when not installed.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere in the repo

from benchmarks import core_usage, ensemble, mlp, tiny_network_steps
from benchmarks._harness import (
    Contender,
    LoadWatch,
    Timing,
    add_output_arguments,
    interleave,
    machine,
    publish,
)
from benchmarks.report import Workload, render


@dataclasses.dataclass(frozen=True)
class Config:
    rounds: int
    tiny_fused_steps: int
    tiny_loop_steps: int
    small_mlp: tuple[int, int, int]  # batches per epoch, epochs, loop steps
    large_mlp: tuple[int, int, int]
    matmul: tuple[tuple[int, int], ...]  # (size, repeats) of square matmuls; the peak is the best
    ensemble_sizes: tuple[int, ...]
    ensemble_model_steps: int  # model-steps per run (steps = this // M, clamped)
    core_usage: tuple[int, int]  # batches per epoch, epochs


FULL = Config(
    rounds=7,
    tiny_fused_steps=1_000_000,
    tiny_loop_steps=2_000,
    small_mlp=(16, 60, 300),
    large_mlp=(4, 5, 20),
    matmul=((1024, 16), (2048, 4)),
    ensemble_sizes=(1, 10, 100, 1_000, 10_000),
    ensemble_model_steps=10_000_000,
    core_usage=(16, 30),
)
QUICK = Config(
    rounds=2,
    tiny_fused_steps=20_000,
    tiny_loop_steps=50,
    small_mlp=(4, 4, 20),
    large_mlp=(3, 1, 2),
    matmul=((256, 8), (512, 2)),
    ensemble_sizes=(1, 10, 100),
    ensemble_model_steps=20_000,
    core_usage=(4, 4),
)
LOADS: list[float] = []  # the 1-minute load average after each workload, for the report
SMALL, LARGE = ((64, 128, 128, 10), 64), ((784, 1024, 1024, 10), 256)
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def workloads(config: Config, check_only: bool) -> list[Workload]:
    """Build, check and (unless ``check_only``) time every workload, in order."""
    results = []

    def measure(name: str, contenders: list[Contender], unit: str, **extra) -> None:
        print(f"[bench] {name}: {', '.join(c.name for c in contenders)}", flush=True)
        timings: dict[str, Timing] = {}
        if not check_only:
            timings = interleave(contenders, config.rounds)
        results.append(Workload(name, unit, [c.name for c in contenders], timings, extra))
        LOADS.append(os.getloadavg()[0])

    contenders = tiny_network_steps.contenders(config.tiny_fused_steps, config.tiny_loop_steps)
    tiny_network_steps.check(contenders)
    measure("1-4-2-1 network, one example", contenders, "step")

    sizes = [mlp.matmul_contenders(size, repeats) for size, repeats in config.matmul]
    measure("float32 matmul peak (square matrices)", [c for pair in sizes for c in pair], "FLOP")

    for (sizes, batch), (batches, epochs, loop_steps) in (
        (SMALL, config.small_mlp),
        (LARGE, config.large_mlp),
    ):
        contenders = mlp.contenders(sizes, batch, batches, epochs, loop_steps)
        mlp.check(sizes, batch, batches, contenders)
        name = f"MLP {'-'.join(map(str, sizes))}, batch {batch}"
        measure(name, contenders, "example", flops_per_example=6 * mlp.weights(sizes))

    for num_models in config.ensemble_sizes:
        steps = min(max(config.ensemble_model_steps // num_models, 20), 1_000_000)
        contenders = ensemble.contenders(num_models, steps)
        ensemble.check(num_models, contenders)
        measure(
            f"ensemble of {num_models} network{'s' * (num_models != 1)} 1-4-2-1",
            contenders,
            "model-step",
            models=num_models,
        )

    if check_only:  # the both-cores measurement has no parameters to check
        return results
    batches, epochs = config.core_usage
    measure("MLP 64-128-128-10 batch 64, ways to use both cores",
            core_usage.contenders(batches, epochs), "model-example")  # fmt: skip
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 2 rounds: a smoke run")
    parser.add_argument("--check-only", action="store_true", help="correctness checks, no timing")
    add_output_arguments(parser, "benchmarks/RESULTS.md; --quick only prints")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else FULL
    command = "python benchmarks/run.py" + (" --quick" if args.quick else "")
    out = args.out or (None if args.quick or args.check_only else RESULTS)
    watch = LoadWatch.start(out, args.force)
    info = machine()
    info["seeds"] = (
        "the 1-4-2-1 network's published weights; MLP params jax.random.key(0), data "
        "numpy default_rng(0); ensembles jaxbp.init_ensemble(spec, jax.random.key(0), M); "
        "shuffling jax.random.key(0); both-cores ensembles jax.random.key(1)"
    )
    results = workloads(config, args.check_only)
    print("[bench] every contender computes the same parameters (checked before timing)")
    if args.check_only:
        return 0
    record = watch.stop()
    info |= record.lines()
    info["1-minute load average after each workload"] = " ".join(f"{v:.2f}" for v in LOADS)
    publish(render(command, info, results, quick=args.quick), out, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
