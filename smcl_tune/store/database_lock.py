"""One driver per study, guaranteed by the study's database (`optuna.storage` on a server): the
lock row of database_record.py, held for the whole of `smcl-tune run` with a heartbeat.

The heartbeat checks the row again each time: a driver whose lock another took over, or whose
database has not answered for `optuna.outage_timeout_s` (and one heartbeat), stops its study (as Ctrl-C would, every
trial keeping its last checkpoint) and says why.
"""

from __future__ import annotations

import _thread
import logging
import signal
import threading
import time

import sqlalchemy as sa

from smcl_tune.errors import StudyBusy, first_line
from smcl_tune.store.database import shown
from smcl_tune.store.database_record import StudyTable

log = logging.getLogger(__name__)

HEARTBEAT_S = 10.0


def stale_after(outage_timeout_s: float) -> float:
    """How long after its last heartbeat a lock is free: longer than its holder waits for the
    database, so a driver that is still waiting never loses its lock to a second one."""
    return outage_timeout_s + 3 * HEARTBEAT_S


class DatabaseLock:
    def __init__(self, url: str, study: str, outage_timeout_s: float) -> None:
        self.url = url
        self.study = study
        self.outage_timeout_s = outage_timeout_s
        self.stale_after_s = stale_after(outage_timeout_s)
        self.lost: str | None = None
        self._table: StudyTable | None = None
        self._token: str | None = None
        self._stop = threading.Event()
        self._beating: threading.Thread | None = None

    def acquire(self) -> None:
        self._table = StudyTable(self.url)
        token, holder = self._table.take(self.study, self.stale_after_s)
        if token is None:
            self._table.close()
            age = time.time() - holder.heartbeat if holder else 0.0
            raise StudyBusy(
                f"study '{self.study}' is being run by {holder.describe() if holder else 'another driver'} "
                f"(its lock in the database {shown(self.url)}, last heartbeat {age:.0f} s ago); wait for that "
                f"run to end, or stop it first; a lock is free {self.stale_after_s:.0f} s after its driver's last "
                "heartbeat, or at once when that driver was a process of this host that has ended"
            )
        self._token = token
        self._beating = threading.Thread(target=self._beat, name="smcl-tune-lock-heartbeat", daemon=True)
        self._beating.start()

    def _beat(self) -> None:
        down_since: float | None = None
        while not self._stop.wait(HEARTBEAT_S):
            try:
                kept = self._table.beat(self.study, self._token)
            except sa.exc.DBAPIError as error:
                now = time.monotonic()
                if down_since is None:
                    down_since = now
                    log.warning(
                        "the database %s does not answer (%s); the study stops if it does not within %g s",
                        shown(self.url),
                        first_line(error),
                        self.outage_timeout_s,
                    )
                # the searcher's own wait (database_outage.py) usually ends the study first, with the
                # same message; this one stops a study that asks nothing of Optuna meanwhile
                if now - down_since >= self.outage_timeout_s + HEARTBEAT_S:
                    return self._stop_study(
                        f"the database {shown(self.url)} has not answered for {now - down_since:.0f} s "
                        f"(optuna.outage_timeout_s: {self.outage_timeout_s:g}); the study stopped and keeps every "
                        "trial's last checkpoint: start the database (or wait for it) and run the same command again"
                    )
                continue
            if down_since is not None:
                log.warning("the database %s answers again; the study goes on", shown(self.url))
                down_since = None
            if not kept:
                holder = self._table.holder(self.study)
                return self._stop_study(
                    f"study '{self.study}': its lock in the database {shown(self.url)} was taken over by "
                    f"{holder.describe() if holder else 'another driver'}; this driver stopped its trials, which keep "
                    "their last checkpoints"
                )
        return None

    def _stop_study(self, message: str) -> None:
        self.lost = message
        log.error("%s", message)
        _thread.interrupt_main(signal.SIGINT)  # Ray Tune stops its trials as on Ctrl-C

    def withdraw(self) -> None:
        """Nothing to take back: the lock's row goes with its release."""

    def release(self) -> None:
        self._stop.set()
        if self._beating is not None:
            self._beating.join()
        if self._table is not None:
            if self._token is not None and self.lost is None:
                try:
                    self._table.release(self.study, self._token)
                except sa.exc.DBAPIError as error:  # the lock frees itself once its heartbeat is stale
                    log.warning("could not release the study's lock in the database (%s)", first_line(error))
            self._table.close()

    def __enter__(self) -> DatabaseLock:
        self.acquire()
        return self

    def __exit__(self, *_exc) -> None:
        self.release()


def database_driver_holds(url: str, study: str) -> bool | None:
    """Whether a live driver holds the study's lock row (its heartbeat is recent, or it is a
    running process of this host): True, False, or None when the database cannot be read."""
    try:
        with StudyTable(url) as table:
            holder = table.holder(study)
            return holder is not None and not table.is_free(holder, stale_after_s=3 * HEARTBEAT_S)
    except (sa.exc.DBAPIError, ModuleNotFoundError):
        return None
