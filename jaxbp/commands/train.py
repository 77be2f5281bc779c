"""``jaxbp train``: train an MLP on the bundled digits or on your own data, with checkpoints.

The run is checked and built first (:mod:`jaxbp.prepare`: nothing is written when a flag, the data
or a checkpoint is wrong). Then it trains one epoch per call of the compiled ``jaxbp.fit``
(``start_epoch`` and the optimizer state carry over, so the result is bitwise that of one long
call), evaluates the validation set, updates the progress display and saves a checkpoint between
epochs. Ctrl-C finishes the current epoch, saves, and exits with code 130; a non-finite loss or
gradient stops the run at that step without overwriting the last good checkpoint (exit code 3).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxbp import _files, checkpoint, config, data, metrics
from jaxbp.cli import UsageError
from jaxbp.prepare import Prepared, prepare
from jaxbp.progress import Progress
from jaxbp.train import fit

EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130
_FLAGS = [
    ("--data", "FILE", "'digits' (default, bundled with scikit-learn) or a .csv/.npz file"),
    ("--target", "COLUMN", "CSV target column name (default: target)"),
    ("--task", "TASK", "classification (default) or regression"),
    ("--classes", "K", "number of classes (default: largest label + 1)"),
    ("--hidden", "SIZES", "hidden layer sizes, comma separated (default: 256,256; 'none' for none)"),
    ("--activation", "NAME", "hidden-layer activation: relu (default), tanh, sigmoid, linear"),
    ("--loss", "NAME", "softmax_cross_entropy (classification default), cross_entropy, mse (regression default), half_se"),
    ("--optimizer", "NAME", "sgd (default, the hand-written step), momentum or adam (optax)"),
    ("--lr", "RATE", "learning rate (default: 0.1)"),
    ("--momentum", "M", "momentum for --optimizer momentum (default: 0.9)"),
    ("--schedule", "NAME", "exponential (default), constant or cosine"),
    ("--decay", "FACTOR", "exponential schedule: factor per epoch (default: 0.97)"),
    ("--decay-epochs", "N", "cosine schedule: epochs to decay to 0 (default: 40)"),
    ("--batch-size", "N", "examples per step, or 'full' (default: 32)"),
    ("--epochs", "N", "total epochs, counting those already done when resuming (default: 40)"),
    ("--seed", "N", "seed for the split, the initialisation and the shuffling (default: 0)"),
    ("--val-fraction", "F", "fraction held out for validation (default: 0.1)"),
    ("--test-fraction", "F", "fraction held out for the test (default: 0.2)"),
    ("--dtype", "DTYPE", "float32 (default) or float64 (needs JAX_ENABLE_X64=1)"),
]  # fmt: skip


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train an MLP (default: the bundled digits) with progress, plots and checkpoints",
        description="Train an MLP on the bundled digits or on your own data (.csv/.npz), with "
        "a progress bar, metrics, a plot, and checkpoints that resume exactly. Details: docs/train.md.",
    )
    for flag, metavar, text in _FLAGS:
        parser.add_argument(flag, default=None, metavar=metavar, help=text)
    parser.add_argument("--out", metavar="DIR", help="output directory (default: runs/<data name>)")
    parser.add_argument("--resume", metavar="DIR_OR_FILE", help="continue a run exactly from its newest checkpoint (or this checkpoint file)")  # fmt: skip
    parser.add_argument("--keep", default="3", metavar="K", help="checkpoints to keep (default: 3)")
    parser.add_argument("--checkpoint-every", default="1", metavar="EPOCHS", help="save every N epochs (default: 1; always at the end)")  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no per-epoch output")
    parser.add_argument(
        "--debug-nans",
        action="store_true",
        help="turn on jax_debug_nans: the in-program guard is off, and JAX names the operation that made the first NaN",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    flags = {
        flag[2:].replace("-", "_"): getattr(args, flag[2:].replace("-", "_"))
        for flag, _, _ in _FLAGS
    }
    try:
        keep = _positive("--keep", args.keep)
        every = _positive("--checkpoint-every", args.checkpoint_every)
        run_state = prepare(flags, args.out, args.resume)
    except (config.ConfigError, data.DataError, checkpoint.CheckpointError) as error:
        raise UsageError(str(error)) from None
    except KeyboardInterrupt:
        print("jaxbp train: interrupted before training started; nothing was written", file=sys.stderr)  # fmt: skip
        return EXIT_INTERRUPTED
    nans = jax.debug_nans(True) if args.debug_nans else contextlib.nullcontext()
    with _interrupt_flag() as interrupted, nans:
        try:
            return _train(
                run_state, keep, every, args.quiet, interrupted, guard=not args.debug_nans
            )
        except FloatingPointError as error:  # from --debug-nans
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else "NaN"
            print(
                f"jaxbp train: stopped by --debug-nans: {first_line}; checkpoints in "
                f"{run_state.out} are intact",
                file=sys.stderr,
            )
            return EXIT_DIVERGED
        except KeyboardInterrupt:
            print(
                f"jaxbp train: interrupted again; stopped at once. Checkpoints in {run_state.out} "
                f"are intact: jaxbp train --resume {run_state.out}",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED


def _positive(flag: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise config.ConfigError(f"{flag} must be an integer >= 1, got {text!r}")
    return value


@contextlib.contextmanager
def _interrupt_flag() -> Iterator[Callable[[], bool]]:
    """The first Ctrl-C sets a flag (checked between epochs); a second one interrupts at once."""
    count = [0]

    def handler(signum: int, frame: Any) -> None:
        count[0] += 1
        if count[0] > 1:
            raise KeyboardInterrupt
        print(
            "\njaxbp train: Ctrl-C: saving after this epoch (Ctrl-C again stops at once)",
            file=sys.stderr,
        )

    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: count[0] > 0
    finally:
        signal.signal(signal.SIGINT, previous)


def _train(
    run: Prepared,
    keep: int,
    every: int,
    quiet: bool,
    interrupted: Callable[[], bool],
    *,
    guard: bool,
) -> int:
    """The epoch loop. ``guard=False`` (with --debug-nans) lets NaNs reach the program's outputs,
    where ``jax_debug_nans`` re-runs the step op by op and names the primitive that made them."""
    cfg, spec, out = run.config, run.spec, run.out
    classification = cfg.task == "classification"
    history = {key: list(run.metrics.get(key, [])) for key in metrics.EPOCH_KEYS}
    summary: dict[str, Any] = {
        "data": run.data_name,
        "data_sha256": run.metrics.get("data_sha256", run.data_sha256),
        "examples": {"train": len(run.train[0]), "val": len(run.val[0]), "test": len(run.test[0])},
        "model": "-".join(map(str, spec.sizes)),
        "config": cfg.to_json(),
        "train_seconds": run.metrics.get("train_seconds", 0.0),
    }
    if "data_changed_at_epoch" in run.metrics:
        summary["data_changed_at_epoch"] = run.metrics["data_changed_at_epoch"]
        print(
            f"note: {run.data_name} differs from the data of the checkpoint; not an exact continuation"
        )
    if not quiet:
        print(_banner(run))
    params, opt_state, epoch, step = run.params, run.opt_state, run.epoch, run.step
    started, wall_before = time.perf_counter(), run.metrics.get("wall_seconds", 0.0)

    def save() -> Path:
        summary["wall_seconds"] = wall_before + time.perf_counter() - started
        state = checkpoint.Checkpoint(
            spec, params, jax.tree.leaves(opt_state), np.asarray(jax.random.key_data(run.key)),
            epoch, step, cfg.to_json(), {**summary, **history}, {"mean": run.mean, "scale": run.scale},
        )  # fmt: skip
        path = checkpoint.save(out, state, keep=keep)
        metrics.write_json(out / "metrics.json", {**summary, "epochs_done": epoch, **history})
        return path

    last_saved = checkpoint.path_for(out, epoch) if epoch else save()
    progress = Progress(cfg.epochs, epoch, quiet=quiet)
    diverged = None
    while epoch < cfg.epochs and not interrupted():
        tick = time.perf_counter()
        new_params, fit_history = fit(
            spec, cfg.loss, params, *run.train, lr=run.lr, epochs=1, batch_size=cfg.batch_size,
            key=run.key, optimizer=run.optimizer, opt_state=opt_state, start_epoch=epoch,
            stop_on_nonfinite=guard,
        )  # fmt: skip
        step_losses = np.asarray(fit_history["loss"])
        bad_step = int(fit_history.get("stop_step", -1))
        if bad_step >= 0:
            layers = _bad_layers(fit_history, step_losses[bad_step - step], len(params))
            diverged = {"step": bad_step, "epoch": epoch + 1, "layers": layers}
            _save_last_finite(out, new_params)
            break
        params, opt_state = new_params, fit_history.get("opt_state")
        epoch, step = epoch + 1, step + run.steps_per_epoch
        val_loss, val_accuracy = metrics.evaluate(spec, cfg.loss, params, *run.val, classification=classification)  # fmt: skip
        summary["train_seconds"] += time.perf_counter() - tick
        for key, value in zip(
            metrics.EPOCH_KEYS,
            (
                metrics.epoch_train_loss(step_losses),
                val_loss,
                val_accuracy,
                time.perf_counter() - tick,
            ),
            strict=True,
        ):
            history[key].append(value)
        progress.update(epoch, history["train_loss"][-1], val_loss, val_accuracy)
        if epoch % every == 0 or epoch == cfg.epochs or interrupted():
            last_saved = save()
    progress.close()
    stopped_early = interrupted() and epoch < cfg.epochs and diverged is None
    return _finish(
        run, params, epoch, history, summary, last_saved, diverged, stopped_early, started
    )


def _bad_layers(fit_history: dict[str, Any], bad_loss: Any, num_layers: int) -> list[int]:
    """The layers to blame: those with a non-finite gradient leaf, or every one for a bad loss."""
    if not np.isfinite(bad_loss):
        return list(range(num_layers))
    paths = fit_history["nonfinite_paths"]  # tree paths such as "[1]['w']"
    return sorted({int(path[1 : path.index("]")]) for path in paths})


def _finish(
    run: Prepared, params: Any, epoch: int, history: dict[str, list[Any]],
    summary: dict[str, Any], last_saved: Path, diverged: dict[str, Any] | None,
    interrupted: bool, started: float,
) -> int:  # fmt: skip
    cfg, out = run.config, run.out
    classification = cfg.task == "classification"
    test_loss, test_accuracy = metrics.evaluate(run.spec, cfg.loss, params, *run.test, classification=classification)  # fmt: skip
    this_session = time.perf_counter() - started
    examples = (len(history["train_loss"]) - run.epoch) * run.steps_per_epoch * (cfg.batch_size or len(run.train[0]))  # fmt: skip
    summary.update(
        epochs_done=epoch,
        test_loss=test_loss,
        test_accuracy=test_accuracy,
        wall_seconds=run.metrics.get("wall_seconds", 0.0) + this_session,
        examples_per_second=examples / this_session if examples else None,
        diverged=diverged,
        interrupted=interrupted,
    )
    written = [metrics.write_json(out / "metrics.json", {**summary, **history}), last_saved]
    if history["train_loss"]:
        try:
            written.insert(1, metrics.plot_curves(out / "curves.png", history, f"{run.data_name} {summary['model']}"))  # fmt: skip
        except ModuleNotFoundError:
            print("note: no plot: matplotlib is not installed (pip install 'jaxbp[train]')")
    if len(run.test[0]) == 0:
        print("no test set (--test-fraction 0)")
    elif classification:
        print(f"test accuracy {test_accuracy:.4f} on {len(run.test[0])} examples, test loss {test_loss:.4f}")  # fmt: skip
    else:
        print(f"test loss ({cfg.loss}) {test_loss:.6g} on {len(run.test[0])} examples")
    print(f"{epoch} epochs, {this_session:.1f} s this session; wrote {', '.join(map(str, written))}")  # fmt: skip
    if diverged is not None:
        layers = ", ".join(f"params[{i}]" for i in diverged["layers"])
        print(
            f"jaxbp train: diverged at step {diverged['step']} (epoch {diverged['epoch']}): non-finite "
            f"loss or gradient in {layers}; kept the last good checkpoint {last_saved} and the last "
            f"finite params in {out}/last_finite_params.npz; lower --lr (was {cfg.lr}) and start a new run",
            file=sys.stderr,
        )  # fmt: skip
        return EXIT_DIVERGED
    if interrupted:
        print(
            f"jaxbp train: interrupted; saved {last_saved}; continue with: "
            f"jaxbp train --resume {out} --epochs {cfg.epochs}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return 0


def _save_last_finite(out: Path, params: Any) -> None:
    import io

    arrays = {f"params/{i}/{name}": np.asarray(leaf) for i, layer in enumerate(params) for name, leaf in layer.items()}  # fmt: skip
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    _files.atomic_write(out / "last_finite_params.npz", buffer.getvalue())


def _banner(run: Prepared) -> str:
    cfg = run.config
    sizes = {name: len(part[0]) for name, part in (("train", run.train), ("validation", run.val), ("test", run.test))}  # fmt: skip
    schedule = {"constant": "constant", "exponential": f"x{cfg.decay}/epoch", "cosine": f"cosine over {cfg.decay_epochs} epochs"}[cfg.schedule]  # fmt: skip
    start = (
        f"resuming at epoch {run.epoch} from {run.out}" if run.epoch else f"writing to {run.out}"
    )
    return (
        f"jaxbp train: {run.data_name}, {' / '.join(f'{n} {k}' for k, n in sizes.items())} examples; "
        f"model {'-'.join(map(str, run.spec.sizes))} ({', '.join(run.spec.activations)}), {cfg.loss}; "
        f"{cfg.optimizer} lr {cfg.lr} ({schedule}), batch {cfg.batch_size or 'full'}, "
        f"{cfg.epochs} epochs, seed {cfg.seed}; {start}"
    )
