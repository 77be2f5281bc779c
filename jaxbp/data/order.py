"""The row order of every epoch: one rule, drawn the same way inside a program and for the host.

Epoch ``e`` of a shuffled run takes its ``n`` rows in the order
``jax.random.permutation(jax.random.fold_in(key, e), n)``, and batch ``b`` of it is rows
``order[b * batch_size : (b + 1) * batch_size]``. The whole-run program calls
:func:`epoch_permutation` inside its loop (:mod:`jaxbp.training.epochs`); the streamed chunks
call :func:`draw_epoch_permutation`, the same function compiled on its own, for the host to read
rows by (:mod:`jaxbp.data.sources`) or for a chunk's program to gather by
(:mod:`jaxbp.training.chunked`). Both therefore give the same batches, which is what the promise
that both paths give the same parameters bit for bit rests on.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import numpy as np


def epoch_permutation(key: Any, epoch: Any, n: int) -> Any:
    """Epoch ``epoch``'s order of ``n`` rows: ``permutation(fold_in(key, epoch), n)``, traceable.

    Args:
        key: the run's shuffling key (``jax.random.key``).
        epoch: the epoch's number counted from the run's start (epoch 0), an int32 scalar.
        n: the number of rows (static).

    Returns:
        int array of shape ``(n,)``.
    """
    return jax.random.permutation(jax.random.fold_in(key, epoch), n)


_draw = functools.partial(jax.jit, static_argnums=2)(epoch_permutation)


def draw_epoch_permutation(key: Any, epoch: int, n: int) -> Any:
    """:func:`epoch_permutation` as one compiled program, dispatched without waiting for it."""
    return _draw(key, np.int32(epoch), n)
