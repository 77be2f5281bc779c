"""The loss over ``--steps N`` SGD steps: a small text plot, or a PNG through matplotlib.

The text plot has one column per step (steps are binned when there are more steps than columns)
and a logarithmic vertical axis when the loss spans more than two decades, so a loss falling from
0.1 to 1e-10 stays readable.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

#: Characters per line of the PNG's title: a long title wraps instead of running off the figure.
TITLE_WIDTH = 70


def text_plot(history: Sequence[float], width: int = 60, height: int = 10) -> str:
    """A plot of ``history`` (loss before step 1, ..., after the last step) in ``height`` rows."""
    values = [float(v) for v in history]
    if not values or not all(math.isfinite(v) for v in values):
        return "(no finite losses to plot)"
    columns = min(width, len(values))
    binned = [values[(len(values) - 1) * c // max(columns - 1, 1)] for c in range(columns)]
    low, high = min(binned), max(binned)
    use_log = low > 0 and high / low > 100
    scale = [math.log10(v) for v in binned] if use_log else binned
    bottom, top = min(scale), max(scale)
    span = top - bottom or 1.0
    rows = []
    for row in range(height - 1, -1, -1):
        level = bottom + span * row / (height - 1 or 1)
        label = f"{10**level if use_log else level:>10.3g} |"
        cells = "".join(
            "*" if round((s - bottom) / span * (height - 1)) == row else " " for s in scale
        )
        rows.append(label + cells)
    axis = " " * 11 + "+" + "-" * columns
    steps = f"{' ' * 12}step 0{' ' * max(columns - 12, 1)}step {len(values) - 1}"
    kind = "log scale" if use_log else "linear scale"
    return "\n".join([f"loss ({kind})", *rows, axis, steps])


def save_png(history: Sequence[float], path: str, title: str = "") -> None:
    """Write the loss curve to ``path`` (needs matplotlib: ``pip install jaxbp[plot]``).

    The figure goes to a temporary file beside ``path`` that then replaces it, so a failed write
    leaves no half a file, and a symbolic link at ``path`` is replaced, never written through.
    The format is the suffix of ``path`` (``.png``, ``.pdf``, ``.svg``).

    Raises:
        ImportError: when matplotlib is not installed.
        OSError: when the file cannot be written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.5))
    axes.plot(range(len(history)), history, marker="o", markersize=3)
    values = [v for v in history if v > 0]
    if values and max(values) / min(values) > 100:
        axes.set_yscale("log")
    axes.set_xlabel("SGD step")
    axes.set_ylabel("loss")
    # a title is the user's text: "$" would start matplotlib's math mode
    axes.set_title(
        wrap_title(title or "loss over SGD steps"), fontsize=10, usetex=False, parse_math=False
    )
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    kind = Path(path).suffix.lower().lstrip(".") or "png"
    figure.savefig(buffer, format=kind, dpi=100)
    plt.close(figure)
    from jaxbp.training.files import atomic_write  # never writes through a link at ``path``

    atomic_write(path, buffer.getvalue())


def wrap_title(title: str, width: int = TITLE_WIDTH) -> str:
    """``title`` broken into lines of at most ``width`` characters (words are kept whole)."""
    return "\n".join(textwrap.wrap(title, width, break_long_words=True)) or title
