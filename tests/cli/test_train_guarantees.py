"""The guarantees of ``jaxbp train`` (docs/guarantees.md): what is never overwritten, one run per
folder, stale temporary files, full disks, divergence, edited checkpoints, and the command line.

In-process through ``jaxbp.cli.main``; the lock's release at process death uses a subprocess.
Oracles: the bytes of the user's files, the lock as the operating system reports it, errno values
raised on purpose, and first principles (float32's largest value, Adam's scale-free step).
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from jaxbp import cli
from jaxbp.cli import config, run_folder
from jaxbp.cli import train as train_command
from jaxbp.training import checkpoint
from jaxbp.training import files as _files
from tests.helpers import TINY, train

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[2]


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("saved") / "run"
    argv = ["train", *TINY, "--schedule", "constant", "--epochs", "2", "--out", str(out)]
    assert cli.main(argv) == 0
    return out


def copy_run(source: Path, target: Path) -> Path:
    target.mkdir()
    for name, content in snapshot(source).items():
        (target / name).write_bytes(content)
    return target


# --- the command line itself -------------------------------------------------------------------


def test_version_and_bare_command(capsys):
    from jaxbp import __version__

    with pytest.raises(SystemExit) as stopped:
        cli.main(["--version"])
    assert stopped.value.code == 0 and capsys.readouterr().out == f"jaxbp {__version__}\n"
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: jaxbp") and "train" in out and "explain" in out


def test_every_setting_has_one_flag_with_its_default_and_choices_in_the_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for cls in (config.TrainConfig, config.RunOptions):
        for field in dataclasses.fields(cls):
            assert field.metadata.get("flag", config.flag_of(field.name)) in text
    from jaxbp.model.losses import LOSSES

    assert "--loss NAME loss: one of " + ", ".join(sorted(LOSSES)) in text
    assert "--lr RATE learning rate (default: 0.1; 0.01 for regression)" in text
    assert "--seed N seed of the split, the initialisation and the shuffling (default: 0)" in text


def test_settings_that_do_not_apply_are_recorded_as_null(capsys, tmp_path):
    code, stdout, _ = train(capsys, *TINY, "--epochs", "1", "--out", tmp_path / "a")
    assert code == 0
    saved = json.loads((tmp_path / "a" / "metrics.json").read_text())["config"]
    assert saved["momentum"] is None and saved["decay_epochs"] is None and saved["decay"] == 0.97
    assert "1 epoch done" in stdout and "1 epochs" not in stdout
    momentum = tmp_path / "b"
    argv = ["--optimizer", "momentum", "--schedule", "cosine", "--epochs", "1", "--out", momentum]
    assert train(capsys, *TINY, *argv)[0] == 0
    saved = json.loads((momentum / "metrics.json").read_text())["config"]
    assert (saved["momentum"], saved["decay"], saved["decay_epochs"]) == (0.9, None, 40)


def test_the_run_header_is_short_lines(capsys, tmp_path):
    code, stdout, _ = train(capsys, "--hidden", "8", "--batch-size", "64", "--epochs", "1",
                            "--out", tmp_path / "a")  # fmt: skip
    assert code == 0
    header = stdout.split("\nepoch ")[0].splitlines()
    assert header[0] == f"jaxbp train: digits -> {tmp_path / 'a'} (new run)"
    assert 4 <= len(header) <= 5 and all(len(line) <= 100 for line in header[1:])
    assert "  note      only 19 steps in all; small data needs more: --epochs 53 --schedule constant gives 1000" in header  # fmt: skip


# --- folders: only new ones or the run's own ---------------------------------------------------


def test_a_data_file_name_cannot_take_the_default_folder_out_of_runs(capsys, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    rows = "".join(f"{i},{i % 2}\n" for i in range(40))
    (tmp_path / "...csv").write_text("a,target\n" + rows)
    monkeypatch.chdir(work)
    code, _, stderr = train(capsys, "--data", tmp_path / "...csv", "--hidden", "2",
                            "--batch-size", "full", "--epochs", "1", "--quiet")  # fmt: skip
    assert code == 0, stderr
    assert sorted(p.name for p in work.iterdir()) == ["runs"]
    assert sorted(p.name for p in (work / "runs").iterdir()) == ["data"]
    assert (work / "runs" / "data" / "metrics.json").is_file()
    assert run_folder.default_for(str(tmp_path / "a b;$(x).csv")) == Path("runs/a_b___x_")


def test_a_run_copied_without_its_marker_resumes_but_foreign_files_block_it(capsys, tmp_path, saved_run):  # fmt: skip
    run = copy_run(saved_run, tmp_path / "run")
    (run / run_folder.MARKER).unlink()  # as `cp run/* elsewhere/` copies it
    assert train(capsys, "--resume", run, "--epochs", "3", "--quiet")[0] == 0
    other = copy_run(saved_run, tmp_path / "other")
    (other / run_folder.MARKER).unlink()
    (other / "notes.txt").write_text("mine")
    code, _, stderr = train(capsys, "--resume", other, "--epochs", "3", "--quiet")
    assert code == 2 and "is not a jaxbp run folder" in stderr
    assert (other / "notes.txt").read_text() == "mine"


def test_the_default_folder_behind_a_link_out_of_runs_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "runs" / "digits").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(
        run_folder.FolderError, match=r"leads outside runs/ \(a link\?\); pass --out"
    ):
        run_folder.default_for("digits")


def test_a_second_run_into_a_locked_folder_gets_one_line(capsys, tmp_path):
    folder = tmp_path / "run"
    held = run_folder.claim(folder)
    try:
        code, _, stderr = train(capsys, *TINY, "--epochs", "1", "--out", folder)
        assert code == 2
        assert stderr == (
            f"jaxbp train: error: a run is in progress in {folder} (process {os.getpid()}); wait "
            f"for it to end, or stop it (Ctrl-C, or kill {os.getpid()}: it saves a checkpoint "
            f"first), then continue it with --resume {folder}; or pass another --out\n"
        )
        assert sorted(p.name for p in folder.iterdir()) == [run_folder.MARKER, run_folder.PID_FILE]
    finally:
        held.release()
    assert train(capsys, *TINY, "--epochs", "1", "--out", folder)[0] == 0  # free again


def test_a_killed_process_never_leaves_its_folder_locked(tmp_path):
    folder = tmp_path / "run"
    script = (
        "import os, signal, sys; from pathlib import Path; from jaxbp.cli import run_folder; "
        f"run_folder.claim(Path({str(folder)!r})); print('claimed', flush=True); "
        "os.kill(os.getpid(), signal.SIGKILL)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == -signal.SIGKILL and done.stdout == "claimed\n", done.stderr
    run_folder.claim(folder).release()  # would raise if the lock had outlived the process


def test_stale_temporary_files_of_a_killed_write_are_removed_and_nothing_else(capsys, tmp_path, saved_run):  # fmt: skip
    run = copy_run(saved_run, tmp_path / "run")
    (run / run_folder.MARKER).write_text((saved_run / run_folder.MARKER).read_text())
    stale = [".checkpoint-00000003.jaxbp.k2j3h4_x.tmp", ".metrics.json.abcdefgh.tmp", ".curves.png.x1y2z3w4.tmp"]  # fmt: skip
    kept = [".mine.tmp", "notes.tmp", ".checkpoint-3.jaxbp.abc.tmp", "checkpoint-00000003.jaxbp.abcdefgh.tmp"]  # fmt: skip
    for name in stale + kept:
        (run / name).write_bytes(b"partial")
    code, _, stderr = train(capsys, "--resume", run, "--epochs", "3", "--quiet")
    assert code == 0, stderr
    names = {p.name for p in run.iterdir()}
    assert not names & set(stale) and set(kept) <= names


# --- full disks --------------------------------------------------------------------------------


def test_a_full_disk_gives_one_line_exit_4_and_keeps_the_saved_checkpoints(capsys, tmp_path, monkeypatch):  # fmt: skip
    real_save, calls = checkpoint.save, []

    def save(directory, state, *, keep, step_in_epoch=0):
        calls.append(state.epoch)
        if state.epoch == 2:
            error = OSError(errno.ENOSPC, "No space left on device")
            raise _files.WriteError(checkpoint.path_for(directory, 2), 7000, error)
        return real_save(directory, state, keep=keep, step_in_epoch=step_in_epoch)

    monkeypatch.setattr(checkpoint, "save", save)
    out = tmp_path / "run"
    code, _, stderr = train(capsys, *TINY, "--epochs", "4", "--out", out)
    assert code == train_command.EXIT_WRITE_FAILED == 4
    assert stderr == (
        f"jaxbp train: cannot write {out / 'checkpoint-00000002.jaxbp'} (No space left on "
        f"device); free at least 6 KiB, then: jaxbp train --resume {out} --epochs 4; the "
        f"saved checkpoint-00000001.jaxbp is intact\n"
    )
    assert calls == [0, 1, 2]
    assert checkpoint.load(checkpoint.resolve(out)).epoch == 1


def test_a_users_file_at_a_checkpoints_name_mid_run_is_kept_and_named(capsys, tmp_path, monkeypatch):  # fmt: skip
    """A file that is not a checkpoint, put at the name of the next one while the run goes on, is
    never replaced: one line (no traceback), exit 4, the checkpoints saved before intact."""
    real_save = checkpoint.save

    def save(directory, state, *, keep, step_in_epoch=0):
        if state.epoch == 2:  # the user writes a file there between the epochs
            checkpoint.path_for(directory, 2).write_text("my notes")
        return real_save(directory, state, keep=keep, step_in_epoch=step_in_epoch)

    monkeypatch.setattr(checkpoint, "save", save)
    out = tmp_path / "run"
    code, _, stderr = train(capsys, *TINY, "--epochs", "4", "--out", out)
    assert code == train_command.EXIT_WRITE_FAILED == 4
    assert stderr == (
        f"jaxbp train: cannot write {out / 'checkpoint-00000002.jaxbp'} (exists and is not a "
        f"jaxbp checkpoint); move that file out of the run folder, then: jaxbp train --resume "
        f"{out} --epochs 4; the saved checkpoint-00000001.jaxbp is intact\n"
    )
    assert (out / "checkpoint-00000002.jaxbp").read_text() == "my notes"
    assert checkpoint.load(checkpoint.path_for(out, 1)).epoch == 1


def test_a_full_disk_when_creating_the_folder_gives_exit_4(capsys, tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "mkdir", full)
    code, _, stderr = train(capsys, *TINY, "--epochs", "1", "--out", tmp_path / "run")
    assert code == 4
    assert stderr.count("\n") == 1 and "No space left on device" in stderr


@pytest.mark.slow  # a fresh Python process
def test_a_file_size_limit_in_a_real_process_gives_exit_4(tmp_path):
    # A file size limit (ulimit -f, RLIMIT_FSIZE) makes every write past 20 KiB fail with EFBIG,
    # as a nearly full disk would; the checkpoints (7 kB each) fit, the plot (about 50 kB) does
    # not. SIGXFSZ is ignored so the write fails instead of killing the process.
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    flags = " ".join([*TINY, "--epochs", "2", "--out", str(out)])
    script = f"trap '' XFSZ; ulimit -f 20; exec {sys.executable} -m jaxbp train {flags}"
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 4, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert f"cannot write {out / 'curves.png'} (File too large)" in done.stderr
    assert checkpoint.load(checkpoint.resolve(out)).epoch == 2
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


# --- divergence --------------------------------------------------------------------------------


def test_adam_at_lr_1e6_is_reported_as_a_blow_up_not_success(capsys, tmp_path):
    out = tmp_path / "run"
    code, _, stderr = train(capsys, *TINY, "--optimizer", "adam", "--lr", "1e6", "--epochs", "10",
                            "--out", out)  # fmt: skip
    assert code == 3, stderr
    assert stderr.count("\n") == 1 and "jaxbp train: diverged at step " in stderr
    with np.load(out / "last_finite_params.npz") as kept:
        assert kept.files and all(np.isfinite(kept[name]).all() for name in kept.files)
    assert json.loads((out / "metrics.json").read_text())["diverged"]["step"] >= 0


def test_params_overflowing_float32_are_never_saved_as_last_finite(capsys, tmp_path):
    # lr 1e37 times a gradient of order 1e6 passes float32's 3.4e38 in the first update, whose
    # loss and gradient were finite: only the new params show it.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    np.savez(tmp_path / "d.npz", x=x, y=1e6 * x.sum(axis=1))
    out = tmp_path / "run"
    code, _, stderr = train(capsys, "--data", tmp_path / "d.npz", "--task", "regression",
                            "--hidden", "4", "--batch-size", "full", "--lr", "1e37",
                            "--schedule", "constant", "--epochs", "5", "--no-scale-targets",
                            "--out", out)  # fmt: skip
    assert code == 3, stderr
    assert "diverged at step 0 (epoch 1): the parameters became non-finite;" in stderr
    initial = checkpoint.load(checkpoint.path_for(out, 0))
    with np.load(out / "last_finite_params.npz") as kept:
        for i, layer in enumerate(initial.params):
            for name, leaf in layer.items():
                np.testing.assert_array_equal(kept[f"params[{i}]['{name}']"], leaf)


# --- checkpoints edited with a recomputed checksum, through the command line -------------------


def _edit(path: Path, change) -> None:
    payload = path.read_bytes().split(b"\n", 2)[2]
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    meta = json.loads(np.load(io.BytesIO(members["meta.npy"])).tobytes())
    change(meta, members)
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.frombuffer(json.dumps(meta).encode(), np.uint8))
    members["meta.npy"] = buffer.getvalue()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    payload = out.getvalue()
    header = {"format_version": 2, "payload_bytes": len(payload), "payload_sha256": hashlib.sha256(payload).hexdigest()}  # fmt: skip
    path.write_bytes(checkpoint.MAGIC + json.dumps(header).encode() + b"\n" + payload)


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array))
    return buffer.getvalue()


CLI_EDITS = [
    ("negative-lr", lambda m, a: m["config"].update(lr=-0.1), r"--lr must be a finite number > 0, got '-0.1'"),
    ("lr-as-text", lambda m, a: m["config"].update(lr="0.1"), r"the saved config's 'lr' is '0.1' \(str\)"),
    ("hidden-as-text", lambda m, a: m["config"].update(hidden="8"), r"the saved config's 'hidden' is '8'"),
    ("unknown-setting", lambda m, a: m["config"].update(colour="red"), r"the saved config has unknown settings colour"),
    ("missing-setting", lambda m, a: m["config"].pop("seed"), r"the saved config has no 'seed'"),
    ("seed-out-of-range", lambda m, a: m["config"].update(seed=2**40), r"--seed must be an integer from 0 to 4,294,967,295"),
    ("step-mismatch", lambda m, a: m.update(step=5), r"step 5 does not match epoch 2 at 19 steps per epoch"),
    ("inside-without-partial", lambda m, a: m.update(step=40), r"metrics 'partial_epoch' does not hold the loss sum of its 2 steps"),
    ("partial-of-other-steps", lambda m, a: (m.update(step=40), m["metrics"].update(partial_epoch={"steps": 3, "loss_sum": 1.0})), r"'partial_epoch' does not hold the loss sum of its 2 steps"),
    ("partial-sum-nan", lambda m, a: (m.update(step=40), m["metrics"].update(partial_epoch={"steps": 2, "loss_sum": float("nan")})), r"'partial_epoch' does not hold"),
    ("partial-at-epoch-end", lambda m, a: m["metrics"].update(partial_epoch={"steps": 0, "loss_sum": 1.0}), r"'partial_epoch' does not hold the loss sum of its 0 steps"),
    ("first-loss-text", lambda m, a: m["metrics"].update(first_loss="2.3"), r"metrics 'first_loss' is not a finite number"),
    ("short-history", lambda m, a: m["metrics"].update(train_loss=[1.0]), r"metrics 'train_loss' is not a list of 2 numbers"),
    ("history-of-text", lambda m, a: m["metrics"].update(val_loss=["a", "b"]), r"metrics 'val_loss' is not a list of 2 numbers"),
    ("negative-seconds", lambda m, a: m["metrics"].update(train_seconds=-1), r"metrics 'train_seconds' is not a number >= 0"),
    ("zero-scale", lambda m, a: a.update({"arrays/scale.npy": _npy(np.zeros(64))}), r"the feature scale holds values <= 0"),
    ("short-mean", lambda m, a: a.update({"arrays/mean.npy": _npy(np.zeros(3))}), r"the feature mean is missing or misshapen"),
    ("nan-param", lambda m, a: a.update({"params[0]['b'].npy": _npy(np.full(8, np.nan, np.float32))}), r"holds 8 NaN or infinite values"),
    ("wrong-shape", lambda m, a: a.update({"params[0]['b'].npy": _npy(np.zeros(9, np.float32))}), r"params\[0\]\['b'\] is float32\[9\] but the model needs float32\[8\]"),
    ("other-spec", lambda m, a: m["spec"].update(sizes=[64, 9, 10]), r"holds a 64-9-10 \(relu, linear\) network but a 64-8-10"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "change", "match"), CLI_EDITS, ids=[c[0] for c in CLI_EDITS])
def test_an_edited_checkpoint_is_refused_in_one_line_and_kept(capsys, tmp_path, saved_run, case, change, match):  # fmt: skip
    run = copy_run(saved_run, tmp_path / "run")
    newest = checkpoint.resolve(run)
    _edit(newest, change)
    before = snapshot(run)
    code, _, stderr = train(capsys, "--resume", run, "--epochs", "3", "--quiet")
    assert code == 2, stderr
    assert stderr.count("\n") == 1 and stderr.startswith("jaxbp train: error: ")
    assert __import__("re").search(match, stderr), stderr
    assert snapshot(run) == before
