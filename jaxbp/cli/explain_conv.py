"""``jaxbp explain`` for a 1-D CNN: the built-in ``conv1d`` example or a conv network file.

jaxbp explain conv1d --format markdown
jaxbp explain conv1d --write-network cnn.json
jaxbp explain --network cnn.json --steps 20 --plot loss.png

The flags mean what they mean for an MLP; the seed documents' published numbers, ``--check``
and the LaTeX and HTML formats are for MLPs only and are refused here with a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys

from jaxbp.cli import explain_output
from jaxbp.cli.errors import UsageError
from jaxbp.worked import conv_file, network_file
from jaxbp.worked.conv_trace import SequentialTrace, explain_sequential
from jaxbp.worked.render import _conv

FORMATS = ("text", "markdown", "json")


def wants(args: argparse.Namespace) -> bool:
    """Whether the command line asks for a conv network (and only that)."""
    if args.network is None:
        return args.example in conv_file.CONV_EXAMPLES
    if args.example is not None or args.list:
        return False
    try:
        return conv_file.is_conv(network_file.read(args.network))
    except network_file.NetworkFileError:
        return False  # the MLP path reports a file it cannot read


def _check_args(args: argparse.Namespace, name: str) -> None:

    if args.compare_published or args.document is not None:
        raise UsageError(
            f"--compare-published and --document need a seed-document example; {name} is a "
            "conv network and has no published numbers."
        )
    if args.check:
        raise UsageError(f"--check grades MLP worked examples only; {name} is a conv network.")
    if args.format not in FORMATS:
        raise UsageError(
            f"--format {args.format} is not available for a conv network ({name}); use "
            f"{', '.join(FORMATS)}."
        )
    args.precision = 4 if args.precision is None else args.precision
    explain_output.check_step_and_outputs(args)


def _trace(args: argparse.Namespace) -> tuple[SequentialTrace, str]:
    try:
        if args.network is not None:
            net = conv_file.parse(network_file.read(args.network), where=args.network)
            title = net.name
        else:
            net = conv_file.parse(conv_file.CONV_EXAMPLES[args.example], where=args.example)
            title = f"{args.example}: {conv_file.CONV_TITLES[args.example]}"
        trace = explain_sequential(
            net.spec, net.loss, net.params, net.x, net.y, net.learning_rate, steps=args.steps,
            on_step=explain_output.progress(args.steps),
        )  # fmt: skip
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from None
    return trace, title


def run(args: argparse.Namespace) -> int:
    """The conv worked example in the chosen format; 0 when verified, 1 when not, 2 on bad input."""

    _check_args(args, args.example or args.network)
    if args.write_network:
        return explain_output.write_network(args, conv_file.CONV_EXAMPLES[args.example])
    trace, title = _trace(args)
    digits = args.precision
    if args.format == "json":
        print(json.dumps(trace.to_dict(), indent=1, allow_nan=False))
    elif args.format == "markdown":
        sys.stdout.write(_conv.markdown(trace, title, digits))
    else:
        try:
            from rich.markdown import Markdown

            console = explain_output.console()
        except ImportError:
            print(
                "(rich is not installed: pip install 'jaxbp[cli]'; showing Markdown)",
                file=sys.stderr,
            )
            sys.stdout.write(_conv.markdown(trace, title, digits))
        else:
            console.print(Markdown(_conv.markdown(trace, title, digits)))
    return 0 if explain_output.plot_and_check(args, trace, title) else 1
