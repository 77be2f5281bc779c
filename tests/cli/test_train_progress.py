"""``jaxbp train`` without a terminal: every epoch line shows examples per second and the time
left (issue 21). Oracles: a clock the test sets (so the rates are exact arithmetic) and the
line format as documented in docs/train.md."""

from __future__ import annotations

import io
import re

import numpy as np

from jaxbp.training import callbacks
from tests.helpers import train

LINE = re.compile(
    r"^epoch +(\d+)/(\d+)  loss \d+\.\d{4}  val_loss \d+\.\d{4}  val_acc \d\.\d{4}  "
    r"[\d,]+ ex/s  left (\d+):(\d\d):(\d\d)$"
)


def test_the_lines_show_throughput_and_time_left_from_a_set_clock(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(callbacks.time, "monotonic", lambda: now[0])
    stream = io.StringIO()
    bar = callbacks.ProgressBar(30, steps_per_epoch=10, lines=stream, examples_per_step=32)
    now[0] = 102.0  # 10 steps of 32 examples in 2 s: 160 examples/s; 20 steps left at 5/s: 4 s
    bar(10, None, {"train_loss": 0.5, "val_loss": 0.25, "val_accuracy": 0.75})
    now[0] = 102.5  # the next 10 in 0.5 s: 640 examples/s; 10 steps left at 20/s: 0.5 s
    bar(20, None, {"train_loss": 0.5, "val_loss": 0.25, "val_accuracy": 0.75})
    now[0] = 7302.5  # the last 10 in 7200 s: 0.04 examples/s rounds to 0; none left
    bar(30, None, {"train_loss": 0.5, "val_loss": 0.25, "val_accuracy": 0.75})
    assert stream.getvalue().splitlines() == [
        "epoch 1/3  loss 0.5  val_loss 0.25  val_acc 0.75  160 ex/s  left 0:00:04",
        "epoch 2/3  loss 0.5  val_loss 0.25  val_acc 0.75  640 ex/s  left 0:00:00",
        "epoch 3/3  loss 0.5  val_loss 0.25  val_acc 0.75  0 ex/s  left 0:00:00",
    ]


def test_every_epoch_line_of_jaxbp_train_shows_examples_per_second_and_time_left(capsys, tmp_path):  # fmt: skip
    rng = np.random.default_rng(0)
    y = np.arange(100) % 2
    np.savez(tmp_path / "two.npz", x=rng.normal(size=(100, 3)) + y[:, None], y=y)
    code, stdout, stderr = train(capsys, "--data", tmp_path / "two.npz", "--hidden", "4",
                                 "--epochs", "3", "--batch-size", "10", "--out", tmp_path / "run")  # fmt: skip
    assert code == 0, stderr
    lines = [line for line in stdout.splitlines() if line.startswith("epoch")]
    assert len(lines) == 3 and all(LINE.match(line) for line in lines), lines
    last = LINE.match(lines[-1])
    assert last is not None and last.groups()[2:] == ("0", "00", "00")  # no steps left
