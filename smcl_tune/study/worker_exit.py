"""A trial worker that Ray stops with SIGTERM while it collects garbage exits without a traceback.

Ray's SIGTERM handler raises SystemExit. Raised inside a weakref callback or a finalizer, Python
cannot propagate it and prints "Exception ignored in ..." with a traceback, which Ray forwards to
the study's output although nothing went wrong: the worker was being shut down.
"""

from __future__ import annotations

import logging
import sys

log = logging.getLogger(__name__)

_default_hook = sys.unraisablehook


def _quiet_about_exits(unraisable: sys.UnraisableHookArgs) -> None:
    if isinstance(unraisable.exc_value, SystemExit):
        log.debug("exit requested while Python ran %r; leaving quietly", unraisable.object)
        return
    _default_hook(unraisable)


def quiet_exit_during_cleanup() -> None:
    """Let SystemExit raised where Python cannot propagate it pass without a printed traceback."""
    sys.unraisablehook = _quiet_about_exits
