"""RESULTS.md from the measured timings: machine, command, one table per workload, the targets.

Every number in the report comes from the run that writes it. The notes on missed targets
(``benchmarks/notes.py``) record what profiling found; they are printed next to the measured ratio.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from benchmarks._harness import Timing, rate_text
from benchmarks.notes import CORE_USAGE_NOTE, NOTES


@dataclasses.dataclass
class Workload:
    name: str
    unit: str  # "step", "example", "FLOP", "model-step", "model-example"
    names: list[str]  # contenders in order; the first is jaxbp's
    timings: dict[str, Timing]
    extra: dict[str, Any]


def _time(seconds: float) -> str:
    for scale, suffix in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {suffix}"
    return f"{seconds / 1e-9:.3g} ns"


def peak_gflops(results: list[Workload]) -> float:
    matmul = next(w for w in results if w.unit == "FLOP")
    return max(1 / t.seconds_per_unit / 1e9 for t in matmul.timings.values())


def _table(workload: Workload, peak: float) -> list[str]:
    first = workload.timings[workload.names[0]]
    unit = workload.unit
    head = f"| contender | median time per {unit} | {unit}s/s |"
    rule = "|---|---:|---:|"
    if unit == "example":
        head += " GFLOP/s | % of matmul peak |"
        rule += "---:|---:|"
    if unit == "model-step":
        head += " time per step (all models) |"
        rule += "---:|"
    head += (
        f" {workload.names[0]} is this many times faster | cores busy | {unit}s/s, slowest-fastest"
        " round | setup |"
    )
    rule += "---:|---:|---:|---:|"
    lines = [head, rule]
    for name in workload.names:
        t = workload.timings[name]
        row = f"| {name} | {_time(t.seconds_per_unit)} | {rate_text(1 / t.seconds_per_unit)} |"
        if unit == "example":
            gflops = workload.extra["flops_per_example"] / t.seconds_per_unit / 1e9
            row += f" {gflops:.1f} | {100 * gflops / peak:.0f}% |"
        if unit == "model-step":
            row += f" {_time(t.seconds_per_unit * workload.extra['models'])} |"
        row += (
            f" {t.seconds_per_unit / first.seconds_per_unit:.3g}x | {t.cores:.2f} |"
            f" {t.rate_range()} | {t.setup_seconds:.2f} s |"
        )
        lines.append(row)
    return lines


def targets(results: list[Workload]) -> list[tuple[str, str, float, float, bool]]:
    """``(key, description, measured, target, met)`` for every target the issue sets."""
    rows = []
    by_name = {w.name: w for w in results}
    peak = peak_gflops(results)
    for w in results:
        if w.unit in ("step", "example", "model-step"):
            ours, raw = w.names[0], next(n for n in w.names if n.startswith("raw"))
            ratio = w.timings[raw].seconds_per_unit / w.timings[ours].seconds_per_unit
            rows.append(("overhead", f"{ours} / raw JAX, {w.name} (speed ratio >= 0.95)",
                         ratio, 0.95, ratio >= 0.95))  # fmt: skip
    seed = next(w for w in results if w.unit == "step")
    for other in ("PyTorch eager", "Equinox (filter_jit step, loop)"):
        if other in seed.timings:
            ratio = (
                seed.timings[other].seconds_per_unit / seed.timings["jaxbp.fit"].seconds_per_unit
            )
            rows.append(("tiny-vs-loops", f"jaxbp.fit vs {other}, 1-4-2-1 network (>= 1000x)",
                         ratio, 1000.0, ratio >= 1000))  # fmt: skip
    large = next((w for w in results if w.name.startswith("MLP 784")), None)
    if large is not None:
        fit = large.timings["jaxbp.fit"].seconds_per_unit
        if "PyTorch eager" in large.timings:
            ratio = large.timings["PyTorch eager"].seconds_per_unit / fit
            rows.append(("mlp-vs-torch", "jaxbp.fit vs PyTorch eager, MLP 784-1024-1024-10 (>= 2x)",
                         ratio, 2.0, ratio >= 2))  # fmt: skip
        fraction = large.extra["flops_per_example"] / fit / 1e9 / peak
        rows.append(("mlp-peak", "jaxbp.fit, MLP 784-1024-1024-10, fraction of matmul peak (>= 0.85)",
                     fraction, 0.85, fraction >= 0.85))  # fmt: skip
    big = by_name.get("ensemble of 1000 networks 1-4-2-1")
    if big is not None:
        ns = big.timings["jaxbp.fit_ensemble"].seconds_per_unit * 1e9
        rows.append(("ensemble-1000", "fit_ensemble, 1000 models, ns per model-step (<= 15)",
                     ns, 15.0, ns <= 15))  # fmt: skip
    return rows


def _torch_ceiling(results: list[Workload], peak: float) -> str:
    large = next(w for w in results if w.name.startswith("MLP 784"))
    torch_rate = large.extra["flops_per_example"] / large.timings["PyTorch eager"].seconds_per_unit
    fraction = torch_rate / 1e9 / peak
    return (
        f"In this run PyTorch eager reached {100 * fraction:.0f}% of the measured matmul peak, "
        f"so no contender could be more than {1 / fraction:.2f}x faster than it here."
    )


def render(command: str, info: dict[str, str], results: list[Workload], quick: bool) -> str:
    peak = peak_gflops(results)
    lines = ["# jaxbp benchmarks", ""]
    if quick:
        lines += ["**Quick smoke run: tiny sizes and 2 rounds; these numbers mean little.**", ""]
    lines += [
        f"Regenerate with `{command}` from the repository root (contenders from "
        "`pip install -e .[bench]`). Every workload first checks that its contenders compute the "
        "same parameters, then runs them interleaved in one process: "
        f"{next(iter(results[0].timings.values())).rounds} rounds, the order rotated each round and reversed every other round, garbage "
        "collection paused during each timed call; "
        "the tables show medians, and the spread as the slowest and the fastest round. *cores "
        "busy* is process CPU time / wall time during a timed call; *setup* includes compilation. "
        "The load average before and after the run is under *Machine*; a run on a machine whose "
        "1-minute load exceeded half its cores is refused, or marked BUSY at the top.",
        "",
        "## Machine",
        "",
        *[f"- {key}: {value}" for key, value in info.items()],
        "",
        "## Targets",
        "",
        "| target | measured | met | missed by |",
        "|---|---:|:-:|---:|",
    ]
    rows = targets(results)
    for _key, text, measured, target, met in rows:
        if met:
            missed = ""
        elif text.endswith("(<= 15)"):
            missed = f"{measured / target:.2f}x over"
        else:
            missed = f"{100 * (1 - measured / target):.0f}% short"
        shown = f"{measured:.3g} ns" if "ns per" in text else f"{measured:.3g}"
        lines.append(f"| {text} | {shown} | {'yes' if met else '**no**'} | {missed} |")
    notes = [key for key, *_, met in rows if not met]
    for key in dict.fromkeys(notes):
        lines += ["", f"### Why missed, and what would close it: {key}", "", NOTES[key]]
        if key == "mlp-vs-torch":
            lines += ["", _torch_ceiling(results, peak)]
    for workload in results:
        lines += ["", f"## {workload.name}", ""]
        lines += _table(workload, peak)
    core_usage = results[-1]
    base = core_usage.timings[core_usage.names[0]]
    best = min(core_usage.timings.values(), key=lambda t: t.seconds_per_unit)
    lines += [
        "",
        f"Best of the ways to use both cores: *{best.name}*, "
        f"{base.seconds_per_unit / best.seconds_per_unit:.2f}x the single model's model-examples/s, "
        f"{best.cores:.2f} cores busy (single model: {base.cores:.2f}).",
        "",
        CORE_USAGE_NOTE,
        "",
        "## Data-parallel scaling, and a GPU",
        "",
        "`python benchmarks/scaling.py` measures `jaxbp.fit(..., mesh=...)` on 1, 2, 4, 8 devices (each",
        "device count in its own process); its results, on this CPU and on one H100, are in",
        "[RESULTS_scaling.md](RESULTS_scaling.md).",
        "",
        "## Training on data of any size",
        "",
        "`python benchmarks/streaming.py` trains from a memmap against the same `fit` on in-memory",
        "device arrays (throughput, peak RSS, equal parameters), each in its own process; its results",
        "are in [RESULTS_streaming.md](RESULTS_streaming.md).",
        "",
    ]
    return "\n".join(lines)
