"""A study's record and its driver's lock as one row of a table in the study's database, when
`optuna.storage` names a server: nothing a resumed study needs lives on the driver's disk.

The lock is a row naming its holder (host, pid, a token) with a heartbeat, not an advisory lock:
an advisory lock dies with its connection, so a database outage would hand it to a second driver.
A row whose heartbeat stopped is free after a while (`stale_after_s`), or at once when its holder
was a process of this host that no longer runs (a killed driver).
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from smcl_tune.store.database import creating_tables, engine, optuna_storage

TABLE = "smcl_tune_studies"
_metadata = sa.MetaData()
studies = sa.Table(
    TABLE,
    _metadata,
    sa.Column("name", sa.String(512), primary_key=True),
    sa.Column("record", sa.Text, nullable=True),
    sa.Column("token", sa.String(64), nullable=True),  # the lock's holder, or NULL when free
    sa.Column("holder_host", sa.String(255), nullable=True),
    sa.Column("holder_pid", sa.Integer, nullable=True),
    sa.Column("holder_since", sa.Float, nullable=True),  # seconds since the epoch
    sa.Column("heartbeat", sa.Float, nullable=True),  # seconds since the epoch, by the holder's clock
)


@dataclass(frozen=True)
class Holder:
    token: str
    host: str
    pid: int
    since: float
    heartbeat: float

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"process {self.pid} on {self.host} since {since}"


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        pass
    return True


class StudyTable:
    """The study rows of one database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = engine(url)
        creating_tables(lambda: _metadata.create_all(self.engine, checkfirst=True))

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> StudyTable:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def _row(self, name: str):
        with self.engine.connect() as connection:
            return connection.execute(sa.select(studies).where(studies.c.name == name)).first()

    def _ensure_row(self, name: str) -> None:
        if self._row(name) is not None:
            return
        try:
            with self.engine.begin() as connection:
                connection.execute(sa.insert(studies).values(name=name))
        except sa.exc.IntegrityError:
            pass  # inserted by another driver meanwhile

    # --- the record ---

    def record(self, name: str) -> dict[str, Any] | None:
        row = self._row(name)
        return None if row is None or row.record is None else json.loads(row.record)

    def write_record(self, name: str, record: dict[str, Any]) -> None:
        self._ensure_row(name)
        with self.engine.begin() as connection:
            connection.execute(sa.update(studies).where(studies.c.name == name).values(record=json.dumps(record)))

    def discard_record(self, name: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(sa.update(studies).where(studies.c.name == name).values(record=None))

    # --- the lock ---

    def holder(self, name: str) -> Holder | None:
        row = self._row(name)
        if row is None or row.token is None:
            return None
        return Holder(row.token, row.holder_host, row.holder_pid, row.holder_since, row.heartbeat)

    def is_free(self, holder: Holder | None, stale_after_s: float) -> bool:
        """No holder, a holder whose heartbeat stopped `stale_after_s` ago, or a process of this host
        that no longer runs."""
        if holder is None:
            return True
        if time.time() - holder.heartbeat > stale_after_s:
            return True
        return holder.host == socket.gethostname() and not _process_runs(holder.pid)

    def take(self, name: str, stale_after_s: float) -> tuple[str | None, Holder | None]:
        """(this driver's token, None), or (None, the holder) when another driver holds the lock. The
        update names the holder it saw, so of two drivers taking a free lock at once one wins."""
        self._ensure_row(name)
        seen = self.holder(name)
        if not self.is_free(seen, stale_after_s):
            return None, seen
        token, now = uuid.uuid4().hex, time.time()
        same_holder = studies.c.token.is_(None) if seen is None else studies.c.token == seen.token
        with self.engine.begin() as connection:
            taken = connection.execute(
                sa.update(studies)
                .where(studies.c.name == name, same_holder)
                .values(
                    token=token,
                    holder_host=socket.gethostname(),
                    holder_pid=os.getpid(),
                    holder_since=now,
                    heartbeat=now,
                )
            ).rowcount
        return (token, None) if taken == 1 else (None, self.holder(name))

    def beat(self, name: str, token: str) -> bool:
        """The heartbeat; False when the lock is no longer this driver's."""
        with self.engine.begin() as connection:
            kept = connection.execute(
                sa.update(studies).where(studies.c.name == name, studies.c.token == token).values(heartbeat=time.time())
            ).rowcount
        return kept == 1

    def release(self, name: str, token: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                sa.update(studies)
                .where(studies.c.name == name, studies.c.token == token)
                .values(token=None, holder_host=None, holder_pid=None, holder_since=None, heartbeat=None)
            )


def delete_optuna_studies(url: str, name: str) -> int:
    """The Optuna studies of study `name` (one per condition: `name` and `name/<condition>`) deleted
    from the Optuna storage at `url`; how many there were."""
    import optuna

    storage = optuna_storage(url)
    names = [known for known in optuna.get_all_study_names(storage) if known == name or known.startswith(f"{name}/")]
    for known in names:
        optuna.delete_study(study_name=known, storage=storage)
    return len(names)


def discard_study(url: str, name: str) -> int:
    """--restart of a study whose state is in a database: its record, and its Optuna studies; the
    number of Optuna studies deleted. Its lock stays."""
    deleted = delete_optuna_studies(url, name)
    with StudyTable(url) as table:
        table.discard_record(name)
    return deleted
