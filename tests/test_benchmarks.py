"""Smoke test of benchmarks/run.py --quick: the correctness checks that precede any timing.

No timing is asserted. Contenders whose package is not installed (PyTorch, Equinox, Flax, from the
``bench`` extra) are skipped by the benchmark itself; the checks compare every contender that runs
against jaxbp's NumPy float64 chain rule.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import ensemble, mlp, run, tiny_network_steps
from benchmarks._harness import Timing, check_same_params, installed
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
