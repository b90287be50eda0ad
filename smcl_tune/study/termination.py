"""SIGTERM (`kill PID`, `ray job stop`, a service manager) stops a study as Ctrl-C does: Ray Tune
saves its state and the study is `stopped`, resumable with the same command. Ray's own handler,
installed when the driver connects, aborted the driver with a stack dump instead (exit code 15),
and the study was recorded as failed."""

from __future__ import annotations

import signal
from contextlib import AbstractContextManager

from smcl_tune.signal_handlers import handler_kept


def _as_ctrl_c(signum, frame) -> None:
    handler = signal.getsignal(signal.SIGINT)  # Ray Tune's while it fits (it stops the fit gracefully)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


def sigterm_as_ctrl_c() -> AbstractContextManager[None]:
    return handler_kept(signal.SIGTERM, _as_ctrl_c)


def sigint_restored_after() -> AbstractContextManager[None]:
    """Ray Tune's fit puts in a SIGINT handler of its own and leaves it when the fit returns: Ctrl-C
    (and SIGTERM, forwarded to it) then only logged a warning while the study run was ended."""
    return handler_kept(signal.SIGINT)
