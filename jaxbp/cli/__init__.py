"""The ``jaxbp`` command line: ``jaxbp explain``, ``jaxbp train``, ``jaxbp predict``,
``jaxbp evaluate``, ``jaxbp exercise``, ``jaxbp grade``.

Nothing here is API: the library is :mod:`jaxbp`. ``train`` reads its flags into a typed
:class:`~jaxbp.cli.config.TrainConfig`, prepares data, model and state as named steps
(:mod:`~jaxbp.cli.prepare`), and runs one :func:`jaxbp.fit` with :mod:`jaxbp.callbacks` between
compiled chunks; ``explain`` prints a worked example (:mod:`jaxbp.worked`) in the chosen format.

Each subcommand lives in ``jaxbp/cli/<name>.py`` with ``add_parser(subparsers)`` and
``run(args) -> int`` (``args.stopper`` is the :class:`jaxbp.cli.signals.Stopper`). A
:class:`UsageError` raised by a subcommand is printed as one line on stderr with exit code 2,
never as a traceback. Ctrl-C and SIGTERM are handled from the first
line of :func:`main` on (see :mod:`jaxbp.cli.signals`). ``jaxbp`` alone prints the help,
``jaxbp --version`` the version.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from jaxbp.cli import signals as _signals
from jaxbp.cli.errors import UsageError

__all__ = ("UsageError", "build_parser", "main")

SUBCOMMANDS = ("explain", "train", "predict", "evaluate", "exercise", "grade")
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a process that SIGPIPE ended


def build_parser() -> argparse.ArgumentParser:
    from jaxbp import __version__

    parser = argparse.ArgumentParser(
        prog="jaxbp", description="Train and verify neural networks by backpropagation."
    )
    parser.add_argument("--version", action="version", version=f"jaxbp {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"jaxbp.cli.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"jaxbp.cli.{name}":
                raise
            continue
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    named = f"jaxbp {words[0]}" if words and words[0] in SUBCOMMANDS else "jaxbp"
    with _signals.handled(named) as stopper:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        stopper.prefix = f"jaxbp {args.command}"
        args.stopper = stopper
        try:
            return int(args.run(args) or 0)
        except UsageError as error:
            print(f"jaxbp {args.command}: error: {error}", file=sys.stderr)
            return 2
        except BrokenPipeError:  # the reader of stdout went away (`jaxbp train | head -1`)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            _signals.say(
                f"{stopper.prefix}: output closed (broken pipe); stopped, saved files whole"
            )
            return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
