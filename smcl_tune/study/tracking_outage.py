"""A tracking server that stops answering in the middle of a study is waited for, up to the study
file's `tracking.outage_timeout_s`; past it, the study stops with one message naming the server.

MLflow's own HTTP retries (urllib3's, with a warning per retry) are turned down for the driver:
the wait is this module's, which says once that it is waiting and once that the server is back.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from smcl_tune.errors import error_chain
from smcl_tune.study.outage_wait import Outage, StoreDown, wait_through
from smcl_tune.studyfile.study import redact_uri

T = TypeVar("T")
# MLflow's client retries a refused connection 7 times over minutes, a warning each; here it fails
# at once, and a request to a server that hangs gives up after 30 s, so that the wait below decides.
MLFLOW_HTTP_SETTINGS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
# requests' and urllib3's errors of a connection (not of an answer: an HTTP error means the server is up)
CONNECTION_ERRORS = frozenset(
    {"ConnectionError", "ConnectTimeout", "ReadTimeout", "NewConnectionError", "ProtocolError"}
)
UNREACHABLE_TEXTS = (
    "connection refused",
    "failed to establish a new connection",
    "connection aborted",
    "remote end closed connection",
    "read timed out",
    "failed with timeout exception",
)


class TrackingServerDown(StoreDown):
    """The tracking server did not answer within tracking.outage_timeout_s."""


def quiet_mlflow_retries() -> None:
    """This process's MLflow client: no retries of its own (unless the user set them)."""
    for name, value in MLFLOW_HTTP_SETTINGS.items():
        os.environ.setdefault(name, value)


def is_unreachable(error: BaseException | None) -> bool:
    """A connection to the server that failed (refused, reset, timed out), however MLflow wraps it."""
    return any(_says_unreachable(link) for link in error_chain(error))


def _says_unreachable(error: BaseException) -> bool:
    if isinstance(error, (ConnectionError, TimeoutError)):
        return True
    if type(error).__name__ in CONNECTION_ERRORS and type(error).__module__.split(".")[0] in ("requests", "urllib3"):
        return True
    text = str(error).lower()
    if any(unreachable in text for unreachable in UNREACHABLE_TEXTS):
        return True
    return "too many" in text and "error responses" in text  # 429 / 5xx, which MLflow itself would retry


def wait_for_tracking_server(action: Callable[[], T], what: str, uri: str, timeout_s: float) -> T:
    """`action()`; while the tracking server does not answer, wait and try again, for up to
    `timeout_s` seconds (then TrackingServerDown)."""
    outage = Outage(
        f"the tracking server {redact_uri(uri)}",
        is_unreachable,
        timeout_s,
        "tracking.outage_timeout_s",
        TrackingServerDown,
    )
    return wait_through(outage, action, what)
