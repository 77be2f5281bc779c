"""``jaxbp train``: train an MLP on the bundled digits or on your own data, with checkpoints.

The run is checked and built first (:mod:`jaxbp.cli.prepare`: nothing is written when a flag, the
data or a checkpoint is wrong), then its output folder is claimed (:mod:`jaxbp.cli.run_folder`: new or
its own run, locked against a second run). Then one call of ``jaxbp.fit`` trains the whole run
as compiled chunks of steps (:mod:`jaxbp.training.chunked`: bit for bit the steps of one program),
with :mod:`jaxbp.callbacks` between chunks, in this order: the run's record and divergence check
(:meth:`jaxbp.cli.run_log.RunLog.check`), :class:`~jaxbp.callbacks.Validation` at each epoch's end,
the epoch's metrics (:meth:`~jaxbp.cli.run_log.RunLog.record`), :class:`~jaxbp.callbacks.ProgressBar`
(a bar, or plain lines without a terminal), :class:`~jaxbp.callbacks.Checkpoints` (every
``--checkpoint-every`` epochs, every ``--checkpoint-minutes`` inside an epoch if need be, and on
Ctrl-C or SIGTERM, which then stop the run) and :class:`~jaxbp.callbacks.EarlyStopping` for
``--patience``. A run resumes exactly from any checkpoint, inside an epoch too.

Exit codes (see docs/guarantees.md): 0 done, 2 bad input (or a batch of a streamed file that
could not be read), 3 diverged, 4 a write failed (full disk), 130 Ctrl-C, 143 SIGTERM. Ctrl-C or
SIGTERM saves after the chunk in flight; a second one stops at once (:mod:`jaxbp.cli.signals`).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import sys
import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxbp.cli import config, metrics, report, rerun, run_folder, targets
from jaxbp.cli import signals as _signals
from jaxbp.cli.errors import UsageError
from jaxbp.cli.prepare import Prepared, prepare
from jaxbp.cli.run_log import RunLog
from jaxbp.data import files as data
from jaxbp.data.sources import BatchError, FileShrankError
from jaxbp.training import checkpoint, divergence
from jaxbp.training import files as _files
from jaxbp.training import run_checks as _run_checks
from jaxbp.training.callbacks import ProgressBar, Validation
from jaxbp.training.checkpoint_callback import Checkpoints
from jaxbp.training.end_checks import NonFiniteWarning
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
    try:
        prepared = prepare(args)
        claim = run_folder.claim(prepared.out)
    except _INPUT_ERRORS as error:
        if getattr(error, "errno", None) in _DISK_FULL:
            return _write_failed(str(error), None)
        raise UsageError(str(error)) from None
    out = prepared.out
    stopper.exit_note = f"{out} holds no new checkpoint; nothing else was written"
    try:
        nans = jax.debug_nans(True) if prepared.options.debug_nans else contextlib.nullcontext()
        with nans, stopper.deferring(f"the checkpoints in {out} are whole"):
            return _train(prepared, stopper)
    except _files.WriteError as error:
        return _write_failed(f"cannot write {error.filename} ({error.strerror})", prepared, error)
    except FloatingPointError as error:  # from --debug-nans
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else "NaN"
        print(
            f"jaxbp train: stopped by --debug-nans: {first_line}; checkpoints in {out} are intact",
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
    if isinstance(error, checkpoint.NameTakenError):
        free = "move that file out of the run folder"
    if run is None:
        print(f"jaxbp train: error: {problem}; {free} and run again", file=sys.stderr)
        return EXIT_WRITE_FAILED
    saved = checkpoint.list_checkpoints(run.out)
    if isinstance(error, checkpoint.NameTakenError):  # not a checkpoint, though named as one
        saved = [path for path in saved if str(path) != str(error.filename)]
    then = (
        f"jaxbp train --resume {run.out} --epochs {run.config.epochs}"
        if saved
        else "the same command again"
    )
    kept = f"; the saved {saved[-1].name} is intact" if saved else ""
    print(f"jaxbp train: {problem}; {free}, then: {then}{kept}", file=sys.stderr)
    return EXIT_WRITE_FAILED


def _train(run: Prepared, stopper: _signals.Stopper) -> int:
    """One call of ``jaxbp.fit`` over the whole run with the callbacks of :func:`_callbacks`.
    With ``--debug-nans`` the in-program guard is off, so NaNs reach the program's outputs,
    where ``jax_debug_nans`` re-runs the step op by op and names the primitive."""
    cfg, state = run.config, run.state
    log = RunLog(run)
    targets.write(run)
    report.start(run)
    saver, progress, callbacks = _callbacks(run, log, stopper)
    if state.step == 0:
        saver.save(0, state.params, {"epoch": 0, "step_in_epoch": 0, "opt_state": state.opt_state})
    start_epoch, start_step = divmod(state.step, run.steps_per_epoch)
    try:
        with warnings.catch_warnings():
            # a diverged run is reported below, with its step and the last finite state saved
            warnings.simplefilter("ignore", NonFiniteWarning)
            params, history = fit(
                run.model.spec,
                cfg.loss,
                state.params,
                *run.data.train,
                lr=run.model.lr,
                epochs=cfg.epochs - start_epoch,
                batch_size=cfg.batch_size,
                key=state.key,
                optimizer=run.model.optimizer,
                opt_state=state.opt_state,
                start_epoch=start_epoch,
                start_step=start_step,
                stop_on_nonfinite=not run.options.debug_nans,
                reference_loss=log.first_loss,
                callbacks=callbacks,
                validate_every=run.steps_per_epoch,
                chunk_steps=run.options.chunk_steps or None,
            )
    except (BatchError, FileShrankError) as error:  # FileShrankError: validation's rows
        return _read_failed(run, saver, progress, getattr(error, "problem", str(error)))
    _close(progress)
    try:
        return _end(run, log, saver, stopper, params, history)
    except FileShrankError as error:  # the test set's rows, after the last state is saved
        return _read_failed(run, saver, progress, str(error))


def _read_failed(run: Prepared, saver: Checkpoints, progress: ProgressBar | None, problem: str) -> int:  # fmt: skip
    """A streamed data file could not be read: save the state, say so in one line; exit code 2."""
    _close(progress)
    kept = saver.flush() or _newest(run, saver)
    print(f"jaxbp train: error: {problem} Saved the state before it: {kept}; fix the "
          f"data, then: jaxbp train --resume {run.out} --epochs {run.config.epochs}", file=sys.stderr)  # fmt: skip
    return 2


def _callbacks(
    run: Prepared, log: RunLog, stopper: _signals.Stopper
) -> tuple[Checkpoints, ProgressBar | None, list[Any]]:
    """``fit``'s callbacks for the run, in order (see the module's docstring); no progress
    display with ``--quiet``."""
    options, spe = run.options, run.steps_per_epoch
    validation = Validation(functools.partial(_validate, run), spe)
    saver = Checkpoints(
        run.out,
        every=options.checkpoint_every * spe,
        model=run.model.spec,
        key=run.state.key,
        keep=options.keep,
        minutes=options.checkpoint_minutes,
        stop=lambda: stopper.requested,
        initial=run.state.step,
        config=run.config.to_json(),
        arrays=_saved_arrays(run),
        record=log.saved_metrics,
        on_save=log.write_json,
    )
    progress = None
    if not options.quiet:
        progress = ProgressBar(
            run.total_steps,
            run.state.step,
            steps_per_epoch=spe,
            lines=sys.stdout,
            number_format=".4f",
            desc="train",
            examples_per_step=run.config.batch_size or len(run.data.train[0]),
        )
    shown = [] if progress is None else [progress]
    callbacks: list[Any] = [log.check, validation, log.record, *shown, saver]
    if options.patience:
        callbacks.append(log.early_stopping(options.patience))
    return saver, progress, callbacks


def _saved_arrays(run: Prepared) -> dict[str, Any]:
    """The arrays every checkpoint holds besides the state: the feature scaling, and the target
    scaling of a regression run that standardises its targets."""
    arrays: dict[str, Any] = {"mean": run.data.mean, "scale": run.data.scale}
    if run.data.target_mean is not None:
        arrays["target_mean"] = run.data.target_mean
        arrays["target_scale"] = np.float64(run.data.target_scale)
    return arrays


def _close(progress: ProgressBar | None) -> None:
    if progress is not None:
        progress.close()


def _validate(run: Prepared, params: Any) -> dict[str, Any]:
    """The validation loss and accuracy (``None`` for regression) of ``params``."""
    classification = run.config.task == "classification"
    loss, accuracy = metrics.evaluate(
        run.model.spec, run.config.loss, params, *run.data.val, classification=classification
    )
    return {"val_loss": loss * run.data.loss_factor, "val_accuracy": accuracy}


def _newest(run: Prepared, saver: Checkpoints) -> Path:
    """The newest checkpoint: the last one saved, or the one the run resumed from."""
    return saver.saved[-1] if saver.saved else checkpoint.list_checkpoints(run.out)[-1]


def _end(
    run: Prepared,
    log: RunLog,
    saver: Checkpoints,
    stopper: _signals.Stopper,
    params: Any,
    history: dict[str, Any],
) -> int:
    """After ``fit``: save the last state (or the last finite params of a diverged run), test,
    write the metrics and the plot, and say how the run ended; the exit code."""
    out, spe = run.out, run.steps_per_epoch
    finite = _run_checks.all_finite(params)
    diverged = log.diverged or divergence.from_guard(history, spe, finite)
    if diverged is None:
        saver.flush()
    else:  # else the params at the last chunk's end, which the log checked
        divergence.save_last_finite(
            out / "last_finite_params.npz", params if finite else log.params
        )
    if diverged is not None:
        diverged = {**diverged, "rerun": rerun.command(run.config, out)}
    stopped_early = history.get("stop") is not None and diverged is None
    signalled = stopped_early and stopper.requested
    log.summary.update(
        diverged=diverged, interrupted=signalled, early_stopped=stopped_early and not signalled
    )
    if stopped_early and not signalled:
        print(
            f"early stop: the validation loss has not improved for {run.options.patience} "
            f"epochs (best {log.best_val_loss():.6g})"
        )
    report.finish(run, log)
    if diverged is not None:
        print(
            f"jaxbp train: diverged at step {diverged['step']} (epoch {diverged['epoch']}): "
            f"{diverged['reason']}; kept the last good checkpoint {_newest(run, saver)} and the "
            f"last finite params in {out / 'last_finite_params.npz'}; start again at a lower "
            f"rate in a new folder: {diverged['rerun']}",
            file=sys.stderr,
        )
        return EXIT_DIVERGED
    if signalled:
        print(
            f"jaxbp train: stopped by {stopper.name}; saved {_newest(run, saver)}; continue "
            f"with: jaxbp train --resume {out} --epochs {run.config.epochs}",
            file=sys.stderr,
        )
        return stopper.exit_code
    return 0
