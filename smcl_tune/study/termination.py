"""SIGTERM (`kill PID`, `ray job stop`, a service manager) stops a study as Ctrl-C does: Ray Tune
saves its state and the study is `stopped`, resumable with the same command. Ray's own handler,
installed when the driver connects, aborted the driver with a stack dump instead (exit code 15),
and the study was recorded as failed."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def _as_ctrl_c(signum, frame) -> None:
    handler = signal.getsignal(signal.SIGINT)  # Ray Tune's while it fits (it stops the fit gracefully)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


@contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = signal.signal(signal.SIGTERM, _as_ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def sigint_restored_after() -> Iterator[None]:
    """Ray Tune's fit puts in a SIGINT handler of its own and leaves it when the fit returns: Ctrl-C
    (and SIGTERM, forwarded to it) then only logged a warning while the study run was ended."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.getsignal(signal.SIGINT)
    try:
        yield
    finally:
        if before is not None:
            signal.signal(signal.SIGINT, before)
