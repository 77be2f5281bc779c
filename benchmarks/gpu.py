"""One prepared run on whatever accelerator JAX sees: writes benchmarks/RESULTS_gpu.md in minutes.

    python benchmarks/gpu.py                    # on a GPU: measures, writes benchmarks/RESULTS_gpu.md
    python benchmarks/gpu.py --quick            # tiny sizes on any backend (a CPU smoke run, seconds)
    python benchmarks/gpu.py --peak-tflops 400 200   # a device missing from PEAKS: bf16 and TF32 dense

It measures, in this order and within ``--budget-s`` (a workload that would start past the budget
is skipped and says so):

1. the large MLP in float32 with TF32 matrix products and in bfloat16: examples/s, TFLOP/s and
   the MFU, the achieved FLOP/s over the device's dense peak for that precision (:data:`PEAKS`);
2. the MNIST-1D CNN with ``conv_impl="lax"`` against ``"im2col"``, which decides what
   ``conv_impl="auto"`` should pick on this backend (``jaxbp.ops.CONV_IMPL_BY_BACKEND``);
3. ensembles of 1-4-2-1 networks (``fit_ensemble``);
4. ``fit`` streaming from a memmap against the same data on the device;
5. the transformer preset, when ``jaxbp.presets.PRESETS`` has ``"gpt"``.

PyTorch contenders (from the ``bench`` extra) run on the same device when PyTorch sees it, and are
left out with a note otherwise. Every workload checks its contenders' parameters before timing
them interleaved round by round; the report gives medians and the slowest and fastest round, the
device, JAX's version, the peaks used and the load before and after. On a busy machine (1-minute
load above half the cores) the run refuses to start unless ``--force``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere in the repo

import jax

from benchmarks import gpu_torch
from benchmarks import gpu_workloads as work
from benchmarks._harness import LoadWatch, add_output_arguments, machine, publish

RESULTS = Path(__file__).resolve().parent / "RESULTS_gpu.md"
#: Dense (no sparsity) peak TFLOP/s as (bfloat16, TF32), by a part of ``device_kind``; the first
#: match wins, so the more specific names come first. NVIDIA's data sheets.
PEAKS: tuple[tuple[str, float, float], ...] = (
    ("H100 PCIe", 756.0, 378.0),
    ("H100 NVL", 835.0, 418.0),
    ("H100", 989.0, 494.0),  # SXM
    ("H200", 989.0, 494.0),
    ("A100", 312.0, 156.0),
)
FULL: dict[str, Any] = {
    "rounds": 5,
    "mlp": {"sizes": (4096, 8192, 8192, 8192, 1024), "batch": 4096, "batches": 8, "epochs": 4},
    "cnn": {"samples": 5000, "epochs": 25, "loop_steps": 200},
    "ensemble": {"sizes": ((1_000, 2_000, 200), (10_000, 500, 200))},  # M, steps, PyTorch steps
    "streaming": {"rows": 524_288, "features": 256, "hidden": 1024, "batch": 1024},
}
QUICK: dict[str, Any] = {
    "rounds": 1,
    "mlp": {"sizes": (32, 64, 10), "batch": 16, "batches": 2, "epochs": 1},
    "cnn": {"samples": 500, "epochs": 1, "loop_steps": 2},
    "ensemble": {"sizes": ((4, 20, 2),)},
    "streaming": {"rows": 512, "features": 8, "hidden": 8, "batch": 64},
}


def dense_peaks(device_kind: str, override: list[float] | None) -> dict[str, float | None]:
    """``{"bf16": ..., "tf32": ...}`` TFLOP/s: ``--peak-tflops`` if given, else :data:`PEAKS`."""
    if override:
        bf16 = override[0]
        return {"bf16": bf16, "tf32": override[1] if len(override) > 1 else bf16 / 2}
    for name, bf16, tf32 in PEAKS:
        if name.lower() in device_kind.lower():
            return {"bf16": bf16, "tf32": tf32}
    return {"bf16": None, "tf32": None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 round: a smoke run")
    parser.add_argument(
        "--peak-tflops", type=float, nargs="+", metavar=("BF16", "TF32"),
        help="the device's dense peak TFLOP/s in bfloat16 (and TF32; default half of it)",
    )  # fmt: skip
    parser.add_argument("--budget-s", type=float, default=270.0, help="skip what starts later")
    add_output_arguments(parser, "benchmarks/RESULTS_gpu.md on an accelerator; --quick prints")
    args = parser.parse_args(argv)
    backend = jax.default_backend()
    if backend == "cpu" and not args.quick and args.out is None:
        raise SystemExit(
            "[bench] JAX sees no accelerator (backend cpu), so there is nothing for "
            "benchmarks/RESULTS_gpu.md; install JAX for the device (docs/scaling.md), or pass "
            "--quick for a smoke run."
        )
    out = args.out or (None if args.quick else RESULTS)
    watch = LoadWatch.start(out, args.force)
    config = QUICK if args.quick else FULL
    device = jax.devices()[0]
    peaks = dense_peaks(device.device_kind, args.peak_tflops)
    torch_device, torch_note = gpu_torch.device_for(backend)
    rounds = config["rounds"]
    start = time.perf_counter()
    workloads: list[tuple[str, Callable[[], work.Section]]] = [
        ("mlp", lambda: work.mlp_section(config["mlp"], peaks, rounds, torch_device)),
        ("cnn", lambda: work.cnn_section(config["cnn"], rounds, torch_device)),
        ("ensemble", lambda: work.ensemble_section(config["ensemble"], rounds, torch_device)),
        ("streaming", lambda: work.streaming_section(config["streaming"], rounds)),
        ("gpt", lambda: work.gpt_section(rounds)),
    ]
    sections = []
    for name, measure in workloads:
        elapsed = time.perf_counter() - start
        if elapsed > args.budget_s:
            sections.append(work.Section(name, [f"Skipped: {elapsed:.0f} s had passed, over "
                                                f"--budget-s {args.budget_s:.0f}."]))  # fmt: skip
            continue
        print(f"[bench] {name} ({elapsed:.0f} s so far)", flush=True)
        section = measure()
        sections.append(section)
        print(f"[bench] {name} done in {time.perf_counter() - start - elapsed:.0f} s", flush=True)
    record = watch.stop()
    info = machine()
    info["device"] = f"{device.device_kind} ({backend}, {jax.device_count()} device(s) seen)"
    info["dense peak used for MFU"] = (
        f"bf16 {peaks['bf16']:g} TFLOP/s, TF32 {peaks['tf32']:g} TFLOP/s"
        + (" (--peak-tflops)" if args.peak_tflops else " (benchmarks/gpu.py PEAKS)")
        if peaks["bf16"]
        else "unknown for this device: MFU n/a (pass --peak-tflops BF16 TF32)"
    )
    info["PyTorch"] = torch_note
    info |= record.lines()
    publish(render(args, info, sections), out, record)
    return 0


def render(args: argparse.Namespace, info: dict[str, str], sections: list[work.Section]) -> str:
    command = "python benchmarks/gpu.py" + (" --quick" if args.quick else "")
    lines = [f"# jaxbp on {info['device']}", ""]
    if args.quick:
        lines += ["**Quick smoke run: tiny sizes, one round; these numbers mean nothing.**", ""]
    lines += [
        f"Regenerate with `{command}` (about five minutes on an H100). Medians over interleaved "
        "rounds (the order rotated each round and reversed every other), with the slowest and the "
        "fastest round; *setup* includes compilation.",
        "",
        "## Targets",
        "",
        "| target | measured | met |",
        "|---|---:|:-:|",
    ]
    for section in sections:
        for text, measured, met in section.targets:
            shown = "n/a" if met is None else ("yes" if met else "**no**")
            lines.append(f"| {text} | {measured} | {shown} |")
    for section in sections:
        lines += ["", f"## {section.title}", "", *section.lines]
    lines += ["", "## Machine", "", *[f"- {key}: {value}" for key, value in info.items()]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
