"""``targets.json``: what a run's outputs mean, written into its folder at the start of a run.

It holds the task, the target (the CSV column or ``.npy`` targets named by ``--target``), the
feature columns of a CSV, the class names of text labels (output ``i`` is ``classes[i]``), and for
regression the targets' standardisation (``target_mean`` per output and one ``target_scale``: the
network predicts ``(y - target_mean) / target_scale``). The same values are in every checkpoint
(the names and columns in its metrics, the scaling as arrays), which is what ``jaxbp predict`` and
``jaxbp evaluate`` read; this file is for people and other programs.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from jaxbp.training import files as _files

if TYPE_CHECKING:
    from jaxbp.cli.prepare import Prepared

FILE = "targets.json"


def write(run: Prepared) -> None:
    """Write ``targets.json`` atomically (the same content on every resume)."""
    data = run.data
    record = {
        "task": run.config.task,
        "target": run.config.target,
        "columns": list(data.columns) or None,
        "classes": None if data.class_names is None else list(data.class_names),
        "target_mean": None if data.target_mean is None else data.target_mean.tolist(),
        "target_scale": data.target_scale if data.target_mean is not None else None,
    }
    _files.atomic_write(run.out / FILE, (json.dumps(record, indent=2) + "\n").encode())
