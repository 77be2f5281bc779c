"""Ctrl-C (SIGINT) and SIGTERM at several moments of a real ``jaxbp train`` process.

Each case waits a given time after the start (0.1 to 0.3 s: inside JAX's import), or until the
command's handlers are installed (``SigCgt`` in ``/proc/<pid>/status``
shows SIGTERM caught), or until a given file appears, then sends the signal. Oracles: the exit
status (130 for SIGINT, 143 for SIGTERM), stderr (one ``jaxbp train:`` line at the end, never a
traceback or a crash), and every checkpoint on disk loading cleanly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jaxbp.training import checkpoint

pytest.importorskip("sklearn")
pytestmark = [
    pytest.mark.slow,  # fresh Python processes: 10-40 s each
    pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc"),
]

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--hidden", "8", "--batch-size", "64", "--schedule", "constant"]


def _handlers_installed(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)  # fmt: skip
    return bool(caught >> (signal.SIGTERM - 1) & 1)


def _wait(process: subprocess.Popen, ready, deadline: float = 180) -> None:
    end = time.monotonic() + deadline
    while not ready():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < end, "the process never reached the moment to signal"
        time.sleep(0.02)


def _start(out: Path, epochs: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, "-m", "jaxbp", "train", *TINY, "--epochs", str(epochs),
               "--checkpoint-every", "1000", "--out", str(out)]  # fmt: skip
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


CASES = [
    # (id, signal, moment, extra delay in s, expected exit status)
    ("sigint-at-startup", signal.SIGINT, "handlers", 0.0, 130),
    ("sigint-while-loading", signal.SIGINT, "handlers", 0.7, 130),
    ("sigterm-at-startup", signal.SIGTERM, "handlers", 0.3, 143),
    ("sigint-while-compiling", signal.SIGINT, "first-checkpoint", 0.0, 130),
    ("sigterm-mid-run", signal.SIGTERM, "first-checkpoint", 1.5, 143),
]


@pytest.mark.parametrize(("case", "signum", "moment", "delay", "status"), CASES, ids=[c[0] for c in CASES])  # fmt: skip
def test_a_signal_at_any_moment_exits_cleanly(tmp_path, case, signum, moment, delay, status):
    out = tmp_path / "run"
    process = _start(out, 100_000)
    try:
        if moment == "handlers":
            _wait(process, lambda: _handlers_installed(process.pid))
        else:
            _wait(process, (out / "checkpoint-00000000.jaxbp").exists)
        time.sleep(delay)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == status, stderr
    assert "Traceback" not in stderr and "Segmentation" not in stderr and "Fatal" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("jaxbp train: ")
    saved = checkpoint.list_checkpoints(out)
    for path in saved:
        checkpoint.load(path)
    if moment == "first-checkpoint":
        name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
        # A signal may land inside the first save (then no epoch ran): still a whole checkpoint.
        assert (
            f"stopped by {name}; saved {saved[-1]}; continue with: jaxbp train --resume" in stderr
        )
    else:
        assert ": stopped" in stderr or "stopped by" in stderr


EARLY = [(signum, delay) for signum in (signal.SIGINT, signal.SIGTERM) for delay in (0.1, 0.3)]


@pytest.mark.parametrize(("signum", "delay"), EARLY, ids=[f"{s.name}-{d}s" for s, d in EARLY])
def test_a_signal_while_jax_is_imported_exits_at_once(tmp_path, signum, delay):
    """The signal lands 0.1 to 0.3 s after the start, inside JAX's import (which takes over a
    second); that the handlers are in place before that import begins is
    ``tests/test_package.py``'s check. On a machine so loaded that the handlers are not yet in
    place at ``delay``, the signal waits for them rather than testing Python's own start."""
    out = tmp_path / "run"
    started = time.monotonic()
    process = _start(out, 100_000)
    try:
        time.sleep(max(0.0, started + delay - time.monotonic()))
        _wait(process, lambda: _handlers_installed(process.pid))
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
    assert process.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[signum], stderr
    assert stderr.strip().splitlines() == [f"jaxbp train: {name}: stopped"]
    assert stdout == ""  # not even the run's header: it never trained
    assert not out.exists()


def test_a_second_signal_stops_at_once_and_leaves_whole_checkpoints(tmp_path):
    out = tmp_path / "run"
    process = _start(out, 100_000)
    try:
        _wait(process, (out / "checkpoint-00000000.jaxbp").exists)
        process.send_signal(signal.SIGINT)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    for path in checkpoint.list_checkpoints(out):
        checkpoint.load(path)


def test_a_closed_output_pipe_stops_cleanly_with_141(tmp_path):
    out = tmp_path / "run"
    process = _start(out, 100_000)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("jaxbp train: ")
        process.stdout.close()  # like `jaxbp train | head -1`
        _, stderr = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 141, stderr
    assert stderr.strip().splitlines()[-1] == "jaxbp train: output closed (broken pipe); stopped, saved files whole"  # fmt: skip
    assert "Traceback" not in stderr
    for path in checkpoint.list_checkpoints(out):
        checkpoint.load(path)
