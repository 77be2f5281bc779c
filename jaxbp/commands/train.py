"""``jaxbp train``: train an MLP on the bundled digits or on your own data, with checkpoints.

The run is checked and built first (:mod:`jaxbp.prepare`: nothing is written when a flag, the
data or a checkpoint is wrong), then its output folder is claimed (:mod:`jaxbp.run_folder`: new or
its own run, locked against a second run). Then it trains one epoch per call of the compiled
``jaxbp.fit`` (``start_epoch`` and the optimizer state carry over, so the result is bitwise that
of one long call), evaluates the validation set, updates the progress display and saves a
checkpoint between epochs.

Exit codes (see docs/guarantees.md): 0 done, 2 bad input, 3 diverged, 4 a write failed (full
disk), 130 Ctrl-C, 143 SIGTERM. Ctrl-C or SIGTERM finishes the current epoch and saves; a second
one stops at once (:mod:`jaxbp._signals`).
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

from jaxbp import (
    _files,
    _signals,
    build,
    checkpoint,
    config,
    data,
    divergence,
    metrics,
    run_folder,
)
from jaxbp.cli import UsageError
from jaxbp.prepare import Prepared, prepare
from jaxbp.progress import Progress, plural
from jaxbp.train import fit

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
        ".json model file), on the bundled digits, on MNIST-1D or on your own data (.csv/.npz), with "
        "a progress bar, metrics, a plot, and checkpoints that resume exactly. Exit codes: 0 "
        "done, 2 bad input, 3 diverged, 4 a write failed, 130 Ctrl-C, 143 SIGTERM. Details: "
        "docs/train.md and docs/guarantees.md.",
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
    """The epoch loop. With ``--debug-nans`` the in-program guard is off, so NaNs reach the
    program's outputs, where ``jax_debug_nans`` re-runs the step op by op and names the primitive."""
    cfg, spec, out = run.config, run.spec, run.out
    classification = cfg.task == "classification"
    history = {key: list(run.metrics.get(key, [])) for key in metrics.EPOCH_KEYS}
    summary: dict[str, Any] = {
        "data": run.data_name,
        "data_sha256": run.metrics.get("data_sha256", run.data_sha256),
        "examples": {"train": len(run.train[0]), "val": len(run.val[0]), "test": len(run.test[0])},
        "model": build.model_name(spec, cfg),
        "config": cfg.to_json(),
        "train_seconds": float(run.metrics.get("train_seconds", 0.0)),
    }
    if "data_changed_at_epoch" in run.metrics:
        summary["data_changed_at_epoch"] = run.metrics["data_changed_at_epoch"]
        print(
            f"note: {run.data_name} differs from the data of the checkpoint; not an exact continuation"
        )
    if not options.quiet:
        print(_banner(run))
    params, opt_state, epoch, step = run.params, run.opt_state, run.epoch, run.step
    started, wall_before = time.perf_counter(), float(run.metrics.get("wall_seconds", 0.0))

    def save() -> Path:
        summary["wall_seconds"] = wall_before + time.perf_counter() - started
        state = checkpoint.Checkpoint(
            params,
            opt_state,
            np.asarray(jax.random.key_data(run.key)),
            epoch,
            step,
            cfg.to_json(),
            {**summary, **history},
            {"mean": run.mean, "scale": run.scale},
            spec,
        )
        path = checkpoint.save(out, state, keep=options.keep)
        metrics.write_json(out / "metrics.json", {**summary, "epochs_done": epoch, **history})
        return path

    last_saved = checkpoint.path_for(out, epoch) if epoch else save()
    progress = Progress(cfg.epochs, epoch, quiet=options.quiet)
    diverged = None
    while epoch < cfg.epochs and not stopper.requested:
        tick = time.perf_counter()
        # the blow-up rule compares with the run's first loss, not each epoch's
        reference = float(history["train_loss"][0]) if history["train_loss"] else None
        reference = reference if reference is not None and np.isfinite(reference) else None
        new_params, fit_history = fit(
            spec,
            cfg.loss,
            params,
            *run.train,
            lr=run.lr,
            epochs=1,
            batch_size=cfg.batch_size,
            key=run.key,
            optimizer=run.optimizer,
            opt_state=opt_state,
            start_epoch=epoch,
            stop_on_nonfinite=not options.debug_nans,
            reference_loss=reference,
        )
        step_losses = np.asarray(fit_history["loss"], np.float64)
        first = history["train_loss"][0] if history["train_loss"] else step_losses[0]
        diverged = divergence.find(fit_history, step_losses, first, new_params, step, epoch)
        if diverged is not None:
            kept = new_params if diverged.pop("new_params_finite") else params
            divergence.save_last_finite(out / "last_finite_params.npz", kept)
            break
        params, opt_state = new_params, fit_history.get("opt_state")
        epoch, step = epoch + 1, step + run.steps_per_epoch
        val_loss, val_accuracy = metrics.evaluate(
            spec, cfg.loss, params, *run.val, classification=classification
        )
        summary["train_seconds"] += time.perf_counter() - tick
        values = (
            metrics.epoch_train_loss(step_losses),
            val_loss,
            val_accuracy,
            time.perf_counter() - tick,
        )
        for key, value in zip(metrics.EPOCH_KEYS, values, strict=True):
            history[key].append(value)
        progress.update(epoch, history["train_loss"][-1], val_loss, val_accuracy)
        if epoch % options.checkpoint_every == 0 or epoch == cfg.epochs or stopper.requested:
            last_saved = save()
    progress.close()
    stopped_early = stopper.requested and epoch < cfg.epochs and diverged is None
    summary.update(diverged=diverged, interrupted=stopped_early)
    _finish(run, params, epoch, history, summary, started)
    if diverged is not None:
        print(
            f"jaxbp train: diverged at step {diverged['step']} (epoch {diverged['epoch']}): "
            f"{diverged['reason']}; kept the last good checkpoint {last_saved} and the last "
            f"finite params in {out / 'last_finite_params.npz'}; lower --lr (was {cfg.lr}) and "
            f"start a new run",
            file=sys.stderr,
        )
        return EXIT_DIVERGED
    if stopped_early:
        print(
            f"jaxbp train: stopped by {stopper.name}; saved {last_saved}; continue with: "
            f"jaxbp train --resume {out} --epochs {cfg.epochs}",
            file=sys.stderr,
        )
        return stopper.exit_code
    return 0


def _finish(
    run: Prepared,
    params: Any,
    epoch: int,
    history: dict[str, list[Any]],
    summary: dict[str, Any],
    started: float,
) -> None:
    cfg, out = run.config, run.out
    classification = cfg.task == "classification"
    test_loss, test_accuracy = metrics.evaluate(
        run.spec, cfg.loss, params, *run.test, classification=classification
    )
    this_session = time.perf_counter() - started
    epochs_run = len(history["train_loss"]) - run.epoch
    examples = epochs_run * run.steps_per_epoch * (cfg.batch_size or len(run.train[0]))
    summary.update(
        epochs_done=epoch,
        test_loss=test_loss,
        test_accuracy=test_accuracy,
        wall_seconds=float(run.metrics.get("wall_seconds", 0.0)) + this_session,
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
    start = f"resuming at epoch {run.epoch}" if run.epoch else "new run"
    lines = [
        f"jaxbp train: {run.data_name} -> {run.out} ({start})",
        f"  data      {sizes} examples",
        f"  model     {build.model_line(run.spec, cfg)}",
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
