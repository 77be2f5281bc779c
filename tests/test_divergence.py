"""What counts as divergence in ``jaxbp train``, and the last finite parameters (first principles)."""

from __future__ import annotations

import numpy as np
import pytest

from jaxbp import divergence

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
    found = divergence.find(history, np.full(4, 1.0), 1.0, PARAMS, step=8, epoch=2)
    assert found is not None
    assert (found["step"], found["epoch"]) == (9, 3)  # 4 steps per epoch: step 9 is in epoch 3
    assert found["reason"] == text
    assert found["new_params_finite"] is True


def test_a_loss_far_above_its_start_counts_even_when_finite():
    losses = np.array([3.0, 2.0, 5e6, 1e14])
    found = divergence.find({"stop_step": -1}, losses, 2.5, PARAMS, step=40, epoch=10)
    assert found is not None and (found["step"], found["epoch"]) == (43, 11)
    assert found["reason"] == "the loss rose to 1e+14, over 1e+06 times its start 2.5"
    assert found["new_params_finite"] is False  # the epoch's start is what is kept
    # Just under the factor: a rough but finite epoch is not divergence.
    assert divergence.find({}, np.array([2.4e6]), 2.5, PARAMS, step=0, epoch=0) is None


def test_overflowing_params_count_and_are_never_written(tmp_path):
    bad = [{"w": np.full((2, 3), np.inf), "b": np.zeros(3)}]
    found = divergence.find({}, np.array([1.0]), 1.0, bad, step=0, epoch=0)
    assert found is not None and found["reason"] == "the parameters became non-finite"
    divergence.save_last_finite(tmp_path / "last.npz", bad)
    assert not (tmp_path / "last.npz").exists()
    divergence.save_last_finite(tmp_path / "last.npz", PARAMS)
    with np.load(tmp_path / "last.npz") as kept:
        assert sorted(kept.files) == ["params[0]['b']", "params[0]['w']"]
        np.testing.assert_array_equal(kept["params[0]['w']"], PARAMS[0]["w"])
