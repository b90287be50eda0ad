"""Writes to the study's sqlite stores survive readers that hold a lock for a while.

A reader (the Optuna dashboard, an MLflow UI, a script) may lock `optuna.db` or `mlflow.db` for
longer than sqlite's busy timeout; the driver must never die of it. A write that finds the
database locked is retried with growing pauses; if it is still locked after `patience` seconds,
the error is logged and the driver goes on (that one write is lost, the study is not).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from smcl_tune.errors import error_chain

log = logging.getLogger(__name__)

T = TypeVar("T")
PATIENCE_S = 300.0


def is_locked_error(error: BaseException | None) -> bool:
    """An sqlite lock, even wrapped (Optuna raises StorageInternalError from sqlalchemy's error)."""
    return any(
        "database is locked" in str(link) or "database table is locked" in str(link) for link in error_chain(error)
    )


def retry_while_locked(action: Callable[[], T], what: str, patience: float = PATIENCE_S) -> T | None:
    """`action()`; while it fails because a database is locked, wait and try again."""
    deadline, pause = time.monotonic() + patience, 0.5
    while True:
        try:
            return action()
        except Exception as error:  # sqlalchemy, MLflow and Optuna each wrap it their own way
            if not is_locked_error(error):
                raise
            if time.monotonic() > deadline:
                log.error("%s: the database stayed locked for %.0f s; skipped (%s)", what, patience, error)
                return None
            log.warning("%s: the database is locked by a reader; trying again in %.1f s", what, pause)
            time.sleep(pause)
            pause = min(2 * pause, 10.0)
