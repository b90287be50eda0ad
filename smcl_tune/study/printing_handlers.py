"""A logging filter put on every handler that prints this process's records: the root logger's,
and those of the libraries named (Ray's, MLflow's), whose loggers print through handlers of their own."""

from __future__ import annotations

import logging
from collections.abc import Sequence


def add_to_printing_handlers(filter_type: type[logging.Filter], libraries: Sequence[str]) -> None:
    """One `filter_type()` on each handler of the root logger and of `libraries`' loggers (once)."""
    names = [None, *(name for name in logging.root.manager.loggerDict if name.split(".")[0] in libraries)]
    for name in names:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(item, filter_type) for item in handler.filters):
                handler.addFilter(filter_type())
