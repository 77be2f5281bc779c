"""Smoke tests of the benchmarks (the correctness checks that precede any timing, the quick runs
of benchmarks/gpu.py and benchmarks/own_conv.py) and of their hygiene: the load rule that keeps a
busy machine's numbers out of the results files, the generated sections, the order of the rounds.

No timing is asserted. Contenders whose package is not installed (PyTorch, Equinox, Flax, from the
``bench`` extra) are skipped by the benchmark itself; the checks compare every contender that runs
against jaxbp's NumPy float64 chain rule.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks import (
    _harness,
    ensemble,
    gpu,
    mlp,
    own_conv,
    rerun_all,
    row_reads,
    run,
    tiny_network_steps,
)
from benchmarks._harness import LoadWatch, Timing, check_same_params, installed, publish, rotation
from benchmarks.report import Workload, targets


def test_smoke_benchmark_contenders_compute_the_same_parameters() -> None:
    # The checks `python benchmarks/run.py --quick --check-only` runs, on the 1-4-2-1 network, the
    # small MLP and one ensemble (the large MLP's check is the same code on bigger arrays).
    contenders = tiny_network_steps.contenders(fused_steps=10, loop_steps=10)
    tiny_network_steps.check(contenders)
    names = {c.name for c in contenders}
    expected = {"jaxbp.fit", "raw lax.scan", "jit step, Python loop", "NumPy chain rule (float64)"}
    assert expected <= names
    assert ("PyTorch eager" in names) == installed("torch")
    assert ("Equinox (filter_jit step, loop)" in names) == installed("equinox")
    assert ("Flax NNX (nnx.jit step, loop)" in names) == installed("flax")
    sizes, batch = run.SMALL
    batches, epochs, loop_steps = run.QUICK.small_mlp
    mlp.check(sizes, batch, batches, mlp.contenders(sizes, batch, batches, epochs, loop_steps))
    ensemble.check(10, ensemble.contenders(10, steps=20))


def test_the_parameter_check_can_fail() -> None:
    reference = [{"w": np.ones((2, 3)), "b": np.zeros(3)}]
    off = [{"w": np.ones((2, 3)) * (1 + 1e-3), "b": np.zeros(3)}]
    with pytest.raises(AssertionError, match="contender: parameter array 0 differs"):
        check_same_params(reference, {"contender": off}, rtol=1e-4, atol=1e-5)


def _timing(name: str, seconds: float) -> Timing:
    return Timing(name, seconds, spread=0.0, cores=1.0, setup_seconds=0.0, rounds=1)


def test_targets_compare_fit_with_the_raw_loop_as_a_speed_ratio() -> None:
    seed = Workload(
        "seed",
        "step",
        ["jaxbp.fit", "raw lax.scan", "PyTorch eager"],
        {
            "jaxbp.fit": _timing("jaxbp.fit", 2e-9),
            "raw lax.scan": _timing("raw lax.scan", 1e-9),
            "PyTorch eager": _timing("PyTorch eager", 1e-4),
        },
        {},
    )
    matmul = Workload("matmul", "FLOP", ["m"], {"m": _timing("m", 1e-11)}, {})
    rows = {key: (measured, met) for key, _, measured, _, met in targets([seed, matmul])}
    assert rows["overhead"] == (0.5, False)  # fit takes twice the raw loop's time
    assert rows["tiny-vs-loops"] == (pytest.approx(5e4), True)


# --- hygiene: the load rule, the results files, the order of the rounds -------------------------
def _quiet_or_busy(monkeypatch, load: float, cores: int = 4) -> None:
    monkeypatch.setattr(_harness.os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(_harness.os, "cpu_count", lambda: cores)


def test_a_run_that_would_write_results_on_a_busy_machine_is_refused(monkeypatch, tmp_path) -> None:
    out = tmp_path / "RESULTS.md"
    _quiet_or_busy(monkeypatch, load=2.01)  # more than half of 4 cores
    with pytest.raises(
        SystemExit, match=r"not running: the 1-minute load average was 2\.01.*--force"
    ):
        LoadWatch.start(out, force=False)
    LoadWatch.start(None, force=False)  # printing only: nothing to refuse
    watch = LoadWatch.start(out, force=True)
    publish("| table |\n", out, watch.stop())
    assert out.read_text().startswith(f"**{_harness.BUSY_MARK}.** Measured while the 1-minute load")


def test_on_a_quiet_machine_the_results_are_written_as_they_are(monkeypatch, tmp_path) -> None:
    out = tmp_path / "RESULTS.md"
    _quiet_or_busy(monkeypatch, load=2.0)  # exactly half of 4 cores is not busy
    record = LoadWatch.start(out, force=False).stop()
    assert not record.busy and record.lines()["load average before the run (1, 5, 15 min)"] == (
        "2.00 2.00 2.00"
    )
    publish("| table |\n", out, record)
    assert out.read_text() == "| table |\n"


def test_a_section_is_replaced_between_its_markers_and_nothing_else(monkeypatch, tmp_path) -> None:
    out = tmp_path / "RESULTS_x.md"
    out.write_text(
        "prose\n<!-- begin generated: a -->\nold a\n<!-- end generated: a -->\nmore prose\n"
        "<!-- begin generated: b -->\nold b\n<!-- end generated: b -->\n"
    )
    _quiet_or_busy(monkeypatch, load=0.0)
    publish("new a\n", out, LoadWatch.start(out, force=False).stop(), section="a")
    assert out.read_text() == (
        "prose\n<!-- begin generated: a -->\nnew a\n<!-- end generated: a -->\nmore prose\n"
        "<!-- begin generated: b -->\nold b\n<!-- end generated: b -->\n"
    )
    with pytest.raises(SystemExit, match="begin generated: c"):
        publish("c\n", out, LoadWatch.start(out, force=False).stop(), section="c")


def test_rounds_rotate_and_reverse_so_no_contender_keeps_its_place() -> None:
    orders = [rotation("abc", r) for r in range(6)]
    # round 0 as given, round 1 rotated by one and reversed, round 2 rotated by two
    assert orders[:3] == [list("abc"), list("acb"), list("cab")]
    firsts = {order[0] for order in orders}
    lasts = {order[-1] for order in orders}
    assert firsts == lasts == set("abc")


def test_every_rerun_job_names_a_results_file_with_its_sections() -> None:
    results = Path(rerun_all.__file__).parent
    for job in rerun_all.JOBS:
        assert (results / job.script).exists(), job.script
        created_by_the_run = not job.sections and job.results in {
            "RESULTS_own_conv.md",
            "RESULTS_gpu.md",
        }
        if created_by_the_run:
            continue
        text = (results / job.results).read_text()
        for section in job.sections:
            assert text.count(f"<!-- begin generated: {section} -->") == 1, (job.name, section)
            assert text.count(f"<!-- end generated: {section} -->") == 1, (job.name, section)


def test_the_dense_peaks_are_looked_up_by_device_name() -> None:
    assert gpu.dense_peaks("NVIDIA H100 80GB HBM3", None) == {"bf16": 989.0, "tf32": 494.0}
    assert gpu.dense_peaks("NVIDIA H100 PCIe", None) == {"bf16": 756.0, "tf32": 378.0}
    assert gpu.dense_peaks("NVIDIA H200", None) == {"bf16": 989.0, "tf32": 494.0}
    assert gpu.dense_peaks("NVIDIA A100-SXM4-80GB", None) == {"bf16": 312.0, "tf32": 156.0}
    assert gpu.dense_peaks("Some GPU", None) == {"bf16": None, "tf32": None}
    assert gpu.dense_peaks("Some GPU", [400.0]) == {"bf16": 400.0, "tf32": 200.0}


@pytest.mark.slow
def test_smoke_gpu_script_quick_runs_every_workload_on_any_backend(capsys) -> None:
    assert gpu.main(["--quick"]) == 0
    report = capsys.readouterr().out
    for title in ("The large MLP: MFU", "The MNIST-1D CNN", "Ensembles", "Streaming from a memmap"):
        assert f"## {title}" in report
    assert "**Parameters differ" not in report and "**M =" not in report
    assert "bit for bit equal" in report


@pytest.mark.slow
def test_smoke_own_conv_quick_checks_its_contenders(capsys) -> None:
    assert own_conv.main(["--quick"]) == 0
    assert "every contender computes the same parameters" in capsys.readouterr().out


def test_smoke_row_reads_checks_both_readers_give_the_same_rows(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(row_reads, "WORKLOADS", ((4, "shuffled", 64), (40, "contiguous", 128)))
    results = row_reads.run_workloads(tmp_path, mib=1, rounds=1, reads=2)
    assert [(r["row_bytes"], r["kind"]) for r in results] == [(16, "shuffled"), (160, "contiguous")]
    for r in results:
        assert set(r["mib_s"]) == {"preadv", "mapping"} and min(r["mib_s"].values()) > 0


def test_row_reads_refuses_rows_that_differ(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(row_reads, "WORKLOADS", ((4, "shuffled", 64),))
    monkeypatch.setattr(row_reads, "_mapping", lambda array, rows: np.take(array, rows[::-1], axis=0))  # fmt: skip
    with pytest.raises(AssertionError, match="preadv and the mapping differ"):
        row_reads.run_workloads(tmp_path, mib=1, rounds=1, reads=2)
