"""``jaxbp train``'s targets (issue 21): regression targets standardised by default and reported in
their own units; a diverged run continued at a lower rate; class names as CSV labels.

Oracles: a relation known exactly (its variance from first principles), a NumPy forward pass of
the saved parameters, and class names sorted by hand.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pytest

from jaxbp import cli
from jaxbp.cli import config
from jaxbp.data import files as data
from jaxbp.training import checkpoint
from tests.helpers import read_metrics, train

pytest.importorskip("matplotlib")


def _house(path: Path, rows: int = 1000) -> Path:
    """price = 3000 a - 2000 b + 50000 with a, b standard normal: variance 3000² + 2000² = 1.3e7."""
    rng = np.random.default_rng(0)
    ab = rng.normal(size=(rows, 2))
    price = 3000 * ab[:, 0] - 2000 * ab[:, 1] + 50000
    lines = "".join(f"{a!r},{b!r},{p!r}\n" for (a, b), p in zip(ab.tolist(), price.tolist(), strict=True))  # fmt: skip
    path.write_text("a,b,price\n" + lines)
    return path


def _forward(params: list[dict[str, np.ndarray]], x: np.ndarray) -> np.ndarray:
    """The MLP's forward pass in NumPy float64: relu hidden layers, a linear output."""
    a = x
    for i, layer in enumerate(params):
        z = a @ np.asarray(layer["w"], np.float64) + np.asarray(layer["b"], np.float64)
        a = z if i == len(params) - 1 else np.maximum(z, 0)
    return a


def test_unscaled_regression_trains_at_the_default_rate_and_reports_in_the_targets_units(capsys, tmp_path):  # fmt: skip
    path, out = _house(tmp_path / "house.csv"), tmp_path / "run"
    code, stdout, stderr = train(capsys, "--data", path, "--target", "price", "--task", "regression",
                                 "--epochs", "20", "--quiet", "--out", out)  # fmt: skip
    assert code == 0, stderr
    metrics = read_metrics(out)
    assert metrics["test_loss"] < 0.1 * 1.3e7  # explains over 90% of the variance
    saved = json.loads((out / "targets.json").read_text())
    assert saved["task"] == "regression" and saved["columns"] == ["a", "b"]
    # the test loss recomputed from the saved parameters, in the targets' units
    newest = checkpoint.load(checkpoint.resolve(out))
    values = np.loadtxt(path, delimiter=",", skiprows=1)
    x, y = values[:, :2], values[:, 2]
    test = data.split_indices(y, seed=0, val_fraction=0.1, test_fraction=0.2, stratify=False)[2]
    z = (x[test] - newest.arrays["mean"]) / newest.arrays["scale"]
    prediction = _forward(newest.params, z)[:, 0] * saved["target_scale"] + saved["target_mean"][0]
    np.testing.assert_allclose(
        metrics["test_loss"], np.mean((prediction - y[test]) ** 2), rtol=1e-3
    )
    assert f"test loss (mse) {metrics['test_loss']:.6g}" in stdout


def test_no_scale_targets_trains_on_the_targets_as_given(capsys, tmp_path):
    path, out = _house(tmp_path / "house.csv", rows=200), tmp_path / "run"
    code, _, stderr = train(capsys, "--data", path, "--target", "price", "--task", "regression",
                            "--no-scale-targets", "--hidden", "none", "--epochs", "2", "--quiet",
                            "--out", out)  # fmt: skip
    assert code == 0, stderr
    saved = json.loads((out / "targets.json").read_text())
    assert saved["target_mean"] is None and saved["target_scale"] is None
    assert read_metrics(out)["config"]["scale_targets"] is False


def test_resuming_a_scaled_run_with_no_scale_targets_says_what_the_run_did(capsys, tmp_path):
    path, out = _house(tmp_path / "house.csv", rows=200), tmp_path / "run"
    flags = ["--data", path, "--target", "price", "--task", "regression", "--hidden", "none", "--quiet"]  # fmt: skip
    code, _, stderr = train(capsys, *flags, "--epochs", "1", "--out", out)
    assert code == 0, stderr
    code, _, stderr = train(capsys, *flags, "--epochs", "2", "--resume", out, "--no-scale-targets")
    assert code == 2
    assert (
        f"the run in {out} trained on standardised targets (it was started without "
        f"--no-scale-targets), and a resumed run keeps its settings: drop --no-scale-targets"
    ) in stderr
    assert "False differs" not in stderr


def _divergent(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    np.savez(tmp_path / "steep.npz", x=x, y=1e3 * x.sum(axis=1))
    return tmp_path / "steep.npz"


def test_a_diverged_run_names_the_rerun_and_the_rerun_trains(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path, out = _divergent(tmp_path), Path("runs") / "steep"
    flags = ["--data", path, "--task", "regression", "--hidden", "4", "--batch-size", "full",
             "--schedule", "constant", "--epochs", "30", "--no-scale-targets", "--quiet"]  # fmt: skip
    code, _, stderr = train(capsys, *flags, "--lr", "0.01", "--out", out)
    assert code == 3
    rerun = read_metrics(out)["diverged"]["rerun"]
    assert f"start again at a lower rate in a new folder: {rerun}" in stderr
    words = shlex.split(rerun)
    assert words[:2] == ["jaxbp", "train"] and words[-2:] == ["--out", "runs/steep-lr0.001"]
    # the same settings but a tenth of the rate: what parsing the command gives
    parsed = config.from_args(cli.build_parser().parse_args(words[1:]))
    wanted = config.from_args(cli.build_parser().parse_args(["train", *map(str, flags), "--lr", "0.001"]))  # fmt: skip
    assert parsed == wanted
    # the folder repeats it to the obvious rerun and to a resume at another rate
    for again in ([*flags, "--lr", "0.001", "--out", out], ["--resume", out, "--lr", "0.001"]):
        code, _, stderr = train(capsys, *again)
        assert code == 2 and rerun in stderr and "diverged" in stderr
    code, _, stderr = train(capsys, *words[2:])
    assert code == 0, stderr
    assert read_metrics("runs/steep-lr0.001")["diverged"] is None


def test_a_run_that_did_not_diverge_keeps_its_rate(capsys, tmp_path):
    path, out = _divergent(tmp_path), tmp_path / "run"
    flags = ["--task", "regression", "--hidden", "4", "--epochs", "1", "--quiet"]
    assert train(capsys, *flags, "--data", path, "--out", out)[0] == 0
    code, _, stderr = train(capsys, "--resume", out, "--epochs", "2", "--lr", "0.5")
    assert (
        code == 2 and "--lr 0.5 differs from the checkpoint's 0.01" in stderr
    )  # default for regression


def _iris(path: Path, names: tuple[str, ...] = ("virginica", "setosa", "versicolor")) -> Path:
    """Three classes of text labels, each shifted in both features; first seen not in sorted order."""
    rng = np.random.default_rng(0)
    label = np.arange(150) % 3
    x = rng.normal(size=(150, 2)) + 3 * label[:, None]
    rows = "".join(f"{a!r},{b!r},{names[k]}\n" for (a, b), k in zip(x.tolist(), label, strict=True))  # fmt: skip
    path.write_text("sepal_length,sepal_width,species\n" + rows)
    return path


def test_text_class_labels_train_as_their_sorted_names(capsys, tmp_path):
    path, out = _iris(tmp_path / "iris.csv"), tmp_path / "run"
    flags = ["--data", path, "--target", "species", "--hidden", "8", "--epochs", "10", "--batch-size", "8", "--quiet"]  # fmt: skip
    code, _stdout, stderr = train(capsys, *flags, "--out", out)
    assert code == 0, stderr
    names = ["setosa", "versicolor", "virginica"]  # sorted by hand
    assert json.loads((out / "targets.json").read_text())["classes"] == names
    metrics = read_metrics(out)
    assert metrics["class_names"] == names and metrics["test_accuracy"] > 0.9
    assert checkpoint.load(checkpoint.resolve(out)).params[-1]["b"].shape == (3,)
    code, _, stderr = train(capsys, "--resume", out, "--epochs", "11", "--quiet")
    assert code == 0, stderr
    assert read_metrics(out)["class_names"] == names


def test_a_resumed_run_refuses_a_class_it_was_not_trained_on(capsys, tmp_path):
    path, out = _iris(tmp_path / "iris.csv"), tmp_path / "run"
    flags = ["--data", path, "--target", "species", "--hidden", "8", "--epochs", "1", "--quiet"]
    assert train(capsys, *flags, "--out", out)[0] == 0
    other = _iris(tmp_path / "other.csv", ("virginica", "setosa", "daisy"))
    code, _, stderr = train(capsys, "--resume", out, "--data", other, "--epochs", "2")
    assert code == 2
    assert "other.csv line 4, column 'species': class 'daisy' is not one the run was trained on (setosa, versicolor, virginica)" in stderr  # fmt: skip


def test_an_empty_class_label_is_refused(capsys, tmp_path):
    path = tmp_path / "gap.csv"
    path.write_text("a,species\n1,cat\n2,\n3,dog\n")
    code, _, stderr = train(capsys, "--data", path, "--target", "species", "--out", tmp_path / "r")
    assert code == 2 and "gap.csv line 3, column 'species': the class label is empty" in stderr


def test_one_number_written_two_ways_among_text_labels_is_refused(capsys, tmp_path):
    # with a name in the column the labels are text, so '1' and '1.0' would be two classes
    path = tmp_path / "mixed.csv"
    path.write_text("a,label\n" + "".join(f"{i},{('0', '1', 'cat', '1.0')[i % 4]}\n" for i in range(40)))  # fmt: skip
    out = tmp_path / "r"
    code, _, stderr = train(capsys, "--data", path, "--target", "label", "--out", out)
    assert code == 2 and stderr.count("\n") == 1 and not out.exists(), stderr
    assert "mixed.csv line 5, column 'label': the class labels '1' (line 3) and '1.0' are one number written two ways" in stderr  # fmt: skip


def test_more_class_names_than_the_limit_are_counted_as_names(capsys, tmp_path):
    path = tmp_path / "many.csv"
    path.write_text("a,label\n" + "".join(f"{i},c{i}\n" for i in range(10_001)))
    code, _, stderr = train(capsys, "--data", path, "--target", "label", "--out", tmp_path / "r")
    assert code == 2 and stderr.count("\n") == 1, stderr
    assert "the column 'label' holds 10,001 different class names; the limit is 10,000 classes" in stderr  # fmt: skip


def test_a_resumed_run_refuses_its_columns_swapped_or_renamed(capsys, tmp_path):
    # the weights belong to the features by position: 'sepal_width, sepal_length' would feed
    # each first-layer weight the other feature
    path, out = _iris(tmp_path / "iris.csv"), tmp_path / "run"
    flags = ["--data", path, "--target", "species", "--hidden", "8", "--epochs", "1", "--quiet"]
    assert train(capsys, *flags, "--out", out)[0] == 0
    lines = path.read_text().splitlines()
    swapped, renamed = tmp_path / "swapped.csv", tmp_path / "renamed.csv"
    swapped.write_text("".join(f"{b},{a},{s}\n" for a, b, s in (line.split(",") for line in lines)))  # fmt: skip
    renamed.write_text("\n".join(["length,width,species", *lines[1:]]) + "\n")
    before = sorted(p.name for p in out.iterdir())
    for other, message in (
        (swapped, "the feature columns are sepal_width, sepal_length but the run was trained on sepal_length, sepal_width (in that order)"),
        (renamed, "the feature columns are length, width but the run was trained on sepal_length, sepal_width: resume"),
    ):  # fmt: skip
        code, _, stderr = train(capsys, "--resume", out, "--data", other, "--epochs", "2")
        assert code == 2 and message in stderr and stderr.count("\n") == 1, stderr
    assert sorted(p.name for p in out.iterdir()) == before
    assert train(capsys, "--resume", out, "--data", path, "--epochs", "2", "--quiet")[0] == 0
