"""What ``jaxbp explain`` does the same for an MLP and a conv network: the step and output checks,
``--write-network`` and ``--plot``, and the warning when the manual chain rule and jax.grad differ."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jaxbp.cli.errors import UsageError
from jaxbp.worked.checks import MAX_STEPS

if TYPE_CHECKING:
    from jaxbp.worked.conv_trace import SequentialTrace
    from jaxbp.worked.trace import Trace

PLOT_SUFFIXES = (".png", ".pdf", ".svg")
PROGRESS_FROM = 1000


def progress(steps: int) -> Callable[[int, float], None] | None:
    """For ``--steps`` of at least ``PROGRESS_FROM``: a line on stderr at every tenth of the run."""
    if steps < PROGRESS_FROM:
        return None
    every = steps // 10

    def report(step: int, loss: float) -> None:
        if step % every == 0 or step == steps:
            print(f"jaxbp explain: step {step}/{steps}, loss {loss:.6g}", file=sys.stderr)

    return report


def check_step_and_outputs(args: argparse.Namespace) -> None:
    """Check --precision, --steps and the output files, the same for an MLP and a conv network."""
    if not 1 <= args.precision <= 17:
        raise UsageError(f"--precision must be between 1 and 17 digits, got {args.precision}.")
    if not 1 <= args.steps <= MAX_STEPS:
        raise UsageError(f"--steps must be between 1 and {MAX_STEPS}, got {args.steps}.")
    if args.write_network and args.example is None:
        raise UsageError("--write-network needs a built-in example to write.")
    if args.write_network:
        check_output(args.write_network, "--write-network", (".json",))
        if Path(args.write_network).exists():
            raise UsageError(
                f"--write-network {args.write_network}: the file exists; a network file may hold "
                "your edits, so it is never replaced: remove it or choose another name."
            )
    if args.plot:
        check_output(args.plot, "--plot", PLOT_SUFFIXES)
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError(
                "--plot needs matplotlib: pip install 'jaxbp[plot]' (the text plot needs nothing)."
            ) from None


def console() -> Any:
    """A rich ``Console`` for the terminal document whose broken pipe (``jaxbp explain | head``)
    ends as every command's does (one line, exit code 141), not with rich's silent exit code 1,
    which ``jaxbp explain`` uses for "not verified".

    Raises:
        ImportError: when rich is not installed.
    """
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError

    return _Console(highlight=False)


def check_output(path_text: str, flag: str, suffixes: tuple[str, ...]) -> None:
    """Refuse an output path that cannot be written as asked, before anything is computed: a
    folder, a wrong suffix, a missing folder, no permission, a name too long for the file system
    (with the temporary name it is first written to), a symbolic link, or a named pipe or a
    device."""
    try:
        _check_place(Path(path_text), path_text, flag, suffixes)
    except OSError as error:  # a path too long, a loop of links, a folder we may not look in
        raise UsageError(f"{flag} {path_text}: cannot write there ({error.strerror}).") from None


#: How much longer than the file's own name its temporary name is: ``.NAME.XXXXXXXX.tmp``.
TEMPORARY_EXTRA = 14


def _check_place(path: Path, path_text: str, flag: str, suffixes: tuple[str, ...]) -> None:
    parent = path.parent
    try:
        name_max = os.pathconf(parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    size = len(os.fsencode(path.name))
    extra = TEMPORARY_EXTRA if flag == "--plot" else 0  # --write-network opens its own name
    if size + extra > name_max:
        first = f", and the file is first written under a name {extra} bytes longer" if extra else ""  # fmt: skip
        raise UsageError(
            f"{flag}: the file name is {size} bytes long; this file system takes names of at "
            f"most {name_max} bytes{first}; choose a name of at most {name_max - extra} bytes."
        )
    if path.is_dir():
        raise UsageError(f"{flag} {path_text} is a folder; give a file name inside it.")
    if path.suffix.lower() not in suffixes:
        raise UsageError(
            f"{flag} {path_text}: the file name must end in {', '.join(suffixes)}, "
            f"got {path.suffix or 'no suffix'!r}."
        )
    if not parent.is_dir():
        raise UsageError(f"{flag} {path_text}: the folder {parent} does not exist.")
    if path.is_symlink():
        raise UsageError(
            f"{flag} {path_text} is a symbolic link; it is never written through (it may point "
            f"at one of your files): remove it or choose another name."
        )
    if path.exists() and not path.is_file():  # a named pipe, a device: never replaced
        kind = "a named pipe" if path.is_fifo() else "a socket" if path.is_socket() else "a device"
        raise UsageError(f"{flag} {path_text} is {kind}, not a file; it is never replaced: choose another name.")  # fmt: skip
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"{flag} {path_text}: no permission to write there.")


def write_network(args: argparse.Namespace, data: dict[str, Any]) -> int:
    """Write ``data``, a network file's JSON object, one key a line, to a new ``--write-network``."""
    lines = [f"  {json.dumps(key)}: {json.dumps(value)}" for key, value in data.items()]
    try:
        with Path(args.write_network).open("x") as file:  # "x": never replace a file
            file.write("{\n" + ",\n".join(lines) + "\n}\n")
    except FileExistsError:
        raise UsageError(f"--write-network {args.write_network}: the file exists.") from None
    except OSError as error:
        raise UsageError(f"cannot write {args.write_network}: {error.strerror}.") from None
    print(f"wrote {args.write_network}: the network file of {args.example}", file=sys.stderr)
    return 0


def plot_and_check(
    args: argparse.Namespace, trace: Trace | SequentialTrace, title: str, advice: str = ""
) -> bool:
    """Write ``--plot`` if asked; when the manual chain rule and jax.grad disagree, say where on
    stderr (``advice`` ends the line) and return False."""
    if args.plot:
        from jaxbp.worked.render.plot import save_png

        try:
            save_png(trace.history, args.plot, title)
        except OSError as error:
            raise UsageError(f"cannot write {args.plot}: {error.strerror}.") from None
        print(f"wrote {args.plot}: the loss over {args.steps} SGD steps", file=sys.stderr)
    if not trace.verified:
        failed = ", ".join(check.quantity for check in trace.checks if not check.verified)
        print(
            f"jaxbp explain: warning: not verified: the manual chain rule and jax.grad differ by "
            f"more than float64 round-off (or give nan) on {failed}{advice}.",
            file=sys.stderr,
        )
        return False
    return True
