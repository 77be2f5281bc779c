"""Ctrl-C (SIGINT) and SIGTERM for the command line: an orderly stop at any moment.

Two modes, switched by the command as it goes:

- **exit at once** (the default, while nothing of the run is saved yet, or once a run is
  stopped): the handler prints one line, flushes the output and ends the process with
  ``os._exit`` — no ``KeyboardInterrupt`` unwinding through JAX or a compiler thread, no
  traceback, no crash at interpreter shutdown. Files are only ever replaced by an atomic rename,
  so whatever was on disk is whole; a temporary file of a write cut short is removed by the next
  run in that folder.
- **save and stop** (while training): the first signal sets a flag that the training loop checks
  after each compiled chunk (see ``jaxbp.training.chunked``); it saves there, inside an epoch if need be,
  and exits. A second signal exits at once as above.

Exit codes: 130 for SIGINT (128 + 2), 143 for SIGTERM (128 + 15), as shells report them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

EXIT_CODES: dict[int, int] = {int(signal.SIGINT): 130, int(signal.SIGTERM): 143}
NAMES: dict[int, str] = {int(signal.SIGINT): "Ctrl-C", int(signal.SIGTERM): "SIGTERM"}


class Stopper:
    """The state of the handlers: which signal came first, and what to say on an immediate exit."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.received: int | None = None
        self.deferred = False
        self.exit_note = ""

    @property
    def requested(self) -> bool:
        """True once a signal asked the run to stop."""
        return self.received is not None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.received or signal.SIGINT, 130)

    @property
    def name(self) -> str:
        return NAMES.get(self.received or signal.SIGINT, "Ctrl-C")

    def handle(self, signum: int, frame: Any) -> None:
        first = self.received is None
        if first:
            self.received = signum
        if self.deferred and first:
            name = NAMES.get(signum, "signal")
            say(f"\n{self.prefix}: {name}: saving and stopping (again: stop at once)")
            return
        note = f"; {self.exit_note}" if self.exit_note else ""
        say(f"\n{self.prefix}: {NAMES.get(signum, 'signal')}: stopped{note}")
        os._exit(EXIT_CODES.get(signum, 130))

    @contextlib.contextmanager
    def deferring(self, exit_note: str) -> Iterator[None]:
        """While inside: the first signal only sets :attr:`requested`; an immediate exit (a
        second signal) says ``exit_note``."""
        self.deferred, self.exit_note = True, exit_note
        try:
            yield
        finally:
            self.deferred = False


def say(line: str) -> None:
    """Print ``line`` on stderr and flush both streams (before an ``os._exit``)."""
    with contextlib.suppress(Exception):  # stdout may be a closed pipe
        sys.stdout.flush()
    with contextlib.suppress(Exception):
        print(line, file=sys.stderr, flush=True)


@contextlib.contextmanager
def handled(prefix: str) -> Iterator[Stopper]:
    """Install the SIGINT and SIGTERM handlers for the block (main thread only)."""
    stopper = Stopper(prefix)
    if threading.current_thread() is not threading.main_thread():
        yield stopper
        return
    previous = {signum: signal.signal(signum, stopper.handle) for signum in EXIT_CODES}
    try:
        yield stopper
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
