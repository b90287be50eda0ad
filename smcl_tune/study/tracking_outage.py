"""A tracking server that stops answering in the middle of a study is waited for, up to the study
file's `tracking.outage_timeout_s`; past it, the study stops with one message naming the server.

MLflow's own HTTP retries (urllib3's, with a warning per retry) are turned down for the driver:
the wait is this module's, which says once that it is waiting and once that the server is back.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from smcl_tune.errors import StudyUnavailable, error_chain
from smcl_tune.studyfile.study import redact_uri

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_OUTAGE_TIMEOUT_S = 600.0
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


class TrackingServerDown(StudyUnavailable):
    """The tracking server did not answer within tracking.outage_timeout_s."""

    def __reduce__(self):
        return (type(self), self.args)


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


def outage_message(uri: str, waited_s: float, timeout_s: float) -> str:
    return (
        f"the tracking server {redact_uri(uri)} has not answered for {waited_s:.0f} s "
        f"(tracking.outage_timeout_s: {timeout_s:g}); the study stopped and keeps every trial's last "
        "checkpoint: start the server (or wait for it) and run the same command again to resume"
    )


def wait_for_tracking_server(action: Callable[[], T], what: str, uri: str, timeout_s: float) -> T:
    """`action()`; while the tracking server does not answer, wait and try again, for up to
    `timeout_s` seconds (then TrackingServerDown)."""
    down_since: float | None = None
    pause = 1.0
    while True:
        try:
            result = action()
        except Exception as error:
            if not is_unreachable(error):
                raise
            now = time.monotonic()
            if down_since is None:
                down_since = now
                log.warning(
                    "waiting for the tracking server %s (%s); the study stops if it does not answer within %g s",
                    redact_uri(uri),
                    what,
                    timeout_s,
                )
            if now - down_since >= timeout_s:
                raise TrackingServerDown(outage_message(uri, now - down_since, timeout_s)) from None
            time.sleep(min(pause, max(0.1, down_since + timeout_s - now)))
            pause = min(2 * pause, 10.0)
            continue
        if down_since is not None:
            log.warning(
                "the tracking server %s answers again after %.0f s; the study goes on",
                redact_uri(uri),
                time.monotonic() - down_since,
            )
        return result


def _outage_in(error: BaseException | None) -> TrackingServerDown | None:
    return next((link for link in error_chain(error) if isinstance(link, TrackingServerDown)), None)


@contextmanager
def stopping_when_server_down() -> Iterator[None]:
    """A TrackingServerDown raised in Tune's callbacks (and whatever failed after it, the study run's
    end among them) leaves the study as that one error."""
    try:
        yield
    except TrackingServerDown:
        raise
    except Exception as error:
        outage = _outage_in(error)
        if outage is None:
            raise
        raise outage from None
