"""``jaxbp train`` on data files that change or are not what they seem: a ``.npy`` cut short while
it is streamed, and paths that are not regular files.

Oracles: the exit code and the one line ``docs/guarantees.md`` promises (exit 2, the file named,
the sizes it should have and has, computed here from the header's length and the array's
shape), and the checkpoint that line names, loaded back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxbp.training import checkpoint

ROOT = Path(__file__).resolve().parents[2]
ROWS = 4000

_SHRINK = r"""
import os, sys
import numpy as np
from jaxbp import cli
from jaxbp.cli import metrics
from jaxbp.training import chunked

path, width, where, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
rng = np.random.default_rng(0)
x = rng.normal(size=(4000, width)).astype(np.float32)
x[:, -1] = rng.integers(0, 2, 4000)
np.save(path, x)
size = os.path.getsize(path)


def shrink():
    with open(path, "r+b") as handle:
        handle.truncate(size // 2)


if where == "batch":  # between two chunks of training batches
    original = chunked.array_chunks

    def shrinking(*args, **kwargs):
        for index, chunk in enumerate(original(*args, **kwargs)):
            if index == 1:
                shrink()
            yield chunk

    chunked.array_chunks = shrinking
else:  # just before the first validation reads its rows
    evaluate = metrics.evaluate

    def shrinking(*args, **kwargs):
        shrink()
        return evaluate(*args, **kwargs)

    metrics.evaluate = shrinking
sys.exit(cli.main(["train", "--data", path, "--target", "-1", "--epochs", "3", "--hidden", "4",
                   "--batch-size", "32", "--chunk-steps", "4", "--quiet", "--out", out]))
"""


@pytest.mark.parametrize("where", ["batch", "validation"])
@pytest.mark.parametrize("width", [8, 100], ids=["32-byte-rows", "400-byte-rows"])
def test_a_npy_cut_short_while_training_exits_2_naming_the_sizes(tmp_path, width, where):
    path, out = tmp_path / "x.npy", tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", _SHRINK, str(path), str(width), where, str(out)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    header = 128  # np.save's version 1.0 header for this shape, padded to 64 bytes
    expected = header + ROWS * width * 4
    assert done.returncode == 2, done.stderr[-3000:]  # not -7 (SIGBUS), not 1 (a traceback)
    assert "Traceback" not in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith(f"jaxbp train: error: {'fit: reading batches ' if where == 'batch' else path}")  # fmt: skip
    assert f"{path}: the file is {expected // 2:,} bytes but its header and shape need {expected:,}" in line  # fmt: skip
    assert f"jaxbp train --resume {out} --epochs 3" in line
    kept = Path(line.split("Saved the state before it: ")[1].split(";")[0])
    assert kept.parent == out and kept in checkpoint.list_checkpoints(out)


# A model file whose layers are tiny in parameters but huge in activations: 26 parameters, but
# layer 1 pads 64 samples by 20,000,000 on each side, 40,000,064 values per example.
_WIDE = {
    "input_shape": [64],
    "layers": [
        {"type": "Reshape", "shape": [64, 1]},
        {"type": "Conv1D", "features": 1, "kernel_size": 1, "padding": 20_000_000},
        {"type": "AvgPool1D", "window": 40_000_016},
        {"type": "Flatten"},
        {"type": "Dense", "features": 10},
    ],
}


@pytest.mark.parametrize("batch", ["32", "full"])
def test_a_model_file_with_huge_activations_is_refused_naming_the_layer(capsys, tmp_path, batch):
    from tests.helpers import train

    (tmp_path / "wide.json").write_text(json.dumps(_WIDE))
    code, _, err = train(capsys, "--model", tmp_path / "wide.json", "--batch-size", batch,
                         "--val-fraction", "0", "--test-fraction", "0", "--epochs", "1", "--quiet", "--out", tmp_path / "run")  # fmt: skip
    assert code == 2 and "Traceback" not in err
    values = 64 + 2 * 20_000_000  # layer 1's output length; one feature
    total = (64 + values) * (
        1797 if batch == "full" else 32
    )  # all of digits' 1797 trains  # the Reshape's 64, then layer 1
    assert "layer 1 (Conv1D) outputs 40,000,064 values per example (shape (40000064, 1))" in err
    assert f"are {total:,} values; the limit is 268,435,456" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("suffix", [".csv", ".npz", ".npy"])
def test_a_named_pipe_as_data_is_refused_as_not_a_regular_file(capsys, tmp_path, suffix):
    from tests.helpers import train

    fifo = tmp_path / f"pipe{suffix}"
    os.mkfifo(fifo)  # opening it would wait for a writer forever
    code, _, err = train(capsys, "--data", fifo, "--target", "-1", "--quiet", "--out", tmp_path / "run")  # fmt: skip
    accepted = "a .npy file" if suffix == ".npy" else "a .csv, .npz or .npy file"
    assert code == 2 and err.strip() == (
        f"jaxbp train: error: {fifo}: is a named pipe (FIFO), not a regular file; --data needs {accepted}"
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("path", "kind"), [("/dev/zero", "a character device"), ("/dev/null", "a character device")])  # fmt: skip
def test_a_device_as_data_is_refused_naming_what_it_is(capsys, tmp_path, path, kind):
    from tests.helpers import train

    if not os.path.exists(path):
        pytest.skip(f"no {path} here")
    code, _, err = train(capsys, "--data", path, "--quiet", "--out", tmp_path / "run")
    assert code == 2
    assert f"{path}: is {kind}, not a regular file; --data needs a .csv, .npz or .npy file" in err


def test_a_named_pipe_as_npy_targets_is_refused(capsys, tmp_path):
    import numpy as np

    from tests.helpers import train

    np.save(tmp_path / "x.npy", np.ones((10, 2)))
    os.mkfifo(tmp_path / "y.npy")
    code, _, err = train(capsys, "--data", tmp_path / "x.npy", "--target", tmp_path / "y.npy", "--quiet", "--out", tmp_path / "run")  # fmt: skip
    assert code == 2
    assert (
        f"{tmp_path / 'y.npy'}: is a named pipe (FIFO), not a regular file; --target needs a .npy file"
        in err
    )


def test_an_unreadable_data_file_is_refused_naming_the_permission(capsys, tmp_path):
    from tests.helpers import train

    path = tmp_path / "d.csv"
    path.write_text("a,target\n1,0\n2,1\n")
    path.chmod(0)
    if os.access(path, os.R_OK):  # root reads anything: nothing to test
        pytest.skip("running as a user who reads files without read permission")
    code, _, err = train(capsys, "--data", path, "--quiet", "--out", tmp_path / "run")
    assert code == 2 and f"{path}: no permission to read it" in err


# Attention keeps a (length x length) score matrix and its softmax per head: quadratic in the
# length, while the layer's output is linear in it. Here 26 + 120,650 parameters and outputs of
# 12,064 values, but 2 x 1 x 12,064**2 = 291,080,192 attention values per example.
_LONG_ATTENTION = {
    "input_shape": [64],
    "layers": [
        {"type": "Reshape", "shape": [64, 1]},
        {"type": "Conv1D", "features": 1, "kernel_size": 1, "padding": 6000},
        {"type": "SelfAttention", "heads": 1},
        {"type": "Flatten"},
        {"type": "Dense", "features": 10},
    ],
}


def test_attention_scores_count_towards_the_activation_limit(capsys, tmp_path):
    from jaxbp.cli import limits
    from jaxbp.layers import model_file
    from tests.helpers import train

    (tmp_path / "long.json").write_text(json.dumps(_LONG_ATTENTION))
    sizes = limits.activation_sizes(model_file.load(tmp_path / "long.json"))
    assert sizes[2] == ("layer 2 (SelfAttention) attention (scores and weights)", (2, 1, 12064, 12064))  # fmt: skip
    assert [shape for _, shape in sizes[3:]] == [(12064, 1), (12064,), (10,)]
    code, _, err = train(capsys, "--model", tmp_path / "long.json", "--batch-size", "1",
                         "--val-fraction", "0", "--test-fraction", "0", "--epochs", "1", "--quiet", "--out", tmp_path / "run")  # fmt: skip
    assert code == 2 and "Traceback" not in err
    total = 64 + 12064 + 2 * 12064**2  # the Reshape, the Conv1D, then the attention values
    assert "outputs 291,080,192 values per example (shape (2, 1, 12064, 12064))" in err
    assert f"are {total:,} values; the limit is 268,435,456" in err
    assert not (tmp_path / "run").exists()
