"""``jaxbp train`` as one ``fit`` call with a callback between compiled chunks: stops and saves
inside an epoch, resumes from there, chunking, ``--patience``, ``--checkpoint-minutes``, progress
lines, and a batch that cannot be read.

In-process through ``jaxbp.cli.main``. Oracles: an uninterrupted run of the same settings (for
resumption and chunking: the parameters bit for bit), the rule of ``--patience`` applied to the
recorded validation losses, and the file names the checkpoints must have.
"""

from __future__ import annotations

import signal
import types
from pathlib import Path

import numpy as np
import pytest

from jaxbp.data import sources
from jaxbp.training import callbacks, checkpoint, checkpoint_callback
from tests.helpers import TINY, bitwise_equal, read_metrics, train

pytest.importorskip("sklearn")

#: The digits' 1257 training examples in batches of 64: 19 steps per epoch; chunks of 5 steps end
#: inside epochs (5, 10, 15, then 4 to the epoch's end at 19, 24, 29, ...).
CHUNKED = [*TINY, "--schedule", "constant", "--chunk-steps", "5"]


def final(directory: Path) -> checkpoint.Checkpoint:
    return checkpoint.load(checkpoint.resolve(directory))


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """Three uninterrupted epochs with the default chunks (one per epoch here)."""
    out = tmp_path_factory.mktemp("straight") / "run"
    argv = ["train", *TINY, "--schedule", "constant", "--epochs", "3", "--out", str(out)]
    from jaxbp import cli

    assert cli.main(argv) == 0
    return out


def signal_at(monkeypatch, step: int, signum: int = signal.SIGINT) -> None:
    """Send the process a signal just before the checkpoint callback of the first chunk ending at
    ``step`` or later; the command's handler (:meth:`jaxbp.cli.signals.Stopper.handle`) takes it."""
    real, sent = checkpoint_callback.Checkpoints.__call__, []

    def call(self, done, params, chunk):
        if done >= step and not sent:
            sent.append(done)
            signal.raise_signal(signum)  # the handler runs before raise_signal returns
        return real(self, done, params, chunk)

    monkeypatch.setattr(checkpoint_callback.Checkpoints, "__call__", call)


def test_chunks_inside_epochs_change_no_bit(capsys, tmp_path, straight):
    out = tmp_path / "run"
    assert train(capsys, *CHUNKED, "--epochs", "3", "--out", out)[0] == 0
    assert bitwise_equal(final(out).params, final(straight).params)
    for key in ("train_loss", "val_loss", "val_accuracy", "test_loss", "test_accuracy"):
        assert read_metrics(out)[key] == read_metrics(straight)[key], key


def test_a_signal_inside_an_epoch_saves_there_and_the_run_resumes_bit_exactly(
    capsys, tmp_path, straight, monkeypatch
):
    out = tmp_path / "run"
    signal_at(monkeypatch, 25)  # the chunk ending at step 29: epoch 1, step 10 of 19
    code, _, stderr = train(capsys, *CHUNKED, "--epochs", "3", "--out", out)
    assert code == 130, stderr
    saved = final(out)
    assert checkpoint.resolve(out).name == "checkpoint-00000001.s0000000010.jaxbp"
    assert (saved.epoch, saved.step) == (1, 29)
    metrics = read_metrics(out)
    assert metrics["interrupted"] is True and metrics["steps_done"] == 29
    assert len(metrics["train_loss"]) == 1  # only whole epochs have a training loss
    assert f"saved {checkpoint.resolve(out)}; continue with: jaxbp train --resume" in stderr
    monkeypatch.undo()

    code, _, _ = train(capsys, "--resume", out, "--epochs", "3", "--chunk-steps", "7")
    assert code == 0
    assert bitwise_equal(final(out).params, final(straight).params)
    resumed, whole = read_metrics(out), read_metrics(straight)
    for key in ("val_loss", "val_accuracy", "test_loss", "test_accuracy"):
        assert resumed[key] == whole[key], key
    # epoch 2's training loss: the sum of the 10 saved steps' losses and the 9 resumed ones, over
    # 19, where the straight run took the mean of all 19: equal to rounding
    np.testing.assert_allclose(resumed["train_loss"], whole["train_loss"], rtol=1e-12)
    assert resumed["first_loss"] == whole["first_loss"]


def test_a_second_resume_inside_the_same_epoch_continues_from_the_newest(
    capsys, tmp_path, straight, monkeypatch
):
    out = tmp_path / "run"
    signal_at(monkeypatch, 23)
    assert train(capsys, *CHUNKED, "--epochs", "3", "--out", out)[0] == 130
    monkeypatch.undo()
    signal_at(monkeypatch, 33)  # default chunks from step 24: 8 steps, 4, 2 (to 38)
    assert train(capsys, "--resume", out, "--epochs", "3")[0] == 130
    names = [path.name for path in checkpoint.list_checkpoints(out)]
    assert names[-2:] == ["checkpoint-00000001.s0000000005.jaxbp", "checkpoint-00000001.s0000000017.jaxbp"]  # fmt: skip
    monkeypatch.undo()
    assert train(capsys, "--resume", out, "--epochs", "3")[0] == 0
    assert bitwise_equal(final(out).params, final(straight).params)


def test_an_older_checkpoint_inside_an_epoch_is_not_resumed_over_a_newer_one(
    capsys, tmp_path, monkeypatch
):
    out = tmp_path / "run"
    signal_at(monkeypatch, 23)
    assert train(capsys, *CHUNKED, "--epochs", "3", "--out", out)[0] == 130
    monkeypatch.undo()
    assert train(capsys, "--resume", out, "--epochs", "2")[0] == 0
    older = out / "checkpoint-00000001.s0000000005.jaxbp"
    assert older.exists()
    code, _, stderr = train(capsys, "--resume", older, "--epochs", "3")
    assert code == 2 and "checkpoint-00000002.jaxbp follow it" in stderr


def test_checkpoint_minutes_save_inside_epochs(capsys, tmp_path, monkeypatch):
    clock = iter(range(0, 10**9, 61))  # every reading of the clock is 61 s after the last
    monkeypatch.setattr(checkpoint_callback, "time", types.SimpleNamespace(perf_counter=lambda: next(clock)))  # fmt: skip
    out = tmp_path / "run"
    argv = [*CHUNKED, "--epochs", "2", "--checkpoint-every", "1000", "--checkpoint-minutes", "1"]
    assert train(capsys, *argv, "--keep", "100", "--out", out)[0] == 0
    names = [path.name for path in checkpoint.list_checkpoints(out)]
    inside = [f"checkpoint-00000000.s{s:010d}.jaxbp" for s in (5, 10, 15)]
    inside += [f"checkpoint-00000001.s{s:010d}.jaxbp" for s in (5, 10, 15)]
    expected = ["checkpoint-00000000.jaxbp", *inside[:3], "checkpoint-00000001.jaxbp", *inside[3:]]
    assert names == [*expected, "checkpoint-00000002.jaxbp"]


def test_without_checkpoint_minutes_only_epoch_ends_are_saved(capsys, tmp_path):
    out = tmp_path / "run"
    assert train(capsys, *CHUNKED, "--epochs", "2", "--keep", "100", "--out", out)[0] == 0
    names = [path.name for path in checkpoint.list_checkpoints(out)]
    assert names == [f"checkpoint-0000000{e}.jaxbp" for e in range(3)]


def test_patience_stops_when_the_validation_loss_stops_improving(capsys, tmp_path):
    out = tmp_path / "run"
    patience = 2
    # a high rate makes the validation loss jump about, so it stops improving early
    argv = [*TINY, "--schedule", "constant", "--lr", "0.5", "--epochs", "60", "--patience", str(patience)]  # fmt: skip
    code, stdout, _ = train(capsys, *argv, "--out", out)
    assert code == 0
    val = read_metrics(out)["val_loss"]
    epochs = len(val)
    assert epochs < 60, "the run never stopped early; make the rate noisier"
    assert f"early stop: the validation loss has not improved for {patience} epochs" in stdout

    def stalled(upto: int) -> bool:  # no new best in the last `patience` of the first `upto`
        return min(val[: upto - patience]) <= min(val[upto - patience : upto])

    assert stalled(epochs)
    assert not any(stalled(e) for e in range(patience + 1, epochs))
    assert read_metrics(out)["early_stopped"] is True
    assert final(out).epoch == epochs  # the state it stopped at is saved


def test_progress_lines_inside_long_epochs(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(callbacks, "LINE_SECONDS", 0.0)
    argv = [a for a in CHUNKED if a != "--quiet"]
    code, stdout, _ = train(capsys, *argv, "--epochs", "1", "--out", tmp_path / "run")
    assert code == 0
    lines = [line for line in stdout.splitlines() if line.startswith("epoch ")]
    steps = [line.split()[3] for line in lines[:-1]]
    assert steps == ["5/19", "10/19", "15/19"]
    assert lines[-1].startswith("epoch 1/1  loss ")


def test_a_batch_that_cannot_be_read_stops_with_exit_2_and_the_state_before_it(
    capsys, tmp_path, monkeypatch
):
    # A .npy data set (streamed from the file) of 1860 rows: 1302 train, 20 steps of 64 per epoch,
    # so chunks of 5 steps start at 0, 5, 10, ... and the 6th chunk read starts at step 25.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1860, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 1))
    data = ["--data", tmp_path / "x.npy", "--target", tmp_path / "y.npy", *CHUNKED, "--epochs", "3"]
    straight = tmp_path / "straight"
    assert train(capsys, *data, "--out", straight)[0] == 0
    assert read_metrics(straight)["examples"]["train"] // 64 == 20
    real_read, reads = sources.ArraySource.read, []

    def read(self, rows):
        reads.append(len(rows))
        if reads.count(5 * 64) == 6 and len(rows) == 5 * 64:
            raise OSError(5, "Input/output error")
        return real_read(self, rows)

    monkeypatch.setattr(sources.ArraySource, "read", read)
    out = tmp_path / "run"
    code, _, stderr = train(capsys, *data, "--out", out)
    assert code == 2, stderr
    assert stderr.count("\n") == 1 and "Input/output error" in stderr
    assert "fix the data, then: jaxbp train --resume" in stderr
    assert final(out).step == 25  # the state after the last chunk trained before the failed read
    monkeypatch.undo()
    assert train(capsys, "--resume", out, "--epochs", "3")[0] == 0
    assert bitwise_equal(final(out).params, final(straight).params)
