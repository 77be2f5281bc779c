"""``jaxbp train --data x.npy``: streamed from a memmap, the very run the in-memory ``.npz`` gives.

Oracles: the same data saved as ``.npz`` (loaded whole, the path that exists already), as
``x.npy`` + ``y.npy`` and as one ``xy.npy`` with the label column; ``data.fingerprint`` and
``data.standardizer`` on the arrays in memory; a NumPy forward pass for ``evaluate``; the
process's peak resident memory for "never copied whole".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import jaxbp
from jaxbp.cli import metrics
from jaxbp.data import files as data
from jaxbp.data import npy as data_npy
from tests.helpers import TINY, train

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[2]
FLAGS = [*TINY, "--epochs", "3", "--seed", "5"]


def blobs(n: int = 700, features: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three classes, features of different scales and offsets (standardising matters)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, features)) * np.arange(1, features + 1) + 3 * y[:, None]
    return x + np.linspace(-20, 20, features), y


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def test_npz_npy_pair_and_label_column_give_the_same_run(capsys, tmp_path):
    x, y = blobs()
    np.savez(tmp_path / "d.npz", x=x, y=y)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "xy.npy", np.column_stack([x, y]))
    np.save(tmp_path / "yx.npy", np.column_stack([y, x]))
    runs = {
        "npz": ["--data", tmp_path / "d.npz"],
        "pair": ["--data", tmp_path / "x.npy", "--target", tmp_path / "y.npy"],
        "last-column": ["--data", tmp_path / "xy.npy", "--target", "-1"],
        "first-column": ["--data", tmp_path / "yx.npy", "--target", "0"],
    }
    results = {}
    for name, flags in runs.items():
        code, out, err = train(capsys, *flags, *FLAGS, "--out", tmp_path / name)
        assert code == 0, err
        results[name] = json.loads((tmp_path / name / "metrics.json").read_text())
        results[name]["printed"] = out.splitlines()[0]  # the test accuracy line
    expected = results["npz"]
    assert len(expected["train_loss"]) == 3 and expected["test_accuracy"] > 0.5
    for name, got in results.items():
        for key in ("train_loss", "val_loss", "val_accuracy", "test_loss", "test_accuracy"):
            assert got[key] == expected[key], (name, key)
        assert got["examples"] == expected["examples"]
        assert sum(got["examples"].values()) == 700
        assert got["data_sha256"] == expected["data_sha256"]
        assert got["printed"] == expected["printed"]


def test_regression_from_a_target_file_matches_the_npz(capsys, tmp_path):
    x, _ = blobs(300)
    y = np.column_stack([x[:, 0] * 0.1, np.sin(x[:, 1])])  # (n, 2) targets
    np.savez(tmp_path / "d.npz", x=x.astype(np.float32), y=y)
    np.save(tmp_path / "x.npy", x.astype(np.float32))  # float32 on disk, float64 in the .npz
    np.save(tmp_path / "y.npy", y)
    flags = [*FLAGS, "--task", "regression", "--loss", "mse"]
    code, _, err = train(capsys, "--data", tmp_path / "d.npz", *flags, "--out", tmp_path / "a")
    assert code == 0, err
    code, _, err = train(
        capsys, "--data", tmp_path / "x.npy", "--target", tmp_path / "y.npy", *flags,
        "--out", tmp_path / "b",
    )  # fmt: skip
    assert code == 0, err
    a, b = (json.loads((tmp_path / r / "metrics.json").read_text()) for r in "ab")
    for key in ("train_loss", "val_loss", "test_loss", "data_sha256"):
        assert a[key] == b[key], key


def test_a_resumed_npy_run_is_the_straight_run(capsys, tmp_path):
    x, y = blobs()
    np.save(tmp_path / "xy.npy", np.column_stack([x, y]))
    common = ["--data", tmp_path / "xy.npy", "--target", "-1", *TINY, "--seed", "5"]
    assert train(capsys, *common, "--epochs", "4", "--out", tmp_path / "straight")[0] == 0
    assert train(capsys, *common, "--epochs", "2", "--out", tmp_path / "split")[0] == 0
    code, _, err = train(capsys, "--resume", tmp_path / "split", "--epochs", "4", "--quiet")
    assert code == 0, err
    straight, resumed = (
        json.loads((tmp_path / r / "metrics.json").read_text()) for r in ("straight", "split")
    )
    for key in ("train_loss", "val_loss", "val_accuracy", "test_accuracy"):
        assert resumed[key] == straight[key], key
    assert "data_changed_at_epoch" not in resumed
    # the data changed under the checkpoint: the run says so (the fingerprint covers the file)
    np.save(tmp_path / "xy.npy", np.column_stack([x + 1, y]))
    code, out, _ = train(capsys, "--resume", tmp_path / "split", "--epochs", "5", "--quiet")
    assert code == 0 and "differs from the data of the checkpoint" in out


def _bad_files(tmp: Path) -> None:
    x, y = blobs(50)
    np.save(tmp / "x.npy", x)
    np.save(tmp / "y.npy", y)
    np.save(tmp / "flat.npy", x[:, 0])
    np.save(tmp / "cube.npy", x.reshape(50, 2, 3))
    np.save(tmp / "y49.npy", y[:49])
    with_nan = x.copy()
    with_nan[37, 4] = np.nan
    np.save(tmp / "nan.npy", with_nan)
    np.save(tmp / "objects.npy", x.astype(object), allow_pickle=True)
    np.save(tmp / "complex.npy", x + 1j)
    (tmp / "text.npy").write_text("a,b\n1,2\n")


BAD_NPY = [
    ("1-d", ["--data", "{tmp}/flat.npy", "--target", "{tmp}/y.npy"], r"x has shape \(50,\); a \.npy for --data must be 2-D \(examples, features\)"),
    ("3-d", ["--data", "{tmp}/cube.npy", "--target", "{tmp}/y.npy"], r"x has shape \(50, 2, 3\); a \.npy for --data must be 2-D"),
    ("target-length", ["--data", "{tmp}/x.npy", "--target", "{tmp}/y49.npy"], r"y49.npy: the targets have shape \(49,\) but x.npy has 50 examples; --target needs \(50,\) or \(50, outputs\)"),
    ("column-out-of-range", ["--data", "{tmp}/x.npy", "--target", "6"], r"--target 6 is not a column of x, which has 6 columns; pass 0\.\.5 \(or -6\.\.-1"),
    ("column-below-range", ["--data", "{tmp}/x.npy", "--target", "-7"], r"--target -7 is not a column of x, which has 6 columns"),
    ("nan", ["--data", "{tmp}/nan.npy", "--target", "{tmp}/y.npy"], r"nan.npy: x holds NaN or Inf at row 37, column 4 \(counting from 0\)"),
    ("object-dtype", ["--data", "{tmp}/objects.npy", "--target", "{tmp}/y.npy"], r"objects.npy: the array has dtype object; it must hold real numbers"),
    ("complex-dtype", ["--data", "{tmp}/complex.npy", "--target", "{tmp}/y.npy"], r"complex.npy: the array has dtype complex128; it must hold real numbers .*np.real"),
    ("not-a-npy", ["--data", "{tmp}/text.npy", "--target", "{tmp}/y.npy"], r"text.npy: not a readable \.npy file \(.*magic string"),
    ("missing-target", ["--data", "{tmp}/x.npy"], r"x.npy: \.npy data needs --target: .*--target y\.npy.*--target COLUMN_INDEX.*got --target 'target'"),
    ("target-name", ["--data", "{tmp}/x.npy", "--target", "label"], r"\.npy data needs --target: .*got --target 'label'"),
    ("missing-target-file", ["--data", "{tmp}/x.npy", "--target", "{tmp}/nope.npy"], r"nope.npy: no such file; check the path given to --target"),
    ("target-dtype", ["--data", "{tmp}/x.npy", "--target", "{tmp}/objects.npy"], r"objects.npy: the array has dtype object"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "flags", "match"), BAD_NPY, ids=[c[0] for c in BAD_NPY])
def test_bad_npy_input_gets_one_line_exit_2_and_writes_nothing(capsys, tmp_path, case, flags, match):  # fmt: skip
    _bad_files(tmp_path)
    before = snapshot(tmp_path)
    flags = [str(f).replace("{tmp}", str(tmp_path)) for f in flags]
    code, out, err = train(capsys, *flags, *TINY, "--out", tmp_path / "run")
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("jaxbp train: error: ")
    assert __import__("re").search(match, lines[0]), lines[0]
    assert not (tmp_path / "run").exists()
    assert snapshot(tmp_path) == before


# The one pass over the file and the statistics of the training rows


@pytest.mark.parametrize("column", [None, 2, -1], ids=["target-file", "column-2", "last-column"])
def test_load_npy_fingerprint_is_that_of_the_arrays_loaded_whole(tmp_path, monkeypatch, column):
    monkeypatch.setattr(data_npy, "BLOCK_ROWS", 7)  # several blocks, the last one short
    x, y = blobs(60)
    x = x.astype(np.float32)
    if column is None:
        np.save(tmp_path / "x.npy", x)
        np.save(tmp_path / "y.npy", y)
        loaded = data_npy.load_npy(tmp_path / "x.npy", str(tmp_path / "y.npy"))
        features, targets = x, y
    else:
        stacked = np.insert(x, column % 7, y, axis=1)
        np.save(tmp_path / "x.npy", stacked)
        loaded = data_npy.load_npy(tmp_path / "x.npy", str(column))
        features, targets = x, y.astype(np.float32)  # the column went through float32
    expected = data.fingerprint(features.astype(np.float64), targets.astype(np.float64))
    assert loaded.fingerprint == expected
    np.savez(tmp_path / "d.npz", x=features, y=targets)
    whole = data.load_file(tmp_path / "d.npz")
    assert data.fingerprint(whole.x, whole.y) == expected  # the .npz path gives the same hash
    np.testing.assert_array_equal(loaded.y, targets)
    assert loaded.features == 6 and isinstance(loaded.x, np.memmap)


def _loaded(tmp_path: Path, x: np.ndarray) -> data_npy.NpyData:
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.zeros(len(x)))
    return data_npy.load_npy(tmp_path / "x.npy", str(tmp_path / "y.npy"))


def test_train_stats_of_one_block_are_the_standardizers_exactly(tmp_path):
    x, _ = blobs(500)
    x[:, 3] = 2.5  # a constant feature: scale 1
    index = np.random.default_rng(1).permutation(500)[:300]
    mean, scale = data_npy.train_stats(_loaded(tmp_path, x), index)
    expected_mean, expected_scale = data.standardizer(x[index])
    np.testing.assert_array_equal(mean, expected_mean)
    np.testing.assert_array_equal(scale, expected_scale)
    assert scale[3] == 1.0


@pytest.mark.parametrize("block_rows", [1, 7, 64, 299])
def test_train_stats_merged_over_blocks_match_the_standardizer(tmp_path, block_rows):
    x, _ = blobs(500)
    x = x * 1e3 + 1e6  # a large offset: a naive sum of squares would lose the spread
    index = np.random.default_rng(2).permutation(500)[:300]
    mean, scale = data_npy.train_stats(_loaded(tmp_path, x), index, block_rows)
    expected_mean, expected_scale = data.standardizer(x[index])
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-12)
    np.testing.assert_allclose(scale, expected_scale, rtol=1e-12)


def test_train_stats_over_many_blocks_read_the_file_in_order_one_call_a_block(
    tmp_path, monkeypatch
):
    x, _ = blobs(500)
    loaded = _loaded(tmp_path, x)
    real, calls = data_npy.row_reader, []

    def counting(array):
        read = real(array)
        return lambda rows: calls.append(np.asarray(rows).copy()) or read(rows)

    monkeypatch.setattr(data_npy, "row_reader", counting)
    index = np.random.default_rng(2).permutation(500)[:300]
    data_npy.train_stats(loaded, index, 64)
    assert len(calls) == 8  # ceil(500 / 64) blocks of the file, each one contiguous run
    assert all(np.array_equal(rows, np.arange(rows[0], rows[0] + len(rows))) for rows in calls)


def test_train_stats_refuse_a_feature_whose_spread_overflows(tmp_path):
    x, _ = blobs(40)
    x[:, 2] = np.where(np.arange(40) % 2, 1e300, -1e300)
    with pytest.raises(data.DataError, match=r"feature column 2 \(from 0\) holds values up to 1e\+300"):  # fmt: skip
        data_npy.train_stats(_loaded(tmp_path, x), np.arange(40), 16)
    with pytest.raises(data.DataError, match=r"feature column 2 \(from 0\) holds values up to 1e\+300"):  # fmt: skip
        data.standardizer(x)  # the in-memory path says the same


def test_split_indices_partition_the_rows_as_split_does():
    x, y = blobs(103)
    settings = dict(seed=3, val_fraction=0.2, test_fraction=0.1, stratify=True)
    indices = data.split_indices(y, **settings)
    assert all(index.dtype == np.int64 for index in indices)
    np.testing.assert_array_equal(np.sort(np.concatenate(indices)), np.arange(103))
    for label in range(3):  # stratified: round(fraction * count) of each class
        count = int(np.sum(y == label))
        assert np.sum(y[indices[2]] == label) == round(0.1 * count)
        assert np.sum(y[indices[1]] == label) == round(0.2 * count)
    parts = data.split(x, y, **settings)
    for part, index in zip(parts, indices, strict=True):
        np.testing.assert_array_equal(part.x, x[index])
        np.testing.assert_array_equal(part.y, y[index])


# metrics.evaluate in blocks


def _numpy_cross_entropy(params, x, labels):
    hidden = np.tanh(x @ params[0]["w"] + params[0]["b"])
    logits = hidden @ params[1]["w"] + params[1]["b"]
    logits = logits - logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(x)), labels].mean(), np.mean(logits.argmax(axis=1) == labels)


def test_evaluate_in_blocks_matches_a_numpy_pass_and_one_block_is_the_single_call(key):
    spec = jaxbp.MLP(sizes=(6, 5, 3), activations=("tanh", "linear"))
    params = spec.init(key)
    x, labels = blobs(1000)
    x = (x - x.mean(0)) / x.std(0)
    y = np.eye(3)[labels]
    numpy_params = jax.tree.map(np.asarray, params)
    expected_loss, expected_accuracy = _numpy_cross_entropy(numpy_params, x, labels)
    for block_rows in (64, 999):  # 16 blocks, the last short; two blocks, the last of 1 row
        views = jaxbp.Rows(x), jaxbp.Rows(y)
        for pair in ((x, y), views):
            loss, accuracy = metrics.evaluate(
                spec,
                "softmax_cross_entropy",
                params,
                *pair,
                classification=True,
                block_rows=block_rows,
            )
            np.testing.assert_allclose(loss, expected_loss, rtol=1e-12)
            assert accuracy == expected_accuracy
    value, accuracy = metrics._evaluate(spec, "softmax_cross_entropy", params, x, y)
    one_block = metrics.evaluate(spec, "softmax_cross_entropy", params, x, y, classification=True)
    assert one_block == (float(value), float(accuracy))  # what evaluate gave before blocks


# Bounded memory: a 200 MiB file is never copied whole

_PEAK = """
import json, sys
import jax, numpy as np
from jaxbp import cli
jax.jit(lambda a: a @ a.T + 1)(np.ones((4, 4), np.float32)).block_until_ready()  # the backend

def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024

before = peak()
code = cli.main(["train", "--data", sys.argv[1], "--target", sys.argv[2], "--task", "regression",
                 "--loss", "mse", "--epochs", "1", "--hidden", "8", "--batch-size", "1024",
                 "--val-fraction", "0.2", "--test-fraction", "0.2",
                 "--quiet", "--out", sys.argv[3]])
print(json.dumps({"code": code, "growth": peak() - before}))
"""


def _peak_growth(directory: Path, out: Path) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(
        [sys.executable, "-c", _PEAK, str(directory / "x.npy"), str(directory / "y.npy"), str(out)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["code"] == 0
    return int(report["growth"])


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_training_from_a_300_mib_npy_never_holds_it_whole(tmp_path):
    """Peak memory grows with the file by far less than the file: 200 more MiB of features add
    what the targets, the split's indices and the epoch's order take (about 50 bytes a row, 40
    MiB), not the 200 (float32) or 400 MiB (standardised float64) of a copy. What does not grow
    with the file (compiling, the chunks in flight, an evaluation block) is the same in both
    runs: the 100 MiB file is large enough to fill the prefetch pipeline, and its validation and
    test sets to fill an evaluation block."""
    from benchmarks.make_synthetic import write_dataset

    features = 64  # 256-byte float32 rows
    growth, sizes = {}, {}
    for mib in (100, 300):
        write_dataset(tmp_path / str(mib), mib * 2**20 // (4 * features), features)
        sizes[mib] = (tmp_path / str(mib) / "x.npy").stat().st_size
        growth[mib] = _peak_growth(tmp_path / str(mib), tmp_path / f"run-{mib}")
    print(f"peak RSS growth: {growth[100] / 2**20:.0f} MiB (100 MiB file), {growth[300] / 2**20:.0f} MiB (300 MiB file)")  # fmt: skip
    # 200 MiB more file: a copy would add 200 MiB or more; what grows with the file is about 50
    # bytes a row (40 MiB), and the peaks vary by up to about 60 MiB from run to run (threads'
    # allocator arenas, a loaded machine), inside the bound of 150 MiB
    assert growth[300] - growth[100] < (sizes[300] - sizes[100]) * 3 // 4
