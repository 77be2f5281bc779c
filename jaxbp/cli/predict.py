"""``jaxbp predict``: a trained run's predictions for new data, as CSV.

``jaxbp predict --run runs/x --data new.csv [--out preds.csv] [--force]`` loads the run's newest
checkpoint (:mod:`jaxbp.cli.trained`), checks the data as training does (the same columns, no NaN,
nothing beyond the overflow limit), and writes one row per example: the class name (or number)
for classification, the value in the targets' own units for regression. Without ``--out`` the CSV
goes to stdout. ``--out`` is written atomically (a temporary file renamed over it), never through
a link, never over an existing file without ``--force``, never over the ``--data`` file. Exit
codes: 0 done, 2 bad input, 4 the write failed, 130 Ctrl-C (nothing written).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from jaxbp.cli import run_folder, trained
from jaxbp.cli import signals as _signals
from jaxbp.cli.errors import UsageError
from jaxbp.data.files import DataError
from jaxbp.training import files as _files

EXIT_WRITE_FAILED = 4


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="predict with a trained run on new data (.csv, .npy or .npz), as CSV",
        description="Load the newest checkpoint of a jaxbp train run and write its predictions "
        "for new data as CSV: the class name (or number) for classification, the value in the "
        "targets' own units for regression. The data is checked as training checks it (the "
        "same feature columns, by name for a CSV; no NaN; no value beyond the overflow limit). "
        "Exit codes: 0 done, 2 bad input, 4 a write failed, 130 Ctrl-C. Details: docs/train.md.",
    )
    parser.add_argument("--run", dest="run_folder", required=True, metavar="DIR_OR_FILE",
                        help="a run folder (its newest checkpoint) or a checkpoint file")  # fmt: skip
    parser.add_argument("--data", required=True, metavar="FILE",
                        help="the examples: a .csv with the run's feature columns (its target column, if there, is ignored), a .npy or a .npz")  # fmt: skip
    parser.add_argument("--out", metavar="FILE",
                        help="write the CSV here, atomically (default: stdout); an existing file only with --force, never a link")  # fmt: skip
    parser.add_argument("--force", action="store_true", help="replace an existing --out file")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    stopper: _signals.Stopper = getattr(args, "stopper", None) or _signals.Stopper("jaxbp predict")  # fmt: skip
    stopper.exit_note = "nothing was written"
    out = None if args.out is None else Path(args.out)
    if out is None and sys.stdout is None:  # started with stdout closed (`>&-`)
        raise UsageError("standard output is closed, so the predictions have nowhere to go; pass --out FILE")  # fmt: skip
    try:
        if out is not None:
            check_out(out, Path(args.data), force=args.force)
        model = trained.load(args.run_folder)
        if out is not None and out.exists() and os.path.samefile(out, model.path):
            raise DataError(f"--out {out} is the checkpoint --run loads; pass another --out")
        inputs = trained.read_inputs(model, args.data, None)
    except trained.INPUT_ERRORS as error:
        raise UsageError(str(error)) from None
    text = to_csv(model, trained.outputs(model, inputs.x))
    if out is None:
        sys.stdout.write(text)
        return 0
    try:
        with stopper.deferring(f"{out} is whole or untouched"):
            _files.atomic_write(out, text.encode())
    except _files.WriteError as error:
        print(f"jaxbp predict: error: cannot write {out} ({error.strerror}); nothing was written", file=sys.stderr)  # fmt: skip
        return EXIT_WRITE_FAILED
    if stopper.requested:
        print(f"jaxbp predict: stopped by {stopper.name} after writing {out}", file=sys.stderr)
        return stopper.exit_code
    print(f"wrote {len(inputs.x)} predictions to {out}", file=sys.stderr)
    return 0


def check_out(out: Path, data: Path, *, force: bool) -> None:
    """Refuse an ``--out`` that is a link, a folder, a named pipe or a device, the ``--data`` file, a file in a run
    folder, an existing file without ``force``, or in a folder that does not exist.

    Raises:
        DataError: naming the path and the fix.
    """
    if out.is_symlink():
        raise DataError(f"--out {out} is a symbolic link; pass the path of a plain file (a link is never followed onto another file)")  # fmt: skip
    if out.is_dir():
        raise DataError(f"--out {out} is a folder; pass a file name, e.g. {out / 'predictions.csv'}")  # fmt: skip
    if not out.parent.is_dir():
        raise DataError(f"--out {out}: the folder {out.parent} does not exist; create it first")
    if run_folder.is_run(out.parent):
        raise DataError(f"--out {out} is inside the run folder {out.parent}, whose files are the run's own; pass a path outside it")  # fmt: skip
    if out.exists() and not out.is_file():  # a named pipe, a device, a socket
        kind = "a named pipe" if out.is_fifo() else "a socket" if out.is_socket() else "a device"
        raise DataError(f"--out {out} is {kind}, not a file; it is never replaced: pass the path of a plain file")  # fmt: skip
    if out.exists() and data.exists() and os.path.samefile(out, data):
        raise DataError(f"--out {out} is the --data file; pass another --out")
    if out.exists() and not force:
        raise DataError(f"--out {out} exists; pass --force to replace it, or another --out")


def to_csv(model: trained.Trained, values: np.ndarray) -> str:
    """The predictions as CSV text: a header, then one row per example."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if model.config.task == "classification":
        writer.writerow(["prediction"])
        writer.writerows([model.class_name(int(i))] for i in np.argmax(values, axis=1))
    else:
        k = values.shape[1]
        writer.writerow(["prediction"] if k == 1 else [f"prediction_{j}" for j in range(k)])
        writer.writerows([repr(float(v)) for v in row] for row in values)
    return buffer.getvalue()
