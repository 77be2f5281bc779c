"""The host loop of chunked training: one chunk in flight, callbacks between chunks.

:func:`run_chunks` dispatches chunk ``k + 1`` before waiting for chunk ``k``'s results and running
the between-chunk work on them, so the device computes while the host works; a background thread
(:mod:`jaxbp.training.prefetch`) has meanwhile read and transferred the chunk after that. At most two
chunks are dispatched and ``prefetch`` more wait on the device. When the between-chunk work asks
to stop after chunk ``k``, the state after chunk ``k`` is returned (chunk ``k + 1``'s result is
dropped): exactly the state the callbacks saw. See :mod:`jaxbp.training.chunked` for the training run.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.data.sources import BatchError, Chunk
from jaxbp.training.prefetch import Prefetcher

#: The bytes of one chunk (host and device) that the automatic ``K`` aims at.
CHUNK_BYTES = 16 * 2**20
#: The most steps a chunk runs when the batches are tiny.
MAX_CHUNK_STEPS = 4096


def auto_chunk_steps(batch_bytes: int, every: int | None, total: int | None) -> int:
    """``K`` such that a chunk holds about ``CHUNK_BYTES`` of data, within ``[1, every, total]``."""
    steps = max(1, min(MAX_CHUNK_STEPS, CHUNK_BYTES // max(batch_bytes, 1)))
    for bound in (every, total):
        if bound is not None:
            steps = min(steps, bound)
    return max(1, steps)


@dataclasses.dataclass
class Outcome:
    """What :func:`run_chunks` ends with.

    Attributes:
        state: the training state after ``steps_done`` steps.
        losses: the per-step loss arrays of every chunk that counts, in order.
        steps_done: global steps done when the loop ended (counted from the run's first step).
        stop: ``None`` when the data or the step budget ran out, else the reason (a callback's
            name, ``"nonfinite"``).
        chunks: how many chunks were dispatched.
        host_seconds: time the host spent dispatching chunks and in the between-chunk work.
        wait_seconds: time the host waited for the reader (the input pipeline's stall).
    """

    state: Any
    losses: list[Any]
    steps_done: int
    stop: str | None
    chunks: int = 0
    host_seconds: float = 0.0
    wait_seconds: float = 0.0


def run_chunks(
    run_chunk: Callable[[Any, Chunk], tuple[Any, Any]],
    state: Any,
    chunks: Iterator[Chunk],
    *,
    start: int,
    place: Callable[[Chunk], Chunk],
    prefetch: int,
    after_chunk: Callable[[int, Any, Any], str | None],
    on_error: Callable[[BatchError, Any, list[Any], int], None],
) -> Outcome:
    """Run ``run_chunk`` over every chunk, one in flight, calling ``after_chunk`` between chunks.

    Args:
        run_chunk: ``(state, placed_chunk) -> (state, losses)``, dispatched asynchronously.
        state: the training state before global step ``start``.
        chunks: host chunks from a source, starting at global step ``start``.
        place: moves a chunk to the device (runs in the prefetch thread).
        prefetch: chunks read ahead (0: read in this thread, no overlap).
        after_chunk: ``(steps_done, state, losses) -> stop reason or None``, after each chunk.
        on_error: called with a source's :class:`BatchError`, the last good state, the losses
            so far and the steps done, to attach them before the error propagates.
    """
    out = Outcome(state, [], start, None)
    pending: tuple[Any, Any, int] | None = None  # dispatched, not yet looked at
    clock = time.perf_counter
    with Prefetcher(chunks, place, depth=prefetch) as ready:
        iterator = iter(ready)
        while True:
            tick = clock()
            try:
                chunk = next(iterator, None)
            except BatchError as error:
                if (
                    pending is not None
                ):  # the last good chunk still gets its callbacks (checkpoints)
                    after_chunk(pending[2], pending[0], pending[1])
                on_error(error, out.state, out.losses, out.steps_done)
                raise
            tock = clock()
            out.wait_seconds += tock - tick
            if chunk is None:
                break
            new_state, chunk_losses = run_chunk(out.state, chunk)
            out.chunks += 1
            out.host_seconds += clock() - tock
            if pending is not None:
                jax.block_until_ready(pending[1])  # bounds the chunks in flight to two
                tick = clock()
                stop = after_chunk(pending[2], pending[0], pending[1])
                out.host_seconds += clock() - tick
                if stop is not None:
                    out.state, out.steps_done, out.stop = pending[0], pending[2], stop
                    return out
            out.losses.append(chunk_losses)
            out.state, out.steps_done = new_state, chunk.first + chunk.steps
            pending = (out.state, chunk_losses, out.steps_done)
    if pending is not None:
        out.stop = after_chunk(pending[2], pending[0], pending[1])
    return out


def check_finite_chunks(where: str, chunks: Iterator[Chunk]) -> Iterator[Chunk]:
    """Pass chunks through; raise :class:`BatchError` at the first batch holding NaN or infinity
    (``fit`` refuses such data on the device path too)."""
    for chunk in chunks:
        for name, array in (("x", chunk.x), ("y", chunk.y)):
            # jnp.issubdtype: NumPy's own does not count bfloat16 (ml_dtypes) as floating
            if array is None or not jnp.issubdtype(array.dtype, jnp.floating):
                continue
            finite = np.isfinite(array).reshape(chunk.steps, -1).all(axis=1)
            if not finite.all():
                index = chunk.first + int(np.argmin(finite))
                raise BatchError(
                    f"{where}: batch {index} holds NaN or infinite values in {name}; training on "
                    f"them gives NaN gradients. Remove or impute them in the data first.",
                    index,
                )
        yield chunk
