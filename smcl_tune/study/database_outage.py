"""The study's database (optuna.storage on a server) stopping in the middle of a study: every
Optuna call of the searcher waits for it, up to `optuna.outage_timeout_s`, as a tracking server is
waited for (outage_wait.py); past it, the study stops with one line, resumable."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from smcl_tune.errors import error_chain
from smcl_tune.store.database import is_server, shown
from smcl_tune.study.outage_wait import Outage, StoreDown, wait_through
from smcl_tune.study.retry import retry_while_locked

T = TypeVar("T")

# what libpq and psycopg say when the server is gone, restarting or not there (not a refused query)
UNREACHABLE_TEXTS = (
    "connection refused",
    "connection failed",
    "server closed the connection",
    "terminating connection",
    "the database system is shutting down",
    "the database system is starting up",
    "could not connect",
    "connection is closed",
    "consuming input failed",
    "connection timeout expired",
    "lost connection",
    "can't connect",
)


class DatabaseDown(StoreDown):
    """The study's database did not answer within optuna.outage_timeout_s."""


def is_database_unreachable(error: BaseException) -> bool:
    return any(
        type(link).__name__ in ("OperationalError", "InterfaceError")
        and any(text in str(link).lower() for text in UNREACHABLE_TEXTS)
        for link in error_chain(error)
    )


def stored(url: str | None, timeout_s: float, action: Callable[[], T], what: str) -> T | None:
    """`action()` on the study's Optuna storage: an sqlite file's lock is waited out (retry.py), a
    database server's outage too, up to `timeout_s` (then DatabaseDown)."""
    if url is None or not is_server(url):
        return retry_while_locked(action, what)
    outage = Outage(
        f"the database {shown(url)}", is_database_unreachable, timeout_s, "optuna.outage_timeout_s", DatabaseDown
    )
    return wait_through(outage, action, what)
