"""The ``jaxbp`` command line: ``jaxbp explain ...`` and ``jaxbp train ...``.

Each subcommand lives in ``jaxbp/commands/<name>.py`` with ``add_parser(subparsers)`` and
``run(args) -> int``. A :class:`UsageError` raised by a subcommand is printed as one line on
stderr with exit code 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

SUBCOMMANDS = ("explain", "train")


class UsageError(Exception):
    """A problem with the user's input: printed as ``jaxbp <command>: error: <message>``, exit 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxbp", description="Train and verify neural networks by backpropagation."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"jaxbp.commands.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"jaxbp.commands.{name}":
                raise
            continue
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except UsageError as error:
        print(f"jaxbp {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
