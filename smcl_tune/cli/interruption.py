"""SIGTERM (`kill PID`, a service manager, `timeout`) interrupts a command as Ctrl-C does: what it
was writing is cleaned up on the way out (a partial download, a dashboard's copy of a store), and a
study says how to resume it. Without it, SIGTERM ended the process where it stood."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


def _interrupt(*_signal) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
