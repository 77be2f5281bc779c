"""``jaxbp explain``: one SGD step of a small network, number by number, checked against jax.grad.

jaxbp explain relu-sigmoid-linear --compare-published --document 002
jaxbp explain --network my_net.json --format markdown --precision 6
jaxbp explain --network my_net.json --check my_numbers.csv   # grade hand-computed numbers
jaxbp explain relu-2-2-1 --steps 20 --plot loss.png
jaxbp explain sigmoid-softmax --write-network start.json    # a file to edit
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from jaxbp.cli import explain_output
from jaxbp.cli.errors import UsageError
from jaxbp.worked import grading as worked
from jaxbp.worked import network_file, render
from jaxbp.worked.conv_file import CONV_EXAMPLES, CONV_TITLES
from jaxbp.worked.grading.numbers import NumbersFileError, read_numbers
from jaxbp.worked.plain import to_plain
from jaxbp.worked.render.html import page
from jaxbp.worked.shown import printable
from jaxbp.worked.trace import Trace, explain

FORMATS = ("text", "markdown", "latex", "json", "html")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    names = ", ".join([*worked.EXAMPLES, *CONV_EXAMPLES])
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
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="default: text; a conv network (conv1d) has text, markdown and json",
    )
    parser.add_argument(
        "--compare-published",
        action="store_true",
        help="print the seed documents' published numbers beside the computed ones",
    )
    parser.add_argument(
        "--document",
        metavar="NUMBER",
        help="with --compare-published: only this seed document (e.g. 002)",
    )
    parser.add_argument(
        "--check",
        metavar="FILE.csv",
        help="grade hand-computed numbers (an MLP; shown in every --format): a CSV with columns "
        "quantity,value[,symbol]; exit 0 when all match, 1 when some do not, 2 for a bad file",
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
    parser.add_argument(
        "--plot", metavar="FILE.png", help="save the loss curve (matplotlib; .png, .pdf or .svg)"
    )
    parser.add_argument(
        "--write-network", metavar="FILE", help="write the example as a network file and exit"
    )
    parser.add_argument("--list", action="store_true", help="list the built-in examples")
    parser.set_defaults(run=run)


def _check_args(args: argparse.Namespace) -> None:
    names = ", ".join([*worked.EXAMPLES, *CONV_EXAMPLES])
    if (args.example is None) == (args.network is None) and not args.list:
        raise UsageError(
            f"give either a built-in example ({names}) or --network FILE.json, not both or neither."
        )
    if args.example is not None and args.example not in worked.EXAMPLES:
        raise UsageError(
            f"unknown example {args.example[:40]!r}; built-in examples are {names} "
            "(or pass --network FILE.json)."
        )
    if args.compare_published and args.network is not None:
        raise UsageError(
            "--compare-published needs a built-in example: only those have published numbers "
            "(use --check FILE.csv to check your own numbers for a network file)."
        )
    if args.compare_published and args.check:
        raise UsageError("give --compare-published or --check FILE.csv, not both.")
    if args.document is not None:
        documents = worked.EXAMPLES[args.example].documents if args.example else ()
        if not args.compare_published or args.document not in documents:
            raise UsageError(
                f"--document {args.document} needs --compare-published and one of the documents "
                f"of the example ({', '.join(documents) or 'a built-in example has them'})."
            )
    if args.precision is None:
        args.precision = 6 if args.compare_published else 4
    explain_output.check_step_and_outputs(args)


def _trace(args: argparse.Namespace) -> tuple[Trace, str, worked.WorkedExample | None]:
    progress = explain_output.progress(args.steps)
    if args.network is not None:
        try:
            net = network_file.load(args.network)
            trace = explain(
                net.spec, net.loss, net.params, net.x, net.y, net.learning_rate,
                steps=args.steps, units=net.units, frozen=net.frozen, on_step=progress,
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
    trace = explain(
        spec, example.loss, params, x, y, example.learning_rate, steps=args.steps, on_step=progress
    )
    title = f"{example.name}: {example.title} (documents {', '.join(example.documents)})"
    return trace, title, example


def run(args: argparse.Namespace) -> int:
    """Build the trace, print it in the chosen format; 0 when verified, 1 when not, 2 on bad input."""
    from jaxbp.cli import explain_conv

    if explain_conv.wants(args):
        return explain_conv.run(args)
    _check_args(args)
    if args.list:
        for builtin in worked.EXAMPLES.values():
            print(f"{builtin.name:22s} {builtin.title} (documents {', '.join(builtin.documents)})")
        for name, title in CONV_TITLES.items():
            print(f"{name:22s} {title}")
        return 0
    if args.write_network:
        return explain_output.write_network(
            args, network_file.from_example(worked.EXAMPLES[args.example])
        )
    numbers = _read_numbers(args.check) if args.check else None
    trace, title, example = _trace(args)
    rows = None
    if numbers is not None:
        try:
            rows = render.compare(numbers, trace, where=args.check, hand_computed=True)
        except NumbersFileError as error:
            raise UsageError(str(error)) from None
    elif args.compare_published and example:
        rows = render.compare(example, trace)
        if args.document is not None:
            rows = [row for row in rows if row.document == args.document]
    digits = args.precision
    if args.format == "json":
        payload = trace.to_dict()
        if rows is not None:
            published = [to_plain(row.to_dict()) for row in rows]
            payload = {"trace": payload, "published": published}
        print(json.dumps(payload, indent=1, allow_nan=False))
    elif args.format == "markdown":
        sys.stdout.write(render.markdown(trace, title, digits, rows))
    elif args.format == "latex":
        sys.stdout.write(render.latex(trace, title, digits, rows))
    elif args.format == "html":
        sys.stdout.write(page(trace, title, digits, tables=render.comparison_tables(rows or [])))
    else:
        _print_text(trace, title, digits, rows)
    if not explain_output.plot_and_check(args, trace, title, "; see the diagnostics"):
        return 1
    if numbers is not None and rows is not None and not all(row.matches for row in rows):
        wrong = sum(not row.matches for row in rows)
        message = f"{wrong} of {len(rows)} numbers in {args.check} are wrong"
        print(f"jaxbp explain: {message}.", file=sys.stderr)
        return 1
    return 0


def _read_numbers(path: str) -> tuple[worked.Published, ...]:
    try:
        records = read_numbers(path)
    except NumbersFileError as error:
        raise UsageError(str(error)) from None
    name = printable(Path(path).name)  # the table's title
    return tuple(dataclasses.replace(r, document=r.document or name) for r in records)


def _print_text(trace: Trace, title: str, digits: int, rows: list[render.Row] | None) -> None:
    try:
        console = explain_output.console()
    except ImportError:
        print(
            "(rich is not installed: pip install 'jaxbp[cli]'; showing Markdown)", file=sys.stderr
        )
        sys.stdout.write(render.markdown(trace, title, digits, rows))
        return
    render.print_text(console, trace, title, digits, rows)
