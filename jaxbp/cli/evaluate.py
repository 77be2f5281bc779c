"""``jaxbp evaluate``: a trained run's metrics on labelled data.

``jaxbp evaluate --run runs/x --data test.csv [--target label]`` loads the run's newest checkpoint,
checks the data as training does (:mod:`jaxbp.cli.trained`), and prints for classification the
accuracy, the loss and the accuracy of each class (by name for text labels); for regression the
mean squared and mean absolute errors in the targets' own units. Exit codes: 0 done, 2 bad input.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from jaxbp.cli import dataset, table, trained
from jaxbp.cli.errors import UsageError
from jaxbp.data import files as data


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="a trained run's accuracy or errors on labelled data (.csv, .npy or .npz)",
        description="Load the newest checkpoint of a jaxbp train run and print its metrics on "
        "labelled data, checked as training checks it: accuracy, loss and per-class accuracy "
        "for classification; mean squared and absolute errors in the targets' units for "
        "regression. Exit codes: 0 done, 2 bad input. Details: docs/train.md.",
    )
    parser.add_argument("--run", dest="run_folder", required=True, metavar="DIR_OR_FILE",
                        help="a run folder (its newest checkpoint) or a checkpoint file")  # fmt: skip
    parser.add_argument("--data", required=True, metavar="FILE", help="the labelled examples")
    parser.add_argument("--target", metavar="TARGET",
                        help="the CSV target column, or for .npy data a .npy of targets or x's column index (default: the run's)")  # fmt: skip
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        model = trained.load(args.run_folder)
        target = args.target if args.target is not None else model.config.target
        inputs = trained.read_inputs(model, args.data, target)
        truth = _truth(model, inputs, target)
    except trained.INPUT_ERRORS as error:
        raise UsageError(str(error)) from None
    values = trained.outputs(model, inputs.x)
    count = len(values)
    if model.config.task == "classification":
        _print_classification(model, values, truth)
    else:
        difference = values - truth
        with np.errstate(over="ignore"):  # a float64 run's error may square past 1.8e308: inf
            mse, mae = float(np.mean(difference**2)), float(np.mean(np.abs(difference)))
        print(f"mse {mse:.6g}, mae {mae:.6g} on {count} examples (in the targets' units)")
    return 0


def _truth(model: trained.Trained, inputs: trained.Inputs, target: str) -> np.ndarray:
    """The labels (int) or the regression targets ``(rows, outputs)``, checked."""
    raw = inputs.targets
    if isinstance(raw, table.Table):
        if model.config.task == "classification" and model.class_names is not None:
            return table.encode_labels(raw, target, model.class_names)[0]
        if not table.is_numeric(raw.target or ()):
            cells = raw.target or ()
            line, cell = next((ln, c) for ln, c in zip(raw.lines, cells, strict=True) if not table.is_numeric([c]))  # fmt: skip
            labels = f"; the run's labels are the numbers 0 to {model.outputs - 1}" if model.config.task == "classification" else ""  # fmt: skip
            raise data.DataError(f"{inputs.name} line {line}, column {target!r}: {cell[:40]!r} is not a number{labels}")  # fmt: skip
        y = np.array([float(c) for c in raw.target or ()], np.float64)
    else:
        y = np.asarray(raw, np.float64)
    if not np.isfinite(y).all():
        raise data.DataError(f"{inputs.name}: the targets hold NaN or Inf; remove or fill those rows")  # fmt: skip
    if model.config.task == "classification":
        return data.check_labels(inputs.name, y, model.outputs)[0]
    y = data.regression_targets(y)
    if y.shape[1] != model.outputs:
        raise data.DataError(f"{inputs.name}: {y.shape[1]} targets per example but the run predicts {model.outputs}")  # fmt: skip
    dataset.check_targets(inputs.name, model.config, y)
    return y


def _print_classification(model: trained.Trained, values: np.ndarray, labels: np.ndarray) -> None:
    predicted = np.argmax(values, axis=1)
    logits = values - values.max(axis=1, keepdims=True)
    if model.config.loss == "softmax_cross_entropy":
        log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    else:  # the network's own softmax output
        log_p = np.log(np.clip(values, 1e-30, None))
    loss = float(-np.mean(log_p[np.arange(len(labels)), labels]))
    accuracy = float(np.mean(predicted == labels))
    print(f"accuracy {accuracy:.4f} on {len(labels)} examples, loss {loss:.4f} ({model.config.loss})")  # fmt: skip
    for k in range(model.outputs):
        mine = labels == k
        if mine.any():
            share = float(np.mean(predicted[mine] == k))
            print(f"  {model.class_name(k)}: accuracy {share:.4f} on {int(mine.sum())} examples")
