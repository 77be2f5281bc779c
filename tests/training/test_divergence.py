"""What counts as divergence in ``jaxbp train``, and the last finite parameters (first principles)."""

from __future__ import annotations

import numpy as np
import pytest

from jaxbp.training import divergence, run_checks

PARAMS = [{"w": np.ones((2, 3)), "b": np.zeros(3)}]


@pytest.mark.parametrize(
    ("reason", "paths", "text"),
    [
        (
            "nonfinite",
            ["[0]['w']", "[2]['b']"],
            "non-finite loss or gradient in params[0]['w'], params[2]['b']",
        ),
        ("nonfinite", [], "non-finite loss or gradient"),
        ("blowup", [], "the loss rose over 1e+06 times its start"),
    ],
    ids=["nonfinite-leaves", "nonfinite-loss", "blowup"],
)
def test_the_guard_report_is_read(reason, paths, text):
    history = {"stop_step": np.int32(9), "stop_reason": reason, "nonfinite_paths": paths}
    found = divergence.from_guard(history, 4, params_finite=True)
    assert found is not None
    assert (found["step"], found["epoch"]) == (9, 3)  # 4 steps per epoch: step 9 is in epoch 3
    assert found["reason"] == text
    assert found["where"] == [f"params{path}" for path in paths]


def test_no_guard_stop_is_no_divergence():
    assert divergence.from_guard({"stop_step": -1}, 4, params_finite=True) is None
    assert divergence.from_guard({}, 4, params_finite=False) is None


def test_non_finite_kept_params_put_the_divergence_on_the_update_before_the_stop():
    # The guard stops at the first step whose loss or gradient is not finite and keeps the params
    # from before it; if those are not finite, the update of the step before overflowed.
    history = {"stop_step": 8, "stop_reason": "nonfinite", "nonfinite_paths": ["[0]['w']"]}
    found = divergence.from_guard(history, 4, params_finite=False)
    assert found == {"step": 7, "epoch": 2, "reason": "the parameters became non-finite", "where": []}  # fmt: skip


def test_a_loss_far_above_its_start_counts_even_when_finite():
    losses = np.array([3.0, 2.0, 5e6, 1e14])
    found = divergence.blowup(losses, 2.5, first_step=40)
    # 1e6 * 2.5 = 2.5e6: the third loss (step 42) is the first above it
    assert found == (42, "the loss rose to 5e+06, over 1e+06 times its start 2.5")
    # Just under the factor: a rough but finite run is not divergence; a start below 1 counts as 1.
    assert divergence.blowup(np.array([2.4e6]), 2.5, first_step=0) is None
    assert divergence.blowup(np.array([0.9e6, np.nan]), 1e-3, first_step=0) is None
    assert divergence.blowup(np.array([1.1e6]), 1e-3, first_step=5)[0] == 5


def test_all_finite_sees_every_leaf():
    # the check ``jaxbp train`` makes after each chunk, for an update that overflowed
    assert run_checks.all_finite(PARAMS)
    for bad in (np.inf, -np.inf, np.nan):
        params = [{"w": np.ones((2, 3)), "b": np.array([0.0, bad, 0.0])}]
        assert not run_checks.all_finite(params)


def test_non_finite_params_are_never_written(tmp_path):
    bad = [{"w": np.full((2, 3), np.inf), "b": np.zeros(3)}]
    divergence.save_last_finite(tmp_path / "last.npz", bad)
    assert not (tmp_path / "last.npz").exists()
    divergence.save_last_finite(tmp_path / "last.npz", PARAMS)
    with np.load(tmp_path / "last.npz") as kept:
        assert sorted(kept.files) == ["params[0]['b']", "params[0]['w']"]
        np.testing.assert_array_equal(kept["params[0]['w']"], PARAMS[0]["w"])
