"""Progress display for ``jaxbp train``: a tqdm bar on a terminal, plain lines otherwise.

On a terminal (stderr is a TTY) a bar shows the epoch, the training loss and the validation
accuracy. When output goes to a file or a pipe the bar stays off and each epoch prints one plain
line instead (nothing at all with ``quiet``), so logs stay readable.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO


class Progress:
    """Reports epochs ``initial + 1 .. total``; call :meth:`update` after each, :meth:`close` once."""

    def __init__(self, total: int, initial: int, *, quiet: bool, stream: TextIO | None = None):
        self.total = total
        self.quiet = quiet
        self.stream = stream or sys.stdout
        self.bar: Any = None
        if not quiet and sys.stderr.isatty():
            try:
                from tqdm import tqdm
            except ModuleNotFoundError:
                return
            self.bar = tqdm(
                total=total, initial=initial, unit="epoch", desc="train", dynamic_ncols=True
            )

    def update(self, epoch: int, train_loss: float, val_loss: float, val_accuracy: float | None):
        fields = {"loss": f"{train_loss:.4f}", "val_loss": f"{val_loss:.4f}"}
        if val_accuracy is not None:
            fields["val_acc"] = f"{val_accuracy:.4f}"
        if self.bar is not None:
            self.bar.set_postfix(fields, refresh=False)
            self.bar.update(1)
        elif not self.quiet:
            text = "  ".join(f"{name} {value}" for name, value in fields.items())
            print(f"epoch {epoch:>{len(str(self.total))}}/{self.total}  {text}", file=self.stream)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def plural(count: int, noun: str) -> str:
    """``1 epoch``, ``2 epochs``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
