"""SIGTERM (`kill PID`, a service manager, `timeout`) interrupts a command as Ctrl-C does: what it
was writing is cleaned up on the way out (a partial download, a dashboard's copy of a store), and a
study says how to resume it. Without it, SIGTERM ended the process where it stood."""

from __future__ import annotations

import contextlib
import signal

from smcl_tune.signal_handlers import handler_kept


def _interrupt(*_signal) -> None:
    raise KeyboardInterrupt


def sigterm_as_interrupt() -> contextlib.AbstractContextManager[None]:
    return handler_kept(signal.SIGTERM, _interrupt)
