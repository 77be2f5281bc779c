"""``jaxbp train`` end to end, in-process through ``jaxbp.cli.main`` (a subprocess only for Ctrl-C).

Runs use tiny settings (8 hidden units, batches of 64, a few epochs) so each takes about a second
after compiling. Oracles: a straight run for resumption, a second run for determinism, a NumPy
forward pass for the reported accuracy, a step-by-step Python loop for the divergence guard, and
the bytes of every saved file for "nothing saved is touched".
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import jaxbp
from jaxbp import cli, manual
from jaxbp.data import files as data
from jaxbp.training import checkpoint
from tests.helpers import TINY, bitwise_equal, read_metrics, train

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[2]


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: b"<dir>" if p.is_dir() else p.read_bytes() for p in sorted(directory.iterdir())}


def final_params(directory: Path):
    return checkpoint.load(checkpoint.resolve(directory)).params


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory) -> Path:
    """A finished 2-epoch run on the digits, shared by the tests that must leave it intact."""
    out = tmp_path_factory.mktemp("saved") / "run"
    assert cli.main(["train", *TINY, "--schedule", "constant", "--epochs", "2", "--out", str(out)]) == 0  # fmt: skip
    return out


def test_default_outputs_and_the_reported_accuracy(capsys, tmp_path):
    out = tmp_path / "run"
    code, stdout, _ = train(capsys, *TINY, "--epochs", "3", "--keep", "2", "--out", out)
    assert code == 0
    metrics = read_metrics(out)
    assert len(metrics["train_loss"]) == len(metrics["val_accuracy"]) == 3
    assert metrics["epochs_done"] == 3 and metrics["examples"] == {"train": 1259, "val": 179, "test": 359}  # fmt: skip
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in checkpoint.list_checkpoints(out)] == ["checkpoint-00000002.jaxbp", "checkpoint-00000003.jaxbp"]  # fmt: skip
    # Oracle: the test split rebuilt from the seed, the final params through NumPy float64.
    digits = data.load_digits()
    _, _, test = data.split(digits.x, digits.y, seed=0, val_fraction=0.1, test_fraction=0.2, stratify=True)  # fmt: skip
    train_part, _, _ = data.split(digits.x, digits.y, seed=0, val_fraction=0.1, test_fraction=0.2, stratify=True)  # fmt: skip
    mean, scale = data.standardizer(train_part.x)
    spec = jaxbp.MLP((64, 8, 10), ("relu", "linear"))
    x = ((test.x - mean) / scale).astype(np.float32)
    logits = manual.forward(spec, final_params(out), x).activations[-1]
    expected = np.mean(np.argmax(logits, axis=1) == test.y)
    assert metrics["test_accuracy"] == pytest.approx(expected, abs=1.5 / len(test.y))
    assert f"test accuracy {metrics['test_accuracy']:.4f} on 359 examples" in stdout


def test_resume_continues_bit_exactly(capsys, tmp_path):
    straight, split = tmp_path / "A", tmp_path / "B"
    assert train(capsys, *TINY, "--epochs", "4", "--out", straight)[0] == 0
    assert train(capsys, *TINY, "--epochs", "2", "--out", split)[0] == 0
    assert len(read_metrics(split)["train_loss"]) == 2
    assert train(capsys, "--resume", split, "--epochs", "4", "--quiet")[0] == 0
    assert read_metrics(split)["train_loss"] == read_metrics(straight)["train_loss"]
    assert read_metrics(split)["val_loss"] == read_metrics(straight)["val_loss"]
    assert bitwise_equal(final_params(split), final_params(straight))


def test_same_seed_same_bits_other_seed_other_bits(capsys, tmp_path):
    runs = {}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        out = tmp_path / name
        assert train(capsys, *TINY, "--schedule", "constant", "--epochs", "2", "--seed", seed, "--out", out)[0] == 0  # fmt: skip
        runs[name] = (final_params(out), read_metrics(out))
    keys = ("train_loss", "val_loss", "val_accuracy", "test_loss", "test_accuracy")
    assert bitwise_equal(runs["a"][0], runs["b"][0])
    assert all(runs["a"][1][key] == runs["b"][1][key] for key in keys)
    assert not bitwise_equal(runs["a"][0], runs["c"][0])
    assert runs["a"][1]["train_loss"] != runs["c"][1]["train_loss"]


def _csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


FRESH_BAD_INPUTS = [
    ("missing-file", ["--data", "{tmp}/absent.csv"], r"absent.csv: no such file"),
    ("unreadable-npz", ["--data", "{tmp}/broken.npz"], r"broken.npz: not a readable \.npz file"),
    ("text-cell", ["--data", "{tmp}/text.csv"], r"line 3, column 'a': 'x' is not a number"),
    ("no-target", ["--data", "{tmp}/good.csv", "--target", "label"], r"no target column 'label'"),
    ("nan-feature", ["--data", "{tmp}/nan.csv"], r"features \(x\) contain 1 NaN or Inf"),
    ("inf-target", ["--data", "{tmp}/inf.csv", "--task", "regression"], r"targets \(y\) contain 1 NaN or Inf"),
    ("non-integer-label", ["--data", "{tmp}/half.csv"], r"labels must be integers 0, 1, 2, \.\.\., found 0.5"),
    ("label-out-of-range", ["--data", "{tmp}/good.csv", "--classes", "2"], r"label 2 is out of range for a model with 2 classes"),
    ("empty-data", ["--data", "{tmp}/empty.csv"], r"holds no examples"),
    ("batch-size-0", ["--batch-size", "0"], r"--batch-size must be a positive integer \(or 'full' for full-batch\), got '0'"),
    ("batch-too-big", ["--batch-size", "5000"], r"--batch-size 5000 is larger than the 1259 training examples"),
    ("lr-zero", ["--lr", "0"], r"--lr must be a finite number > 0, got '0'"),
    ("lr-negative", ["--lr", "-0.1"], r"--lr must be a finite number > 0, got '-0.1'"),
    ("lr-nan", ["--lr", "nan"], r"--lr must be a finite number > 0, got 'nan'"),
    ("lr-text", ["--lr", "fast"], r"--lr must be a finite number > 0, got 'fast'"),
    ("activation", ["--activation", "swish"], r"unknown --activation 'swish'; valid choices are gelu, linear, relu"),
    ("loss", ["--loss", "hinge"], r"unknown --loss 'hinge'; valid choices are"),
    ("optimizer", ["--optimizer", "lbfgs"], r"unknown --optimizer 'lbfgs'; valid choices are adam, momentum, sgd"),
    ("loss-task", ["--loss", "mse"], r"--loss mse does not fit classification"),
    ("unwritable-out", ["--out", "{tmp}/good.csv/run"], r"cannot write to output folder .*good.csv/run \(Not a directory\)"),
    ("fractions", ["--val-fraction", "0.5", "--test-fraction", "0.5"], r"leave no training data"),
    ("regression-loss", ["--task", "regression", "--loss", "softmax_cross_entropy"], r"needs class labels; for regression use mse"),
    ("data-is-a-folder", ["--data", "{tmp}/folder.csv"], r"folder.csv: is a directory; --data needs a .csv, .npz or .npy file"),
    ("bad-keep", ["--keep", "0"], r"--keep must be an integer from 1 to 1,000,000, got '0'"),
    ("patience-without-validation", ["--patience", "3", "--val-fraction", "0"], r"--patience watches the validation loss, but --val-fraction 0 leaves no validation set"),
    ("patience-negative", ["--patience", "-1"], r"--patience must be an integer from 0 to 10,000,000, got '-1'"),
    ("chunk-steps-huge", ["--chunk-steps", str(2**40)], r"--chunk-steps must be an integer from 0 to 1,048,576"),
    ("checkpoint-minutes-text", ["--checkpoint-minutes", "soon"], r"--checkpoint-minutes must be an integer from 0 to 1,000,000, got 'soon'"),
    ("lr-overflows-float32", ["--lr", "1e39"], r"--lr 1e\+39 is inf in float32; pass a learning rate from 1.18e-38 to 3.4e\+38"),
    ("lr-underflows-float32", ["--lr", "1e-50"], r"--lr 1e-50 is 0 or subnormal in float32"),
    ("seed-10^23", ["--seed", "100000000000000000000000"], r"--seed must be an integer from 0 to 4,294,967,295, got '100000000000000000000000'"),
    ("seed-2^32", ["--seed", str(2**32)], r"--seed must be an integer from 0 to 4,294,967,295"),
    ("seed-negative", ["--seed", "-1"], r"--seed must be an integer from 0 to 4,294,967,295"),
    ("hidden-1e8", ["--hidden", "100000000"], r"--hidden 100000000 gives a 64-100000000-10 model with 7,500,000,010 parameters; the limit is 20,000,000"),
    ("hidden-wide-pair", ["--hidden", "5000,5000"], r"25,\d{3},\d{3} parameters; the limit is 20,000,000"),
    ("too-many-layers", ["--hidden", ",".join(["2"] * 101)], r"--hidden has 101 layers; the limit is 100"),
    ("epochs-10^12", ["--epochs", str(10**12)], r"--epochs must be an integer from 1 to 10,000,000"),
    ("epochs-times-steps", ["--epochs", "9000000", "--batch-size", "1"], r"is 11,331,000,000 steps; the limit is 2,147,483,647"),
    ("label-1e9", ["--data", "{tmp}/label1e9.csv"], r"label 1000000000 is out of range for the limit of 10,000 classes"),
    ("label-2^62", ["--data", "{tmp}/label2e62.npz"], r"label 4611686018427387904 is out of range for the limit of 10,000 classes"),
    ("feature-1e300", ["--data", "{tmp}/huge.csv"], r"feature column 'b' holds values up to 1e\+300; its standard deviation overflows"),
    ("target-1e300", ["--data", "{tmp}/huge.csv", "--target", "b", "--task", "regression"], r"a target of size 1e\+300 does not fit --dtype float32"),
    ("complex-npz", ["--data", "{tmp}/complex.npz"], r"array x has dtype complex128; it must hold real numbers"),
    ("duplicated-target", ["--data", "{tmp}/twice.csv"], r"2 columns are named 'target' \(columns 2, 3\)"),
    ("momentum-with-sgd", ["--momentum", "0.5"], r"--momentum applies only with --optimizer momentum, not --optimizer sgd"),
    ("decay-with-cosine", ["--schedule", "cosine", "--decay", "0.5"], r"--decay applies only with --schedule exponential"),
    ("foreign-folder", ["--out", "{tmp}/foreign"], r"foreign is not empty \(curves.png, metrics.json\) and is not a jaxbp run folder"),
    ("out-name-too-long", ["--out", "{tmp}/" + "x" * 300 + "/run"], r"cannot use output folder .*x/run \(File name too long\)"),
    ("out-is-a-file", ["--out", "{tmp}/good.csv"], r"cannot write to output folder .*good.csv \(not a folder\)"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "flags", "match"), FRESH_BAD_INPUTS, ids=[c[0] for c in FRESH_BAD_INPUTS])  # fmt: skip
def test_bad_input_gets_one_line_exit_2_and_writes_nothing(capsys, tmp_path, saved_run, case, flags, match):  # fmt: skip
    _csv(tmp_path / "good.csv", "a,b,target\n1,2,0\n3,4,1\n5,6,2\n")
    _csv(tmp_path / "text.csv", "a,target\n1,0\nx,1\n")
    _csv(tmp_path / "nan.csv", "a,target\n1,0\nnan,1\n")
    _csv(tmp_path / "inf.csv", "a,target\n1,0\n2,-inf\n")
    _csv(tmp_path / "half.csv", "a,target\n1,0\n2,0.5\n")
    _csv(tmp_path / "empty.csv", "a,target\n")
    (tmp_path / "broken.npz").write_bytes(b"not an archive")
    (tmp_path / "folder.csv").mkdir()
    rows = "".join(f"{i},{i % 3}\n" for i in range(30))
    _csv(tmp_path / "label1e9.csv", "a,target\n" + rows + "7,1000000000\n")
    np.savez(tmp_path / "label2e62.npz", x=np.ones((4, 2)), y=np.array([0, 1, 2, 2**62]))
    _csv(
        tmp_path / "huge.csv",
        "a,b,target\n" + "".join(f"{i},{(-1) ** i}e300,{i % 2}\n" for i in range(30)),
    )
    np.savez(tmp_path / "complex.npz", x=np.ones((30, 2)) + 0.5j, y=np.arange(30) % 2)
    _csv(
        tmp_path / "twice.csv",
        "a,target,target\n" + "".join(f"{i},{i % 2},{i % 2}\n" for i in range(30)),
    )
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "metrics.json").write_text('{"mine": true}')
    (tmp_path / "foreign" / "curves.png").write_bytes(b"my plot")
    before, files_before = snapshot(saved_run), snapshot(tmp_path)
    argv = [flag.format(tmp=tmp_path) for flag in flags]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "new")]
    code, _, stderr = train(capsys, *TINY, *argv)
    assert code == 2
    assert stderr.count("\n") == 1 and stderr.startswith("jaxbp train: error: ")
    assert "Traceback" not in stderr
    assert __import__("re").search(match, stderr), stderr
    assert snapshot(saved_run) == before and snapshot(tmp_path) == files_before  # no new folder


RESUME_BAD_INPUTS = [
    ("another-architecture", ["--hidden", "16"], r"--hidden 16 differs from the checkpoint's 8 "),
    ("another-dtype", ["--dtype", "float64"], r"--dtype float64 differs from the checkpoint's float32"),
    ("another-lr", ["--lr", "0.5"], r"--lr 0.5 differs from the checkpoint's 0.1"),
    ("wrong-feature-count", ["--data", "{tmp}/good.csv"], r"good.csv has 2 features but the resumed model takes 64"),
    ("label-beyond-model", ["--data", "{tmp}/wide.npz"], r"label 12 is out of range for a model with 10 classes"),
    ("nothing-left", ["--epochs", "2"], r"has already trained 2 epochs; pass --epochs greater than 2"),
    ("unknown-optimizer", ["--optimizer", "rmsprop"], r"unknown --optimizer 'rmsprop'"),
    ("no-run", ["--resume", "{tmp}/absent"], r"absent: no such run directory or checkpoint file"),
    ("out-conflict", ["--out", "{tmp}/elsewhere"], r"--out .*elsewhere conflicts with --resume"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "flags", "match"), RESUME_BAD_INPUTS, ids=[c[0] for c in RESUME_BAD_INPUTS])  # fmt: skip
def test_bad_resume_leaves_the_saved_run_intact(capsys, tmp_path, saved_run, case, flags, match):
    _csv(tmp_path / "good.csv", "a,b,target\n1,2,0\n3,4,1\n5,6,2\n")
    np.savez(tmp_path / "wide.npz", x=np.ones((30, 64)), y=np.arange(30) % 13)
    before = snapshot(saved_run)
    argv = [flag.format(tmp=tmp_path) for flag in flags]
    if "--resume" not in argv:
        argv = ["--resume", str(saved_run), "--epochs", "3", *argv]
    code, _, stderr = train(capsys, "--quiet", *argv)
    assert code == 2, stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert __import__("re").search(match, stderr), stderr
    assert snapshot(saved_run) == before


def test_a_damaged_checkpoint_is_refused_and_kept(capsys, tmp_path, saved_run):
    copy = tmp_path / "run"
    copy.mkdir()
    for name, content in snapshot(saved_run).items():
        (copy / name).write_bytes(content)
    newest = checkpoint.resolve(copy)
    damaged = bytearray(newest.read_bytes())
    damaged[-50] ^= 0xFF
    newest.write_bytes(bytes(damaged))
    before = snapshot(copy)
    code, _, stderr = train(capsys, "--resume", copy, "--epochs", "3")
    assert code == 2
    assert "damaged checkpoint (SHA-256 checksum mismatch)" in stderr and newest.name in stderr
    assert snapshot(copy) == before


def test_a_fresh_run_refuses_an_output_folder_that_holds_a_run(capsys, saved_run):
    before = snapshot(saved_run)
    code, _, stderr = train(capsys, *TINY, "--out", saved_run)
    assert code == 2 and f"{saved_run} already holds a run; continue it with --resume" in stderr
    assert snapshot(saved_run) == before


def _divergent(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    np.savez(tmp_path / "steep.npz", x=x, y=1e3 * x.sum(axis=1))
    return tmp_path / "steep.npz"


DIVERGENT = ["--task", "regression", "--hidden", "4", "--batch-size", "full", "--lr", "1e20",
             "--schedule", "constant", "--epochs", "60", "--keep", "2", "--quiet"]  # fmt: skip


def test_divergence_stops_at_the_first_bad_step_and_keeps_the_last_good_state(capsys, tmp_path):
    path, out = _divergent(tmp_path), tmp_path / "run"
    code, _, stderr = train(capsys, *DIVERGENT, "--data", path, "--out", out)
    # Oracle: the same run step by step in Python, checking every loss and gradient on the host.
    from jaxbp import cli
    from jaxbp.cli.prepare import prepare

    argv = ["train", *DIVERGENT, "--data", str(path), "--out", str(tmp_path / "o")]
    run = prepare(cli.build_parser().parse_args(argv))
    params, bad_step, bad_layers = run.state.params, None, []
    for step in range(60):
        loss, grads = jaxbp.loss_and_grad(run.model.spec, "mse", params, *run.data.train)
        # every gradient leaf that is not finite, by tree path, in jax.tree.leaves order
        bad = [f"params[{i}]['{name}']" for i, layer in enumerate(grads) for name in sorted(layer)
               if not np.isfinite(layer[name]).all()]  # fmt: skip
        if bad or not np.isfinite(loss):
            bad_step, bad_layers = step, bad
            break
        params = jaxbp.sgd(params, grads, 1e20)
    assert bad_step is not None, "the oracle run did not diverge; make the data steeper"
    assert code == 3
    layers = ", ".join(bad_layers)
    assert f"diverged at step {bad_step} (epoch {bad_step + 1}): non-finite loss or gradient in {layers};" in stderr  # fmt: skip
    with np.load(out / "last_finite_params.npz") as kept:
        for i, layer in enumerate(params):
            for name, leaf in layer.items():
                np.testing.assert_allclose(kept[f"params[{i}]['{name}']"], leaf, rtol=1e-5)
    newest = checkpoint.load(checkpoint.resolve(out))  # full batch: epoch == step
    assert newest.epoch == bad_step and read_metrics(out)["diverged"]["step"] == bad_step
    for saved_leaf, leaf in zip(
        jax.tree.leaves(newest.params), jax.tree.leaves(params), strict=True
    ):
        np.testing.assert_allclose(saved_leaf, leaf, rtol=1e-5)
        assert np.isfinite(saved_leaf).all()


def test_debug_nans_flag_raises_inside_and_is_switched_off_after(capsys, tmp_path):
    path = _divergent(tmp_path)
    code, _, stderr = train(capsys, *DIVERGENT, "--data", path, "--out", tmp_path / "run", "--debug-nans")  # fmt: skip
    assert code == 3 and "stopped by --debug-nans: " in stderr, stderr
    assert jax.config.jax_debug_nans is False


def test_regression_from_csv_fits_an_exact_linear_relation(capsys, tmp_path):
    # y = 2 a - 3 b + 1 exactly, so a linear model can reach zero error (first principles).
    rng = np.random.default_rng(1)
    ab = rng.normal(size=(80, 2))
    rows = "\n".join(f"{a!r},{b!r},{2 * a - 3 * b + 1!r}" for a, b in ab.tolist())
    path = _csv(tmp_path / "line.csv", "a,b,target\n" + rows + "\n")
    code, stdout, _ = train(capsys, "--data", path, "--task", "regression", "--hidden", "none",
                            "--batch-size", "full", "--lr", "0.3", "--schedule", "constant",
                            "--epochs", "300", "--checkpoint-every", "300", "--quiet",
                            "--out", tmp_path / "run")  # fmt: skip
    assert code == 0
    metrics = read_metrics(tmp_path / "run")
    assert metrics["test_accuracy"] is None and metrics["test_loss"] < 1e-8
    assert "test loss (mse)" in stdout


@pytest.mark.slow  # a fresh Python process: ~15 s, most of it importing JAX and compiling
def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(capsys, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, "-m", "jaxbp", "train", *TINY, "--schedule", "constant",
               "--epochs", "100000", "--checkpoint-every", "1000", "--out", str(out)]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoint-00000000.jaxbp").exists():  # written just before epoch 1
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.1)
        time.sleep(1.0)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "stopped by Ctrl-C; saved" in stderr
    saved = checkpoint.load(checkpoint.resolve(out))
    assert saved.epoch >= 1 and read_metrics(out)["epochs_done"] == saved.epoch
    assert read_metrics(out)["interrupted"] is True
    code, _, _ = train(capsys, "--resume", out, "--epochs", str(saved.epoch + 1))
    assert code == 0 and checkpoint.load(checkpoint.resolve(out)).epoch == saved.epoch + 1


def test_the_python_snippet_in_the_docs_runs(capsys, saved_run):
    text = (ROOT / "docs" / "train.md").read_text()
    snippet = text.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(snippet.replace('"runs/digits"', repr(str(saved_run))), namespace)
    saved = namespace["saved"]
    expected = manual.forward(saved.spec, saved.params, namespace["x"].astype(np.float32)).activations[-1]  # fmt: skip
    np.testing.assert_allclose(namespace["logits"], expected, rtol=1e-5, atol=1e-5)
    assert capsys.readouterr().out.startswith("2 [")


def test_binary_cross_entropy_needs_targets_in_the_unit_interval(capsys, tmp_path):
    path = _csv(tmp_path / "r.csv", "a,target\n1,0.5\n2,1.5\n3,0\n4,1\n5,0.2\n")
    code, _, stderr = train(capsys, "--data", path, "--task", "regression", "--loss",
                            "binary_cross_entropy", "--out", tmp_path / "run")  # fmt: skip
    assert code == 2 and "needs targets in [0, 1], found 0..1.5; use --loss mse" in stderr
    assert not (tmp_path / "run").exists()
