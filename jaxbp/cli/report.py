"""What ``jaxbp train`` prints and writes at its start and end: the run's header, and at the end
the test metrics, ``metrics.json``, the plot and the line that says what was written."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jaxbp.cli import metrics
from jaxbp.cli import model as train_model
from jaxbp.training import checkpoint

if TYPE_CHECKING:
    from jaxbp.cli.prepare import Prepared
    from jaxbp.cli.run_log import RunLog

#: Below this many steps in all, the banner suggests more epochs (the defaults suit ~1000+ examples).
SMALL_RUN_STEPS = 1000


def plural(count: int, noun: str) -> str:
    """``1 epoch``, ``2 epochs``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def start(run: Prepared) -> None:
    """A note when a resumed run's data changed, and the header unless ``--quiet``."""
    if "data_changed_at_epoch" in run.state.history:
        print(
            f"note: {run.data.name} differs from the data of the checkpoint; not an exact "
            f"continuation"
        )
    if not run.options.quiet:
        print(banner(run))


def banner(run: Prepared) -> str:
    """The run's settings on a few short lines."""
    cfg, data, spe = run.config, run.data, run.steps_per_epoch
    parts = (("train", data.train), ("validation", data.val), ("test", data.test))
    sizes = " / ".join(f"{len(part[0])} {name}" for name, part in parts)
    schedule = {
        "constant": "constant",
        "exponential": f"x{cfg.decay}/epoch",
        "cosine": f"cosine over {cfg.decay_epochs} epochs",
    }[cfg.schedule]
    optimizer = cfg.optimizer + (f" {cfg.momentum}" if cfg.optimizer == "momentum" else "")
    epoch, inside = divmod(run.state.step, spe)
    begins = f"resuming at epoch {epoch}" if run.state.step else "new run"
    begins += f", step {inside}" if inside else ""
    lines = [
        f"jaxbp train: {data.name} -> {run.out} ({begins})",
        f"  data      {sizes} examples",
        f"  model     {train_model.model_line(run.model.spec, cfg)}",
        f"  training  {optimizer}, lr {cfg.lr} ({schedule}), batch {cfg.batch_size or 'full'}, "
        f"{plural(cfg.epochs, 'epoch')}, {plural(spe, 'step')} each, seed {cfg.seed}",
    ]
    if run.total_steps < SMALL_RUN_STEPS:
        epochs = -(-SMALL_RUN_STEPS // spe)
        constant = " --schedule constant" if cfg.schedule == "exponential" else ""
        lines.append(
            f"  note      only {plural(run.total_steps, 'step')} in all; small data needs more: "
            f"--epochs {epochs}{constant} gives {SMALL_RUN_STEPS}"
        )
    return "\n".join(lines)


def finish(run: Prepared, log: RunLog) -> None:
    """Test the final parameters, write ``metrics.json`` and the plot, and say what was written."""
    cfg, out, test = run.config, run.out, run.data.test
    classification = cfg.task == "classification"
    test_loss, test_accuracy = metrics.evaluate(
        run.model.spec, cfg.loss, log.params, *test, classification=classification
    )
    test_loss *= run.data.loss_factor  # in the targets' own units
    this_session = log.session_seconds()
    examples = (log.step - run.state.step) * (cfg.batch_size or len(run.data.train[0]))
    epoch = log.step // run.steps_per_epoch
    log.summary.update(
        epochs_done=epoch,
        steps_done=log.step,
        test_loss=test_loss,
        test_accuracy=test_accuracy,
        wall_seconds=log.wall_before + this_session,
        examples_per_second=examples / this_session if examples else None,
    )
    written = [metrics.write_json(out / "metrics.json", {**log.summary, **log.history})]
    if log.history["train_loss"]:
        try:
            title = f"{run.data.name} {log.summary['model']}"
            written.append(metrics.plot_curves(out / "curves.png", log.history, title))
        except ModuleNotFoundError:
            print("note: no plot: matplotlib is not installed (pip install 'jaxbp[train]')")
    written += checkpoint.list_checkpoints(out)[-1:]
    if len(test[0]) == 0:
        print("no test set (--test-fraction 0)")
    elif classification:
        print(f"test accuracy {test_accuracy:.4f} on {len(test[0])} examples, test loss {test_loss:.4f}")  # fmt: skip
    else:
        print(f"test loss ({cfg.loss}) {test_loss:.6g} on {len(test[0])} examples")
    print(
        f"{plural(epoch, 'epoch')} done, {this_session:.1f} s this session; wrote "
        f"{', '.join(map(str, written))}"
    )
