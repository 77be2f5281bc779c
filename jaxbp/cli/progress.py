"""Progress display for ``jaxbp train``: a tqdm bar on a terminal, plain lines otherwise.

On a terminal (stderr is a TTY) a bar shows the epoch, the training loss and the validation
accuracy. When output goes to a file or a pipe the bar stays off and each epoch prints one plain
line instead (nothing at all with ``quiet``), so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class Progress:
    """Reports a run of ``total`` steps from step ``initial``, ``steps_per_epoch`` to an epoch.

    Call :meth:`step` after a chunk inside an epoch, :meth:`update` at each epoch's end, and
    :meth:`close` once. On a terminal the bar counts steps; otherwise each epoch prints one line,
    and a long epoch also prints where it is at most every :data:`LINE_SECONDS` seconds.
    """

    def __init__(
        self,
        total: int,
        initial: int,
        steps_per_epoch: int,
        *,
        quiet: bool,
        stream: TextIO | None = None,
    ):
        self.total, self.steps_per_epoch, self.quiet = total, steps_per_epoch, quiet
        self.epochs = -(-total // steps_per_epoch)
        self.stream = stream or sys.stdout
        self.bar: Any = None
        self.done = initial
        self.last_line = time.monotonic()
        if not quiet and sys.stderr.isatty():
            try:
                from tqdm import tqdm
            except ModuleNotFoundError:
                return
            self.bar = tqdm(total=total, initial=initial, unit="step", desc="train", dynamic_ncols=True)  # fmt: skip

    def step(self, step: int, loss: float) -> None:
        """After a chunk that ended inside an epoch: ``step`` steps done, ``loss`` its mean loss."""
        epoch, inside = divmod(step, self.steps_per_epoch)
        if self.bar is not None:
            self.bar.set_postfix({"epoch": epoch + 1, "loss": f"{loss:.4f}"}, refresh=False)
            self.bar.update(step - self.done)
        elif not self.quiet and time.monotonic() - self.last_line >= LINE_SECONDS:
            print(
                f"epoch {epoch + 1:>{len(str(self.epochs))}}/{self.epochs}  step "
                f"{inside}/{self.steps_per_epoch}  loss {loss:.4f}",
                file=self.stream,
                flush=True,
            )
            self.last_line = time.monotonic()
        self.done = step

    def update(self, epoch: int, train_loss: float, val_loss: float, val_accuracy: float | None):
        """At the end of epoch ``epoch`` (counted from 1), with its metrics."""
        fields = {"loss": f"{train_loss:.4f}", "val_loss": f"{val_loss:.4f}"}
        if val_accuracy is not None:
            fields["val_acc"] = f"{val_accuracy:.4f}"
        step = epoch * self.steps_per_epoch
        if self.bar is not None:
            self.bar.set_postfix({"epoch": epoch, **fields}, refresh=False)
            self.bar.update(step - self.done)
        elif not self.quiet:
            text = "  ".join(f"{name} {value}" for name, value in fields.items())
            print(f"epoch {epoch:>{len(str(self.epochs))}}/{self.epochs}  {text}", file=self.stream, flush=True)  # fmt: skip
            self.last_line = time.monotonic()
        self.done = step

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


#: Without a terminal, the longest time between two lines of a running epoch.
LINE_SECONDS = 30.0


def plural(count: int, noun: str) -> str:
    """``1 epoch``, ``2 epochs``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
