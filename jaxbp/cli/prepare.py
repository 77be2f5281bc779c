"""Everything ``jaxbp train`` checks and builds before its first step, as four named steps.

:func:`prepare` runs each once: :func:`~jaxbp.cli.start.start_run` (the typed settings, the
output folder, the checkpoint to resume, the ``--model`` network), :func:`~jaxbp.cli.dataset.load_data`,
:func:`~jaxbp.cli.build.build_model` and :func:`~jaxbp.cli.state.initial_state`. Any problem
raises one line (a ``ConfigError``, ``DataError``, ``CheckpointError`` or ``FolderError``)
before a single file is touched; the caller claims the output folder next
(:func:`jaxbp.cli.run_folder.claim`).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from jaxbp.cli import config
from jaxbp.cli.build import Model, build_model
from jaxbp.cli.config import RunOptions, TrainConfig
from jaxbp.cli.dataset import Data, load_data
from jaxbp.cli.start import start_run
from jaxbp.cli.state import State, initial_state


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A run ready to train: its settings, where it writes, its data, model and starting state."""

    config: TrainConfig
    options: RunOptions
    out: Path
    data: Data
    model: Model
    state: State

    @property
    def steps_per_epoch(self) -> int:
        return self.model.steps_per_epoch

    @property
    def total_steps(self) -> int:
        return self.config.epochs * self.model.steps_per_epoch


def prepare(args: argparse.Namespace) -> Prepared:
    """Validate and build a run from the parsed flags of ``jaxbp train``; writes nothing."""
    start = start_run(args)
    cfg = start.config
    data = load_data(cfg, start.network, start.resumed)
    model = build_model(cfg, data, start.network)
    state = initial_state(cfg, model, data, start.resumed)
    if start.options.patience and len(data.val[0]) == 0:
        raise config.ConfigError(
            "--patience watches the validation loss, but --val-fraction 0 leaves no "
            "validation set; pass --val-fraction 0.1, or drop --patience"
        )
    return Prepared(cfg, start.options, start.out, data, model, state)
