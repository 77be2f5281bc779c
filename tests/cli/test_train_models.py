"""``jaxbp train --model`` (presets and model files) and ``--data mnist1d``, end to end in-process.

Runs are short: a few epochs on a small ``.npz`` of 40 features (the presets' input), or one
epoch of MNIST-1D. Oracles: a straight run for resumption (bit-exact), a NumPy forward pass for
the reported accuracy, MNIST-1D's own published sizes (4,000 training and 1,000 test examples),
the presets' declared recipes, and the bytes of the output folder for "nothing written".
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from jaxbp.cli import config
from jaxbp.data import datasets
from jaxbp.data import files as data
from jaxbp.layers import Conv1D, Dense, Flatten, Reshape, Sequential, model_file, presets
from jaxbp.training import checkpoint
from tests.helpers import bitwise_equal, read_metrics, train

pytest.importorskip("matplotlib")

SMALL = ["--batch-size", "50", "--quiet"]


def saved(directory: Path) -> checkpoint.Checkpoint:
    return checkpoint.load(checkpoint.resolve(directory))


@pytest.fixture(scope="module")
def forty(tmp_path_factory) -> Path:
    """300 examples of 40 features in 10 classes: the shape MNIST-1D's presets take."""
    path = tmp_path_factory.mktemp("data") / "forty.npz"
    rng = np.random.default_rng(0)
    y = np.arange(300) % 10
    x = rng.normal(size=(300, 40)) + 0.5 * y[:, None] * np.sin(np.arange(40))[None, :]
    np.savez(path, x=x, y=y)
    return path


def small_cnn_file(path: Path) -> Path:
    network = Sequential(
        layers=(Reshape((40, 1)), Conv1D(4, 5, stride=2, activation="relu"), Flatten(), Dense(10)),
        input_shape=(40,),
    )
    model_file.save(path, network)
    return path


def test_a_cnn_run_resumes_bit_exactly(capsys, tmp_path, forty):
    straight, split = tmp_path / "A", tmp_path / "B"
    flags = ["--data", forty, "--model", "cnn", *SMALL]
    assert train(capsys, *flags, "--epochs", "4", "--out", straight)[0] == 0
    assert train(capsys, *flags, "--epochs", "2", "--out", split)[0] == 0
    assert train(capsys, "--resume", split, "--epochs", "4", "--quiet")[0] == 0
    for key in ("train_loss", "val_loss", "test_accuracy"):
        assert read_metrics(split)[key] == read_metrics(straight)[key]
    assert bitwise_equal(saved(split).params, saved(straight).params)
    assert bitwise_equal(saved(split).opt_state, saved(straight).opt_state)
    # the checkpoint holds the conv layers' params by path, and the network itself
    params = saved(split).params
    assert np.shape(params[1]["w"]) == (5, 1, 25) and np.shape(params[5]["w"]) == (125, 10)
    assert saved(split).spec == presets.PRESETS["cnn"].network
    assert saved(split).config["model"] == "cnn" and saved(split).config["hidden"] is None
    # the resumed run keeps its network: another one, or MLP settings, are refused
    before = {p.name: p.read_bytes() for p in split.iterdir()}
    for flags, match in (
        (["--model", "mlp"], "--model mlp differs from the checkpoint's cnn"),
        (["--hidden", "8"], "--hidden sets the MLP built without --model"),
    ):
        code, _, stderr = train(capsys, "--resume", split, "--epochs", "6", *flags)
        assert code == 2 and match in stderr and stderr.count("\n") == 1, stderr
    assert {p.name: p.read_bytes() for p in split.iterdir()} == before


def test_a_preset_trains_with_its_recipe_unless_flags_say_otherwise():
    preset = presets.PRESETS["cnn"]
    cfg = config.parse({"model": "cnn"})
    assert (cfg.optimizer, cfg.lr, cfg.batch_size, cfg.epochs, cfg.schedule) == (
        "adam",
        preset.learning_rate,
        preset.batch_size,
        preset.epochs,
        "constant",
    )
    assert (cfg.hidden, cfg.activation, cfg.decay) == (None, None, None)
    cfg = config.parse({"model": "cnn", "lr": "0.5", "epochs": "3", "optimizer": "sgd"})
    assert (cfg.optimizer, cfg.lr, cfg.epochs, cfg.batch_size) == ("sgd", 0.5, 3, 100)
    assert config.parse({}).hidden == (256, 256)  # without --model: the MLP as before


def test_a_saved_config_is_checked_like_the_flags():
    good = config.parse({"model": "cnn"}).to_json()
    assert config.TrainConfig.from_json(good) == config.parse({"model": "cnn"})
    with pytest.raises(config.ConfigError, match="--hidden sets the MLP built without --model"):
        config.TrainConfig.from_json({**good, "hidden": [8]})
    with pytest.raises(config.ConfigError, match="unknown --model 'cnnn'"):
        config.TrainConfig.from_json({**good, "model": "cnnn"})
    older = config.parse({}).to_json()
    del older["model"]  # a config saved before --model existed: the MLP
    assert config.TrainConfig.from_json(older) == config.parse({})


def test_a_model_file_run_resumes_from_the_checkpoint_without_the_file(capsys, tmp_path, forty):
    model = small_cnn_file(tmp_path / "small.json")
    out = tmp_path / "run"
    code, _, stderr = train(capsys, "--data", forty, "--model", model, *SMALL, "--epochs", "1", "--out", out)  # fmt: skip
    assert code == 0, stderr
    assert saved(out).spec == model_file.load(model)
    assert saved(out).config["model"] == str(model.resolve())
    model.unlink()  # the checkpoint holds the network's description
    code, _, stderr = train(capsys, "--resume", out, "--epochs", "2", "--quiet")
    assert code == 0, stderr
    assert read_metrics(out)["epochs_done"] == 2 and read_metrics(out)["model"] == "small.json"


@pytest.mark.slow  # generates MNIST-1D twice (about 5 s each)
def test_mnist1d_keeps_its_own_test_set_and_reports_its_accuracy(capsys, tmp_path):
    out = tmp_path / "run"
    code, stdout, stderr = train(capsys, "--data", "mnist1d", "--model", "logistic", "--epochs", "1", "--quiet", "--out", out)  # fmt: skip
    assert code == 0, stderr
    metrics = read_metrics(out)
    assert metrics["examples"]["train"] + metrics["examples"]["val"] == 4000
    assert metrics["examples"]["test"] == 1000
    assert metrics["examples"]["val"] == pytest.approx(400, abs=5)
    assert saved(out).config["test_fraction"] is None
    # Oracle: the published test set, standardised with the training part's statistics, through
    # the saved logistic regression in NumPy.
    arrays = datasets.mnist1d()
    train_part, _, _ = data.split(arrays.x_train.astype(np.float64), arrays.y_train, seed=0, val_fraction=0.1, test_fraction=0.0, stratify=True)  # fmt: skip
    mean, scale = data.standardizer(train_part.x)
    (layer,) = saved(out).params
    logits = ((arrays.x_test - mean) / scale).astype(np.float32) @ layer["w"] + layer["b"]
    expected = np.mean(np.argmax(logits, axis=1) == arrays.y_test)
    assert metrics["test_accuracy"] == pytest.approx(expected, abs=1.5 / 1000)
    assert f"test accuracy {metrics['test_accuracy']:.4f} on 1000 examples" in stdout


def _files(tmp: Path) -> None:
    small_cnn_file(tmp / "small.json")
    (tmp / "broken.json").write_text('{"input_shape": [40], "layers": [')
    (tmp / "badlayer.json").write_text('{"input_shape": [40], "layers": [{"type": "Conv9D"}]}')
    (tmp / "badarg.json").write_text('{"input_shape": [40], "layers": [{"type": "Dense", "features": -3}]}')  # fmt: skip
    (tmp / "three.json").write_text('{"input_shape": [40], "layers": [{"type": "Dense", "features": 3}]}')  # fmt: skip
    (tmp / "huge.json").write_text('{"input_shape": [40], "layers": [{"type": "Dense", "features": 100000000}]}')  # fmt: skip
    (tmp / "deep.json").write_text("[" * 100_000 + "]" * 100_000)


BAD_INPUTS = [
    ("unknown-preset", ["--model", "cnnn"], r"unknown --model 'cnnn'; pass a preset \(logistic, mlp, cnn"),
    ("hidden-and-model", ["--model", "cnn", "--hidden", "8"], r"--hidden sets the MLP built without --model, but --model cnn gives the network; drop --hidden"),
    ("activation-and-model", ["--model", "cnn", "--activation", "tanh"], r"drop --activation"),
    ("probabilities-loss", ["--model", "cnn", "--loss", "cross_entropy"], r"a --model network gives logits; use --loss softmax_cross_entropy"),
    ("missing-file", ["--model", "{tmp}/absent.json"], r"--model .*absent.json: cannot read the file \(No such file or directory\)"),
    ("invalid-json", ["--model", "{tmp}/broken.json"], r"--model .*broken.json is not valid JSON: Expecting value at line 1"),
    ("unknown-layer", ["--model", "{tmp}/badlayer.json"], r"badlayer.json: layers\[0\]: expected an object with \"type\" one of"),
    ("bad-argument", ["--model", "{tmp}/badarg.json"], r"badarg.json: layers\[0\]: .*features"),
    ("nested-too-deeply", ["--model", "{tmp}/deep.json"], r"deep.json: nested too deeply"),
    ("too-many-parameters", ["--model", "{tmp}/huge.json"], r"--model huge.json has 4,100,000,000 parameters; the limit is 20,000,000"),
    ("input-shape", ["--model", "cnn", "--data", "digits"], r"--model cnn takes examples of shape \(40,\) but digits has 64 features"),
    ("output-shape", ["--model", "{tmp}/three.json", "--data", "{data}"], r"--model three.json gives outputs of shape \(3,\) per example but forty.npz needs at least 10; end the model with a Dense layer of 10 features"),
    ("classes-and-model", ["--model", "cnn", "--data", "{data}", "--classes", "12"], r"gives outputs of shape \(10,\) per example but forty.npz needs \(12,\)"),
    ("test-fraction-mnist1d", ["--data", "mnist1d", "--test-fraction", "0.3"], r"--test-fraction does not apply to --data mnist1d"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "flags", "match"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_model_input_is_one_line_and_writes_nothing(capsys, tmp_path, forty, case, flags, match):  # fmt: skip
    _files(tmp_path)
    out = tmp_path / "run"
    argv = [flag.format(tmp=tmp_path, data=forty) for flag in flags]
    code, stdout, stderr = train(capsys, *argv, "--epochs", "1", "--quiet", "--out", out)
    assert code == 2, stderr
    assert stderr.count("\n") == 1 and stderr.startswith("jaxbp train: error: "), stderr
    assert re.search(match, stderr), stderr
    assert not out.exists() and stdout == ""
