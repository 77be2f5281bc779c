"""``jaxbp train``: train an MLP on the bundled digits or on your own data, with checkpoints.

The run is checked and built first (:mod:`jaxbp.cli.prepare`: nothing is written when a flag, the
data or a checkpoint is wrong), then its output folder is claimed (:mod:`jaxbp.cli.run_folder`: new or
its own run, locked against a second run). Then one call of ``jaxbp.fit`` trains the whole run
as compiled chunks of steps (:mod:`jaxbp.training.chunked`: bit for bit the steps of one program), and
its callback between chunks (:class:`_Between`) validates at each epoch's end, updates the
progress display, saves checkpoints (every ``--checkpoint-every`` epochs, every
``--checkpoint-minutes``, inside an epoch if need be) and stops on Ctrl-C, SIGTERM or
``--patience``. A run resumes exactly from any checkpoint, inside an epoch too.

Exit codes (see docs/guarantees.md): 0 done, 2 bad input (or a batch of a streamed file that
could not be read), 3 diverged, 4 a write failed (full disk), 130 Ctrl-C, 143 SIGTERM. Ctrl-C or
SIGTERM saves after the chunk in flight; a second one stops at once (:mod:`jaxbp.cli.signals`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxbp.cli import config, metrics, run_folder
from jaxbp.cli import model as train_model
from jaxbp.cli import signals as _signals
from jaxbp.cli.errors import UsageError
from jaxbp.cli.prepare import Prepared, prepare
from jaxbp.cli.progress import Progress, plural
from jaxbp.data import files as data
from jaxbp.data.sources import BatchError
from jaxbp.training import checkpoint, divergence
from jaxbp.training import files as _files
from jaxbp.training import run_checks as _run_checks
from jaxbp.training.callbacks import EarlyStopping
from jaxbp.training.fit import fit

EXIT_DIVERGED = 3
EXIT_WRITE_FAILED = 4
_INPUT_ERRORS = (
    config.ConfigError,
    data.DataError,
    checkpoint.CheckpointError,
    run_folder.FolderError,
)
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a network (default: an MLP on the bundled digits) with progress, plots and "
        "checkpoints",
        description="Train an MLP, or a network given by --model (a preset such as cnn, or a "
        ".json model file), on the bundled digits, on MNIST-1D or on your own data (.csv, .npz, "
        "or .npy streamed from disk), with a progress bar, metrics, a plot, and checkpoints that "
        "resume exactly, inside an epoch too. Exit codes: 0 done, 2 bad input, 3 diverged, 4 a "
        "write failed, 130 Ctrl-C, 143 SIGTERM. Details: docs/train.md and docs/guarantees.md.",
    )
    config.add_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    stopper: _signals.Stopper = getattr(args, "stopper", None) or _signals.Stopper("jaxbp train")
    stopper.exit_note = "nothing was written"
    values = vars(args)
    flags = {field.name: values.get(field.name) for field in dataclasses.fields(config.TrainConfig)}
    try:
        options = config.run_options(values)
        run_state = prepare(flags, options.out, options.resume)
        if options.patience and len(run_state.val[0]) == 0:
            raise config.ConfigError(
                "--patience watches the validation loss, but --val-fraction 0 leaves no "
                "validation set; pass --val-fraction 0.1, or drop --patience"
            )
        claim = run_folder.claim(run_state.out)
    except _INPUT_ERRORS as error:
        if getattr(error, "errno", None) in _DISK_FULL:
            return _write_failed(str(error), None)
        raise UsageError(str(error)) from None
    stopper.exit_note = f"{run_state.out} holds no new checkpoint; nothing else was written"
    try:
        nans = jax.debug_nans(True) if options.debug_nans else contextlib.nullcontext()
        with nans, stopper.deferring(f"the checkpoints in {run_state.out} are whole"):
            return _train(run_state, options, stopper)
    except _files.WriteError as error:
        return _write_failed(f"cannot write {error.filename} ({error.strerror})", run_state, error)
    except FloatingPointError as error:  # from --debug-nans
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else "NaN"
        print(
            f"jaxbp train: stopped by --debug-nans: {first_line}; checkpoints in "
            f"{run_state.out} are intact",
            file=sys.stderr,
        )
        return EXIT_DIVERGED
    finally:
        claim.release()


def _write_failed(problem: str, run: Prepared | None, error: OSError | None = None) -> int:
    """One line for a failed write: what, what to free, and how to continue; exit code 4."""
    needed = getattr(error, "nbytes", 0)
    size = f"{needed / 2**20:.1f} MiB" if needed >= 2**20 else f"{max(1, needed // 1024)} KiB"
    free = f"free at least {size}" if needed else "free some space"
    if error is not None and error.errno not in _DISK_FULL:
        free = "fix the folder's permissions or mount"
    if run is None:
        print(f"jaxbp train: error: {problem}; {free} and run again", file=sys.stderr)
        return EXIT_WRITE_FAILED
    saved = checkpoint.list_checkpoints(run.out)
    then = (
        f"jaxbp train --resume {run.out} --epochs {run.config.epochs}"
        if saved
        else "the same command again"
    )
    kept = f"; the saved {saved[-1].name} is intact" if saved else ""
    print(f"jaxbp train: {problem}; {free}, then: {then}{kept}", file=sys.stderr)
    return EXIT_WRITE_FAILED


def _train(run: Prepared, options: config.RunOptions, stopper: _signals.Stopper) -> int:
    """One call of ``jaxbp.fit`` over the whole run, with :class:`_Between` as its callback
    between compiled chunks (and :class:`jaxbp.EarlyStopping` after it with ``--patience``).
    With ``--debug-nans`` the in-program guard is off, so NaNs reach the program's outputs,
    where ``jax_debug_nans`` re-runs the step op by op and names the primitive."""
    cfg, out = run.config, run.out
    between = _Between(run, options, stopper)
    if not options.quiet:
        print(_banner(run))
    if run.step == 0:
        between.save()
    callbacks: list[Any] = [between]
    if options.patience:
        callbacks.append(between.early_stopping(options.patience))
    start_epoch, start_step = divmod(run.step, run.steps_per_epoch)
    try:
        params, fit_history = fit(
            run.spec,
            cfg.loss,
            run.params,
            *run.train,
            lr=run.lr,
            epochs=cfg.epochs - start_epoch,
            batch_size=cfg.batch_size,
            key=run.key,
            optimizer=run.optimizer,
            opt_state=run.opt_state,
            start_epoch=start_epoch,
            start_step=start_step,
            stop_on_nonfinite=not options.debug_nans,
            reference_loss=between.first_loss,
            callbacks=callbacks,
            validate_every=run.steps_per_epoch,
            chunk_steps=options.chunk_steps or None,
        )
    except BatchError as error:
        between.progress.close()
        kept = between.save() if between.unsaved else between.last_saved
        print(f"jaxbp train: error: {error.problem} Saved the "
              f"state before it: {kept}; fix the data, then: jaxbp train --resume {out} "
              f"--epochs {cfg.epochs}", file=sys.stderr)  # fmt: skip
        return 2
    between.progress.close()
    finite = _run_checks.all_finite(params)
    diverged = between.diverged or divergence.from_guard(fit_history, run.steps_per_epoch, finite)
    if diverged is None:
        if between.unsaved:
            between.save()
    else:  # else the params at the last chunk's end, which the callback checked
        kept = params if finite else between.params
        divergence.save_last_finite(out / "last_finite_params.npz", kept)
    stop = fit_history.get("stop")
    stopped_early = stop is not None and diverged is None
    signalled = stopped_early and stopper.requested
    between.summary.update(
        diverged=diverged,
        interrupted=signalled,
        early_stopped=stopped_early and not signalled,
    )
    if stopped_early and not signalled:
        print(
            f"early stop: the validation loss has not improved for {options.patience} epochs "
            f"(best {between.best_val_loss():.6g})"
        )
    _finish(run, between)
    if diverged is not None:
        print(
            f"jaxbp train: diverged at step {diverged['step']} (epoch {diverged['epoch']}): "
            f"{diverged['reason']}; kept the last good checkpoint {between.last_saved} and the "
            f"last finite params in {out / 'last_finite_params.npz'}; lower --lr (was "
            f"{cfg.lr}) and start a new run",
            file=sys.stderr,
        )
        return EXIT_DIVERGED
    if signalled:
        print(
            f"jaxbp train: stopped by {stopper.name}; saved {between.last_saved}; continue "
            f"with: jaxbp train --resume {out} --epochs {cfg.epochs}",
            file=sys.stderr,
        )
        return stopper.exit_code
    return 0


class _Between:
    """``fit``'s callback for ``jaxbp train``, after every compiled chunk: the finite check,
    the epoch's metrics and validation at its end, the progress display, checkpoints (every
    ``--checkpoint-every`` epochs, every ``--checkpoint-minutes``, and on a signal), and a stop on
    Ctrl-C or SIGTERM. It holds the run's state as of its last call (what :meth:`save` writes)."""

    __name__ = "jaxbp train"

    def __init__(self, run: Prepared, options: config.RunOptions, stopper: _signals.Stopper):
        self.run, self.options, self.stopper = run, options, stopper
        cfg, saved = run.config, run.metrics
        self.history = {key: list(saved.get(key, [])) for key in metrics.EPOCH_KEYS}
        self.summary: dict[str, Any] = {
            "data": run.data_name,
            "data_sha256": saved.get("data_sha256", run.data_sha256),
            "examples": {
                "train": len(run.train[0]),
                "val": len(run.val[0]),
                "test": len(run.test[0]),
            },
            "model": train_model.model_name(run.spec, cfg),
            "config": cfg.to_json(),
            "train_seconds": float(saved.get("train_seconds", 0.0)),
        }
        for key in ("data_changed_at_epoch", "first_loss"):
            if key in saved:
                self.summary[key] = saved[key]
        if "data_changed_at_epoch" in saved:
            print(
                f"note: {run.data_name} differs from the data of the checkpoint; not an exact "
                f"continuation"
            )
        self.params, self.opt_state = run.params, run.opt_state
        self.step = run.step
        self.epoch_losses: list[np.ndarray] = []  # this session's steps of the current epoch
        partial = saved.get("partial_epoch", {"steps": 0, "loss_sum": 0.0})
        self.epoch_loss_sum = float(partial["loss_sum"])
        self.diverged: dict[str, Any] | None = None
        self.unsaved = False
        self.last_saved = checkpoint.list_checkpoints(run.out)[-1] if run.step else None
        self.session_start = self.epoch_start = self.last_save_time = time.perf_counter()
        self.wall_before = float(saved.get("wall_seconds", 0.0))
        spe = run.steps_per_epoch
        self.progress = Progress(cfg.epochs * spe, run.step, spe, quiet=options.quiet)

    @property
    def first_loss(self) -> float | None:
        """The run's first loss, which the blow-up rule compares with (``None`` before step 0)."""
        value = self.summary.get("first_loss")
        if value is None and self.history["train_loss"]:
            value = self.history["train_loss"][0]  # a run saved before first_loss was kept
        return float(value) if value is not None and np.isfinite(value) else None

    def __call__(self, step: int, params: Any, chunk: dict[str, Any]) -> str | None:
        run = self.run
        losses = np.asarray(chunk["losses"], np.float64)
        # the chunk's end: its losses are ready; later device work here (the finite check,
        # validation) waits for the chunk dispatched after it, so the clock is read now
        ended = time.perf_counter()
        first = self.step
        if "first_loss" not in self.summary and first == 0 and losses.size:
            self.summary["first_loss"] = float(losses[0])
        if self.options.debug_nans and self.first_loss is not None:
            blown = divergence.blowup(losses, self.first_loss, first)
            if blown is not None:
                self.diverged = divergence.report(blown[0], run.steps_per_epoch, blown[1], [])
                return "stop"
        if not _run_checks.all_finite(params):  # the chunk's last update overflowed
            reason = divergence.NONFINITE_PARAMS
            self.diverged = divergence.report(step - 1, run.steps_per_epoch, reason, [])
            return "stop"
        self.params, self.step = params, step
        self.opt_state = chunk["opt_state"] if run.optimizer is not None else None
        self.epoch_loss_sum += float(np.sum(losses))
        self.epoch_losses.append(losses)
        self.unsaved = True
        epoch, inside = divmod(step, run.steps_per_epoch)
        if inside == 0:
            chunk["val_loss"] = self._end_epoch(epoch, ended)
        else:
            self.progress.step(step, float(np.mean(losses)))
        now = time.perf_counter()
        minutes = self.options.checkpoint_minutes
        if (
            (inside == 0 and (epoch % self.options.checkpoint_every == 0 or epoch == run.config.epochs))
            or (minutes and now - self.last_save_time >= 60 * minutes)
            or self.stopper.requested
        ):  # fmt: skip
            self.save()
        return "stop" if self.stopper.requested else None

    def _end_epoch(self, epoch: int, ended: float) -> float:
        """Record the epoch that ended at ``ended``: its training loss, validation and time."""
        run = self.run
        cfg = run.config
        steps = np.concatenate(self.epoch_losses or [np.zeros(0)])
        if steps.size == run.steps_per_epoch:  # the whole epoch ran in this session
            train_loss = metrics.epoch_train_loss(steps)
        else:  # resumed inside it: the steps before come as a sum
            train_loss = self.epoch_loss_sum / run.steps_per_epoch
        val_loss, val_accuracy = metrics.evaluate(
            run.spec, cfg.loss, self.params, *run.val, classification=cfg.task == "classification"
        )
        seconds = ended - self.epoch_start  # from the previous epoch's last chunk to this one's
        self.summary["train_seconds"] += seconds
        for key, value in zip(
            metrics.EPOCH_KEYS, (train_loss, val_loss, val_accuracy, seconds), strict=True
        ):
            self.history[key].append(value)
        self.epoch_losses, self.epoch_loss_sum = [], 0.0
        self.epoch_start = ended
        self.progress.update(epoch, train_loss, val_loss, val_accuracy)
        return val_loss

    def best_val_loss(self) -> float:
        finite = [v for v in self.history["val_loss"] if v is not None and np.isfinite(v)]
        return min(finite) if finite else float("nan")

    def early_stopping(self, patience: int) -> EarlyStopping:
        """``--patience``: stop after ``patience`` epochs without a better validation loss,
        counting the epochs of the run before a resume."""
        stopper = EarlyStopping(patience - 1, metric="val_loss")
        for epoch, value in enumerate(self.history["val_loss"], start=1):
            if value is not None:
                stopper(epoch * self.run.steps_per_epoch, self.params, {"val_loss": value})
        return stopper

    def save(self) -> Path:
        """A checkpoint of the state as of the last call, and ``metrics.json``."""
        run = self.run
        epoch, inside = divmod(self.step, run.steps_per_epoch)
        self.summary["wall_seconds"] = self.wall_before + time.perf_counter() - self.session_start
        extra: dict[str, Any] = {}
        if inside:
            extra["partial_epoch"] = {"steps": inside, "loss_sum": self.epoch_loss_sum}
        state = checkpoint.Checkpoint(
            jax.device_get(self.params),
            jax.device_get(self.opt_state),
            np.asarray(jax.random.key_data(run.key)),
            epoch,
            self.step,
            run.config.to_json(),
            {**self.summary, **self.history, **extra},
            {"mean": run.mean, "scale": run.scale},
            run.spec,
        )
        self.last_saved = checkpoint.save(
            run.out, state, keep=self.options.keep, step_in_epoch=inside
        )
        metrics.write_json(
            run.out / "metrics.json",
            {**self.summary, "epochs_done": epoch, "steps_done": self.step, **self.history},
        )
        self.unsaved, self.last_save_time = False, time.perf_counter()
        return self.last_saved


def _finish(run: Prepared, state: _Between) -> None:
    """Test the final parameters, write ``metrics.json`` and the plot, and say what was written."""
    cfg, out, history, summary = run.config, run.out, state.history, state.summary
    classification = cfg.task == "classification"
    test_loss, test_accuracy = metrics.evaluate(
        run.spec, cfg.loss, state.params, *run.test, classification=classification
    )
    this_session = time.perf_counter() - state.session_start
    examples = (state.step - run.step) * (cfg.batch_size or len(run.train[0]))
    epoch = state.step // run.steps_per_epoch
    summary.update(
        epochs_done=epoch,
        steps_done=state.step,
        test_loss=test_loss,
        test_accuracy=test_accuracy,
        wall_seconds=state.wall_before + this_session,
        examples_per_second=examples / this_session if examples else None,
    )
    written = [metrics.write_json(out / "metrics.json", {**summary, **history})]
    if history["train_loss"]:
        try:
            title = f"{run.data_name} {summary['model']}"
            written.append(metrics.plot_curves(out / "curves.png", history, title))
        except ModuleNotFoundError:
            print("note: no plot: matplotlib is not installed (pip install 'jaxbp[train]')")
    saved = checkpoint.list_checkpoints(out)
    written += saved[-1:]
    if len(run.test[0]) == 0:
        print("no test set (--test-fraction 0)")
    elif classification:
        print(
            f"test accuracy {test_accuracy:.4f} on {len(run.test[0])} examples, "
            f"test loss {test_loss:.4f}"
        )
    else:
        print(f"test loss ({cfg.loss}) {test_loss:.6g} on {len(run.test[0])} examples")
    print(
        f"{plural(epoch, 'epoch')} done, {this_session:.1f} s this session; wrote "
        f"{', '.join(map(str, written))}"
    )


def _banner(run: Prepared) -> str:
    """The run's settings on a few short lines."""
    cfg = run.config
    parts = (("train", run.train), ("validation", run.val), ("test", run.test))
    sizes = " / ".join(f"{len(part[0])} {name}" for name, part in parts)
    schedule = {
        "constant": "constant",
        "exponential": f"x{cfg.decay}/epoch",
        "cosine": f"cosine over {cfg.decay_epochs} epochs",
    }[cfg.schedule]
    optimizer = cfg.optimizer + (f" {cfg.momentum}" if cfg.optimizer == "momentum" else "")
    epoch, inside = divmod(run.step, run.steps_per_epoch)
    start = f"resuming at epoch {epoch}" if run.step else "new run"
    start += f", step {inside}" if inside else ""
    lines = [
        f"jaxbp train: {run.data_name} -> {run.out} ({start})",
        f"  data      {sizes} examples",
        f"  model     {train_model.model_line(run.spec, cfg)}",
        f"  training  {optimizer}, lr {cfg.lr} ({schedule}), batch {cfg.batch_size or 'full'}, "
        f"{plural(cfg.epochs, 'epoch')}, {plural(run.steps_per_epoch, 'step')} each, seed {cfg.seed}",
    ]
    total = cfg.epochs * run.steps_per_epoch
    if total < SMALL_RUN_STEPS:
        epochs = -(-SMALL_RUN_STEPS // run.steps_per_epoch)
        constant = " --schedule constant" if cfg.schedule == "exponential" else ""
        lines.append(
            f"  note      only {plural(total, 'step')} in all; small data needs more: "
            f"--epochs {epochs}{constant} gives {SMALL_RUN_STEPS}"
        )
    return "\n".join(lines)


#: Below this many steps in all, the banner suggests more epochs (the defaults suit ~1000+ examples).
SMALL_RUN_STEPS = 1000
