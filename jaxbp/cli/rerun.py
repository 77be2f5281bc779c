"""The command that starts a diverged run again at a lower learning rate, in a fresh folder.

A run that diverged may already hold blown-up (finite but useless) weights in its last
checkpoint, so it is not continued: :func:`command` spells out a new run with every setting of
the old one that its flags would not give by themselves, ``--lr`` a tenth of the old rate, and
an ``--out`` next to the old folder that holds no run. ``jaxbp train`` prints it when a run
diverges, saves it as ``rerun`` in ``metrics.json``, and repeats it when asked to write into, or
resume, the diverged folder.
"""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

from jaxbp.cli import config
from jaxbp.cli.flags import as_flag_text
from jaxbp.training import checkpoint

#: Settings always written out, whatever their value.
_ALWAYS = ("data", "lr")


def lower_lr(lr: float) -> float:
    """The rate suggested after a divergence: a tenth."""
    return lr / 10


def command(cfg: config.TrainConfig, out: Path) -> str:
    """``jaxbp train ...`` with ``cfg``'s settings at a tenth of its rate, into a fresh folder."""
    settings = dataclasses.replace(cfg, lr=lower_lr(cfg.lr))
    given = {"data": cfg.data, "task": cfg.task, "target": cfg.target, "model": cfg.model}
    base = config.parse({name: None if value is None else str(value) for name, value in given.items()})  # fmt: skip
    words = ["jaxbp", "train"]
    for field in dataclasses.fields(config.TrainConfig):
        name, value = field.name, getattr(settings, field.name)
        if name not in _ALWAYS and name not in given and value == getattr(base, name):
            continue
        if value is None and name != "batch_size":  # a setting that does not apply
            continue
        if name == "target" and value == config.TrainConfig().target:
            continue
        if name == "task" and value == config.TrainConfig().task:
            continue
        if name == "scale_targets":
            if value is False:
                words.append("--no-scale-targets")
            continue
        text = repr(value) if isinstance(value, float) else as_flag_text(value)
        words += [config.flag_of(name), text]
    return shlex.join([*words, "--out", str(fresh_folder(out, settings.lr))])


def fresh_folder(out: Path, lr: float) -> Path:
    """``<out>-lr<rate>``, or with ``-2``, ``-3``, ... the first such folder without a run."""
    stem = f"{out.name}-lr{lr:g}"
    for number in range(1, 1000):
        folder = out.parent / (stem if number == 1 else f"{stem}-{number}")
        if not checkpoint.list_checkpoints(folder) and not (folder.exists() and not folder.is_dir()):  # fmt: skip
            return folder
    return out.parent / f"{stem}-new"
