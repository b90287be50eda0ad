"""A signal handler set for a block and the one before it put back afterwards, even where a library
put in its own meanwhile (Ray's `ray.init` and Ray Tune's fit do)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def handler_kept(signum: int, handler: Callable[..., Any] | None = None) -> Iterator[None]:
    """While the block runs, `handler` for `signum` (None: whatever is set now); afterwards the handler
    that was there before. Only the main thread may set handlers: elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.getsignal(signum)
    if handler is not None:
        signal.signal(signum, handler)
    try:
        yield
    finally:
        if before is not None:
            signal.signal(signum, before)
