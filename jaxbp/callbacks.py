"""Callbacks that run between the compiled chunks of :func:`jaxbp.fit`: validation of one's own,
early stopping, a progress bar (or plain lines) and checkpoints. A callback is any
``callback(step, params, metrics)``; a return of ``True`` (or a NumPy or JAX boolean that is
true) or ``"stop"`` stops the run; ``None`` or anything else goes on.
Defined in :mod:`jaxbp.training.callbacks` and :mod:`jaxbp.training.checkpoint_callback`.
"""

from __future__ import annotations

from jaxbp.training.callbacks import (
    Callback,
    EarlyStopping,
    ProgressBar,
    Validation,
    callback_name,
    wants_stop,
)
from jaxbp.training.checkpoint_callback import (
    Checkpoints,
    save_checkpoint,
)

__all__ = (
    "Callback",
    "Checkpoints",
    "EarlyStopping",
    "ProgressBar",
    "Validation",
    "callback_name",
    "save_checkpoint",
    "wants_stop",
)
