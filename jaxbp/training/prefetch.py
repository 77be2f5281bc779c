"""Double buffering: read and transfer the next chunk in a background thread while the device works.

:class:`Prefetcher` runs a producer (an iterator of host chunks) and a ``place`` function (usually
``jax.device_put``) in one background thread and hands the placed items to the training loop
through a bounded queue, so at most ``depth`` items wait ready while the device computes on the
current one. Reading (NumPy copies, page faults of a memmap) and the host-to-device copy release
the GIL, so they overlap the compiled program.

An exception in the thread (a failed read, a bad batch) is raised in the consuming thread at the
point where that item would have come, with its original type and traceback. Leaving the
``with`` block, normally, by an exception or by ``KeyboardInterrupt``, stops the thread and joins
it: no thread outlives the block. ``depth=0`` reads in the calling thread instead (no overlap),
which is what the benchmark compares against.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

_DONE = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


class Prefetcher:
    """Iterate ``place(item)`` for every ``item`` of ``produce``, ``depth`` items ahead.

    Use as a context manager::

        with Prefetcher(chunks, jax.device_put, depth=2) as ready:
            for chunk in ready:
                ...

    Args:
        produce: an iterator of host items; it runs in the background thread.
        place: applied to each item in the background thread (e.g. ``jax.device_put``).
        depth: how many placed items may wait in the queue; 0 runs everything in the caller.
    """

    def __init__(self, produce: Iterator[Any], place: Callable[[Any], Any], *, depth: int = 2):
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
            raise ValueError(f"Prefetcher: depth must be an int >= 0, got {depth!r}.")
        self.produce, self.place, self.depth = produce, place, depth
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(depth, 1))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Prefetcher:
        if self.depth > 0:
            self._thread = threading.Thread(target=self._work, name="jaxbp-prefetch", daemon=True)
            self._thread.start()
        return self

    def __iter__(self) -> Iterator[Any]:
        if self._thread is None:
            for item in self.produce:
                yield self.place(item)
            return
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            for item in self.produce:
                if self._stop.is_set() or not self._put(self.place(item)):
                    return
        except BaseException as error:  # handed to the consumer, raised there
            self._put(_Failure(error))
            return
        finally:
            close = getattr(self.produce, "close", None)
            if close is not None:
                close()
        self._put(_DONE)

    @property
    def alive(self) -> bool:
        """Whether the background thread is still running."""
        return self._thread is not None and self._thread.is_alive()

    def close(self, timeout: float = 30.0) -> None:
        """Stop the thread (after the item it is reading) and wait for it to end."""
        self._stop.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread is not None:
            self._thread.join(timeout)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
