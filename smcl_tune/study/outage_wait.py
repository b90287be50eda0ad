"""A store that stops answering in the middle of a study (a tracking server, the study's database)
is waited for, up to the study file's timeout; past it, the study stops with one message naming
the store. The driver says once that it waits, and once that the store answers again."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from smcl_tune.errors import StudyStop, error_chain

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_OUTAGE_TIMEOUT_S = 600.0  # the study file's default for tracking and optuna


class StoreDown(StudyStop):
    """A store did not answer within its outage timeout."""

    def __reduce__(self):
        return (type(self), self.args)


@dataclass(frozen=True)
class Outage:
    """What is waited for: its name in messages (`the tracking server http://...`), which errors
    mean it does not answer, the wait's limit and the study-file field that sets it, and the
    error raised past it."""

    store: str
    is_unreachable: Callable[[BaseException], bool]
    timeout_s: float
    timeout_field: str
    error: type[StoreDown] = StoreDown

    def message(self, waited_s: float) -> str:
        return (
            f"{self.store} has not answered for {waited_s:.0f} s ({self.timeout_field}: {self.timeout_s:g}); the "
            "study stopped and keeps every trial's last checkpoint: start it (or wait for it) and run the same "
            "command again to resume"
        )


def wait_through(outage: Outage, action: Callable[[], T], what: str) -> T:
    """`action()`; while the store does not answer, wait and try again, for up to its timeout
    (then its error, with one message)."""
    down_since: float | None = None
    pause = 1.0
    while True:
        try:
            result = action()
        except Exception as error:
            if not outage.is_unreachable(error):
                raise
            now = time.monotonic()
            if down_since is None:
                down_since = now
                log.warning(
                    "waiting for %s (%s); the study stops if it does not answer within %g s",
                    outage.store,
                    what,
                    outage.timeout_s,
                )
            if now - down_since >= outage.timeout_s:
                raise outage.error(outage.message(now - down_since)) from None
            time.sleep(min(pause, max(0.1, down_since + outage.timeout_s - now)))
            pause = min(2 * pause, 10.0)
            continue
        if down_since is not None:
            log.warning("%s answers again after %.0f s; the study goes on", outage.store, time.monotonic() - down_since)
        return result


def _study_stop_in(error: BaseException | None) -> StudyStop | None:
    return next((link for link in error_chain(error) if isinstance(link, StudyStop)), None)


def stops_the_study(error: BaseException) -> bool:
    """Whether `error` ends the study resumably: a StudyStop, or an error Ray Tune raised over one."""
    return _study_stop_in(error) is not None or _deferred is not None


# A StoreDown raised where Ray Tune would take it for one trial's failure (a searcher's
# on_trial_complete: Ray's stop_trial logs it with a traceback and goes on) is kept here instead, and
# raised by the next store call of the searcher or once the fit returns (raise_deferred).
_deferred: StoreDown | None = None


def defer(error: StoreDown) -> None:
    global _deferred
    if _deferred is None:
        log.debug("deferred until Ray Tune can be stopped: %s", error)
        _deferred = error


def raise_deferred() -> None:
    if _deferred is not None:
        raise _deferred


def deferred_stop() -> StoreDown | None:
    """The StoreDown the study stops on at the searcher's next call, if one is deferred."""
    return _deferred


@contextmanager
def stopping_on_study_stop() -> Iterator[None]:
    """A StudyStop (a store down, data every trial lacks) raised in Tune's callbacks or searcher
    (and whatever failed after it, the study run's end among them), or a StoreDown deferred, leaves
    the study as that one error."""
    global _deferred
    _deferred = None
    try:
        yield
        raise_deferred()
    except StudyStop:
        raise
    except Exception as error:
        stop = _study_stop_in(error) or _deferred
        if stop is None:
            raise
        raise stop from None
    finally:
        _deferred = None
