"""A study's object store (`storage: s3://...`) that stops answering in the middle of a study: a
trial's checkpoint upload (and its resume's download) waits for it, up to the study file's
`storage_outage_timeout_s`, as the database and the tracking server are waited for (outage_wait.py).
Past it, the trial reports the outage instead of failing, and the driver stops the study on that
report with one line (trial_data_error.py's StopOnDataError), resumably: no trial is recorded as
failed, and each continues from its last checkpoint once the store answers again."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from typing import Any, TypeVar

from smcl_tune.errors import error_chain
from smcl_tune.study.outage_wait import Outage, StoreDown, wait_through
from smcl_tune.study.printing_handlers import add_to_printing_handlers
from smcl_tune.studyfile.schema import OBJECTIVE_METRICS

T = TypeVar("T")

STORE_DOWN = "store_down"  # the key of a trial's report that its object store did not answer: the message
TIMEOUT_FIELD = "storage_outage_timeout_s"

# What the AWS SDK (through pyarrow) and curl say of a store that is gone, overloaded or restarting,
# not of a refused request (ACCESS_DENIED, a missing bucket); GCS's transient codes likewise.
UNREACHABLE_TEXTS = (
    "network_connection",
    "could not connect",
    "couldn't connect",
    "connection refused",
    "connection reset",
    "connection was reset",
    "failure when receiving data",
    "failed sending data",
    "empty reply from server",
    "timeout was reached",
    "timed out",
    "service_unavailable",
    "internal_failure",
    "throttling",
    "unavailable",
    "deadline_exceeded",
)
TRANSIENT_STATUS = re.compile(r"http status (5\d\d|429)")  # a load balancer's answer for a store behind it
# a record of Ray's or pyarrow's is about the object store when its text says so
STORE_SIGNS = ("aws error", "curlcode", "google::cloud")


class ObjectStoreDown(StoreDown):
    """The study's object store did not answer within storage_outage_timeout_s."""


def is_object_store_unreachable(error: BaseException) -> bool:
    return any(isinstance(link, OSError) and _says_unreachable(str(link).lower()) for link in error_chain(error))


def _says_unreachable(text: str) -> bool:
    return any(sign in text for sign in UNREACHABLE_TEXTS) or TRANSIENT_STATUS.search(text) is not None


def object_store_outage(uri: str, timeout_s: float) -> Outage:
    """What a trial of a study stored at `uri` waits for (picklable: it travels with the trainable)."""
    return Outage(f"the object store {uri}", is_object_store_unreachable, timeout_s, TIMEOUT_FIELD, ObjectStoreDown)


def waiting_for_the_store(outage: Outage | None, action: Callable[[], T], what: str) -> T:
    """`action()`, waiting through the object store's outage if the study has one (else at once)."""
    return action() if outage is None else wait_through(outage, action, what)


def store_down_report(error: ObjectStoreDown) -> dict[str, Any]:
    """The one report of a trial whose object store did not answer in time."""
    return {**dict.fromkeys(OBJECTIVE_METRICS, math.nan), STORE_DOWN: str(error)}


class _HideUnreachableStore(logging.Filter):
    """Drops Ray's and pyarrow's records (tracebacks) of an object store that does not answer: the
    trials say once that they wait for it, and the study stops with one line past the wait. A
    record without the store's own words (an AWS error, curl's) is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(("ray", "pyarrow")):
            return True
        error = record.exc_info[1] if record.exc_info else None
        texts = [record.getMessage().lower(), *(str(link).lower() for link in error_chain(error))]
        return not any(_says_unreachable(text) and any(sign in text for sign in STORE_SIGNS) for text in texts)


def hide_unreachable_store_tracebacks() -> None:
    """On every handler that prints this process's records (the root's, Ray's)."""
    add_to_printing_handlers(_HideUnreachableStore, ("ray",))
