"""``jaxbp explain``: one SGD step of a small network, number by number, checked against jax.grad.

jaxbp explain relu-sigmoid-linear --compare-published
jaxbp explain --network my_net.json --format markdown --precision 6
jaxbp explain relu-2-2-1 --steps 20 --plot loss.png
jaxbp explain sigmoid-softmax --write-network start.json    # a file to edit
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from jaxbp import network_file, render, worked
from jaxbp.cli import UsageError
from jaxbp.render.html import page
from jaxbp.trace import Trace, explain

FORMATS = ("text", "markdown", "latex", "json", "html")
MAX_STEPS = 100_000


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    names = ", ".join(worked.EXAMPLES)
    parser = subparsers.add_parser(
        "explain",
        help="the chain rule of one SGD step, number by number",
        description=(
            "Compute one forward pass, loss, backward pass and SGD update of a small network by "
            "the manual chain rule (float64), check every gradient against jax.grad, and print "
            f"it as a worked example. Built-in examples: {names}."
        ),
    )
    parser.add_argument("example", nargs="?", help=f"a built-in example: {names}")
    parser.add_argument("--network", metavar="FILE", help="a network JSON file instead")
    parser.add_argument("--format", choices=FORMATS, default="text", help="default: text")
    parser.add_argument(
        "--compare-published",
        action="store_true",
        help="print the seed documents' published numbers beside the computed ones",
    )
    parser.add_argument(
        "--precision",
        type=int,
        default=None,
        metavar="DIGITS",
        help="significant digits (4; 6 with --compare-published, as the documents print updates "
        "such as 1.00031 to that many)",
    )
    parser.add_argument("--steps", type=int, default=1, metavar="N", help="SGD steps to run (1)")
    parser.add_argument("--plot", metavar="FILE.png", help="save the loss curve (matplotlib)")
    parser.add_argument(
        "--write-network", metavar="FILE", help="write the example as a network file and exit"
    )
    parser.add_argument("--list", action="store_true", help="list the built-in examples")
    parser.set_defaults(run=run)


def _check_args(args: argparse.Namespace) -> None:
    if (args.example is None) == (args.network is None) and not args.list:
        raise UsageError(
            "give either a built-in example "
            f"({', '.join(worked.EXAMPLES)}) or --network FILE.json, not both or neither."
        )
    if args.example is not None and args.example not in worked.EXAMPLES:
        raise UsageError(
            f"unknown example {args.example!r}; built-in examples are "
            f"{', '.join(worked.EXAMPLES)} (or pass --network FILE.json)."
        )
    if args.compare_published and args.network is not None:
        raise UsageError(
            "--compare-published needs a built-in example: only those have published numbers."
        )
    if args.compare_published and args.format == "html":
        raise UsageError("--compare-published is not shown on the html page; use another --format.")
    if args.precision is None:
        args.precision = 6 if args.compare_published else 4
    if not 1 <= args.precision <= 17:
        raise UsageError(f"--precision must be between 1 and 17 digits, got {args.precision}.")
    if not 1 <= args.steps <= MAX_STEPS:
        raise UsageError(f"--steps must be between 1 and {MAX_STEPS}, got {args.steps}.")
    if args.write_network and args.example is None:
        raise UsageError("--write-network needs a built-in example to write.")


def _trace(args: argparse.Namespace) -> tuple[Trace, str, worked.WorkedExample | None]:
    if args.network is not None:
        try:
            net = network_file.load(args.network)
            trace = explain(
                net.spec, net.loss, net.params, net.x, net.y, net.learning_rate,
                steps=args.steps, units=net.units,
            )  # fmt: skip
        except (ValueError, TypeError) as error:
            raise UsageError(str(error)) from None
        return trace, net.name, None
    example = worked.EXAMPLES[args.example]
    spec = worked.spec_of(example)
    biases = example.biases or [None] * len(example.weights)
    params = [  # float64 from the start: 0.12 must not pass through float32
        {"w": np.asarray(w, np.float64)} | ({} if b is None else {"b": np.asarray(b, np.float64)})
        for w, b in zip(example.weights, biases, strict=True)
    ]
    x, y = np.asarray(example.x), np.asarray(example.y)
    trace = explain(spec, example.loss, params, x, y, example.learning_rate, steps=args.steps)
    title = f"{example.name}: {example.title} (documents {', '.join(example.documents)})"
    return trace, title, example


def run(args: argparse.Namespace) -> int:
    """Build the trace, print it in the chosen format; 0 when verified, 1 when not, 2 on bad input."""
    _check_args(args)
    if args.list:
        for builtin in worked.EXAMPLES.values():
            print(f"{builtin.name:22s} {builtin.title} (documents {', '.join(builtin.documents)})")
        return 0
    if args.write_network:
        data = network_file.from_example(worked.EXAMPLES[args.example])
        lines = [f"  {json.dumps(key)}: {json.dumps(value)}" for key, value in data.items()]
        try:
            Path(args.write_network).write_text("{\n" + ",\n".join(lines) + "\n}\n")
        except OSError as error:
            raise UsageError(f"cannot write {args.write_network}: {error.strerror}.") from None
        return 0
    trace, title, example = _trace(args)
    rows = render.compare(example, trace) if args.compare_published and example else None
    digits = args.precision
    if args.format == "json":
        payload = trace.to_dict()
        if rows is not None:
            payload = {"trace": payload, "published": [row.to_dict() for row in rows]}
        print(json.dumps(payload, indent=1))
    elif args.format == "markdown":
        sys.stdout.write(render.markdown(trace, title, digits, rows))
    elif args.format == "latex":
        sys.stdout.write(render.latex(trace, title, digits, rows))
    elif args.format == "html":
        sys.stdout.write(page(trace, title, digits))
    else:
        _print_text(trace, title, digits, rows)
    if args.plot:
        try:
            render.save_png(trace.history, args.plot, title)
        except ImportError:
            raise UsageError(
                "--plot needs matplotlib: pip install 'jaxbp[plot]' (the text plot needs nothing)."
            ) from None
        except OSError as error:
            raise UsageError(f"cannot write {args.plot}: {error.strerror}.") from None
    if not trace.verified:
        failed = ", ".join(check.quantity for check in trace.checks if not check.verified)
        print(
            f"jaxbp explain: warning: not verified: the manual chain rule and jax.grad differ by "
            f"more than float64 round-off (or give nan) on {failed}; see the diagnostics.",
            file=sys.stderr,
        )
        return 1
    return 0


def _print_text(trace: Trace, title: str, digits: int, rows: list[render.Row] | None) -> None:
    try:
        from rich.console import Console
    except ImportError:
        print(
            "(rich is not installed: pip install 'jaxbp[cli]'; showing Markdown)", file=sys.stderr
        )
        sys.stdout.write(render.markdown(trace, title, digits, rows))
        return
    render.print_text(Console(highlight=False), trace, title, digits, rows)
