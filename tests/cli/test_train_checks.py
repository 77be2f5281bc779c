"""``jaxbp train`` refusals added for issue 21: checks that run before any file is written.

Oracles: the folder's bytes before and after (nothing written), and messages that name the
problem and the fix.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from jaxbp.cli import run_folder
from jaxbp.data import files as data
from jaxbp.layers import (
    Activation,
    BatchNorm,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    Residual,
    Sequential,
    model_file,
)
from tests.helpers import train


@pytest.fixture
def small_npz(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    np.savez(tmp_path / "small.npz", x=rng.normal(size=(60, 4)) + y[:, None], y=y)
    return tmp_path / "small.npz"


@pytest.mark.parametrize(
    "ending",
    [(Dense(3, activation="softmax"),), (Dense(3), Activation("softmax")),
     (Dense(3), Activation("softmax"), Flatten())],
    ids=["dense-softmax", "activation-layer", "softmax-then-flatten"],
)  # fmt: skip
def test_a_model_ending_in_softmax_is_refused_with_softmax_cross_entropy(capsys, tmp_path, small_npz, ending):  # fmt: skip
    path = tmp_path / "net.json"
    model_file.save(path, Sequential((Dense(8, activation="relu"), *ending), input_shape=(4,)))
    code, _, stderr = train(capsys, "--data", small_npz, "--model", path, "--out", tmp_path / "run")
    assert code == 2
    assert "net.json ends in a softmax" in stderr and "remove the final softmax" in stderr
    assert not (tmp_path / "run").exists()


def test_a_model_ending_in_logits_still_trains(capsys, tmp_path, small_npz):
    path = tmp_path / "net.json"
    model_file.save(path, Sequential((Dense(8, activation="relu"), Dense(3)), input_shape=(4,)))
    flags = ["--data", small_npz, "--model", path, "--epochs", "1", "--quiet"]
    assert train(capsys, *flags, "--out", tmp_path / "run")[0] == 0


# --- a run in progress -------------------------------------------------------------------------


def test_resume_into_a_folder_a_live_run_holds_says_a_run_is_in_progress(capsys, tmp_path, small_npz):  # fmt: skip
    folder = tmp_path / "run"
    flags = ["--data", small_npz, "--hidden", "4", "--epochs", "1", "--quiet"]
    assert train(capsys, *flags, "--out", folder)[0] == 0
    newest = sorted(folder.glob("checkpoint-*"))[-1]
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    held = run_folder.claim(folder)  # this process stands for the live run
    try:
        for target in (folder, newest):
            code, _, stderr = train(capsys, "--resume", target, "--epochs", "2", "--quiet")
            assert code == 2
            assert f"a run is in progress in {folder} (process {os.getpid()})" in stderr
            assert "move" not in stderr
    finally:
        held.release()
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_a_stale_pid_file_is_taken_over(capsys, tmp_path, small_npz):
    folder = tmp_path / "run"
    flags = ["--data", small_npz, "--hidden", "4", "--epochs", "1", "--quiet"]
    assert train(capsys, *flags, "--out", folder)[0] == 0
    (folder / run_folder.PID_FILE).write_text("999999999\n")  # no lock: a killed run's
    assert run_folder.in_progress(folder) == (False, None)
    code, _, stderr = train(capsys, "--resume", folder, "--epochs", "2", "--quiet")
    assert code == 0, stderr
    assert not (folder / run_folder.PID_FILE).exists()  # the run removed its own at the end


# --- every split is checked the same way -------------------------------------------------------


def _rows_of(part: str, y: np.ndarray) -> np.ndarray:
    """The rows of a part as the documented split of --seed 0, 0.1 / 0.2, draws them."""
    indices = data.split_indices(y, seed=0, val_fraction=0.1, test_fraction=0.2, stratify=True)
    return indices[("training", "validation", "test").index(part)]


@pytest.mark.parametrize("part", ["validation", "test"])
def test_a_value_beyond_the_overflow_limit_in_any_split_is_refused(capsys, tmp_path, part):
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    x = rng.normal(size=(60, 2))
    row = int(np.min(_rows_of(part, y)))
    x[row, 1] = 1e300  # standardised: ~1e300 training standard deviations, inf in float32
    lines = "".join(f"{a!r},{b!r},{label}\n" for (a, b), label in zip(x.tolist(), y, strict=True))
    path = tmp_path / "far.csv"
    path.write_text("a,b,target\n" + lines)
    code, _, stderr = train(capsys, "--data", path, "--hidden", "4", "--out", tmp_path / "run")
    assert code == 2, stderr
    assert f"far.csv: {part} line {row + 2}, feature column 'b': the value 1e+300" in stderr
    assert not (tmp_path / "run").exists()


def test_a_value_beyond_the_overflow_limit_in_a_npy_test_row_is_refused(capsys, tmp_path):
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    x = np.column_stack([rng.normal(size=(60, 2)), y])
    row = int(np.min(_rows_of("test", y)))
    x[row, 0] = -1e30  # beyond sqrt(float32 max) = 1.8e19 standard deviations
    np.save(tmp_path / "far.npy", x)
    code, _, stderr = train(capsys, "--data", tmp_path / "far.npy", "--target", "-1",
                            "--hidden", "4", "--out", tmp_path / "run")  # fmt: skip
    assert code == 2, stderr
    assert (
        f"far.npy: test row {row} (from 0), feature column 0 (from 0): the value -1e+30" in stderr
    )


# --- layers jaxbp train cannot train as they mean ---------------------------------------------


@pytest.mark.parametrize(
    ("layers", "said"),
    [((Embedding(10, 2), Flatten(), Dense(3)), "starts with an Embedding, which takes integer tokens"),
     ((Dense(8, activation="relu"), Dropout(0.5), Dense(3)), "has a Dropout, which is on only with a random key"),
     ((Dense(8), Residual((Dropout(0.1),)), Dense(3)), "has a Dropout"),
     ((Dense(8), BatchNorm(), Dense(3)), "has a BatchNorm, whose running statistics are state")],
    ids=["embedding", "dropout", "dropout-in-residual", "batch-norm"],
)  # fmt: skip
def test_a_model_with_tokens_dropout_or_batch_norm_is_refused_before_any_file(capsys, tmp_path, small_npz, layers, said):  # fmt: skip
    path = tmp_path / "net.json"
    model_file.save(path, Sequential(layers, input_shape=(4,)))
    code, _, stderr = train(capsys, "--data", small_npz, "--model", path, "--out", tmp_path / "run")
    assert code == 2
    assert f"--model net.json {said}" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "run").exists()


def test_a_model_with_dropout_of_rate_zero_still_trains(capsys, tmp_path, small_npz):
    path = tmp_path / "net.json"
    model_file.save(path, Sequential((Dense(8), Dropout(0.0), Dense(3)), input_shape=(4,)))
    flags = ["--data", small_npz, "--model", path, "--epochs", "1", "--quiet"]
    assert train(capsys, *flags, "--out", tmp_path / "run")[0] == 0
