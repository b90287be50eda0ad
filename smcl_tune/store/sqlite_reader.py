"""MLflow's sqlite store read directly, for the commands that must answer at once (`status`,
`leaderboard`): importing MLflow and opening its store take longer than the whole answer.

Only at a database schema MLflow's own code has been checked against here (its alembic revision,
KNOWN_REVISIONS): any other store, a newer MLflow's or a tracking server, is read through MLflow
(`open_run_reader`). The rows read are the ones MLflow's `search_runs` returns: active runs of
active experiments, each run's latest metrics, tags and params; tests/store/test_sqlite_reader.py
reads one store both ways and compares.
"""

from __future__ import annotations

import math
import sqlite3
from collections import defaultdict
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse
from urllib.request import url2pathname

from smcl_tune.errors import StudyUnavailable
from smcl_tune.store.sqlite_copy import sqlite_path
from smcl_tune.tracking.tags import PARENT_TAG, ROLE_TAG, STUDY_TAG

# MLflow 3.17's schema (mlflow.store.db.utils._get_latest_schema_revision()).
KNOWN_REVISIONS = frozenset({"dc11669786a5"})


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    run_name: str
    status: str
    start_time: int | None
    end_time: int | None
    experiment_id: str
    artifact_uri: str


@dataclass(frozen=True)
class RunData:
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredRun:
    """A run as MLflow's client gives it (`run.info`, `run.data`), read from the database itself."""

    info: RunInfo
    data: RunData


class RunReader(Protocol):
    """What the readers of a study store ask of it: SqliteRuns here, or MLflow's StudyStore."""

    def study_runs(self) -> list: ...

    def study_names(self) -> list[str]: ...

    def study_run(self, study: str): ...

    def trial_runs(self, parent) -> list: ...

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]: ...

    def artifact_bytes(self, run_id: str, path: str) -> bytes | None: ...

    def artifact_text(self, run_id: str, path: str) -> str | None: ...


def schema_revision(database: Path) -> str | None:
    """The alembic revision an sqlite MLflow store was made at; None when it has none."""
    try:
        with closing(_connection(database)) as connection:
            row = connection.execute("select version_num from alembic_version").fetchone()
    except (sqlite3.DatabaseError, StudyUnavailable):  # not MLflow's, or not a database: MLflow says why
        return None
    return None if row is None else row[0]


def _connection(database: Path) -> sqlite3.Connection:
    try:
        return sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as error:
        raise StudyUnavailable(f"{database}: cannot read the MLflow store ({error})") from None


class SqliteRuns:
    """Reads the runs of an sqlite MLflow store at a known schema (the reader StudyStore's methods)."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.uri = f"sqlite:///{database}"

    def _rows(self, query: str, parameters: tuple = ()) -> list[tuple]:
        try:
            with closing(_connection(self.database)) as connection:
                return connection.execute(query, parameters).fetchall()
        except sqlite3.DatabaseError as error:
            raise StudyUnavailable(f"{self.database}: cannot read the MLflow store ({error})") from None

    def _runs(self, where: str, parameters: tuple) -> list[StoredRun]:
        """Active runs of active experiments matching `where` (on the runs table as r), newest first."""
        rows = self._rows(
            "select r.run_uuid, r.name, r.status, r.start_time, r.end_time, r.experiment_id, r.artifact_uri "
            "from runs r join experiments e on e.experiment_id = r.experiment_id "
            f"where r.lifecycle_stage = 'active' and e.lifecycle_stage = 'active' and {where} "
            "order by r.start_time desc, r.run_uuid",
            parameters,
        )
        if not rows:
            return []
        ids = [row[0] for row in rows]
        tags, params, metrics = defaultdict(dict), defaultdict(dict), defaultdict(dict)
        marks = ",".join("?" * len(ids))
        for key, value, run in self._rows(f"select key, value, run_uuid from tags where run_uuid in ({marks})", ids):
            tags[run][key] = value
        for key, value, run in self._rows(f"select key, value, run_uuid from params where run_uuid in ({marks})", ids):
            params[run][key] = value
        for key, value, is_nan, run in self._rows(
            f"select key, value, is_nan, run_uuid from latest_metrics where run_uuid in ({marks})", ids
        ):
            metrics[run][key] = math.nan if is_nan else value
        return [
            StoredRun(
                RunInfo(run, name or "", status, start, end, str(experiment), artifact_uri or ""),
                RunData(tags[run], metrics[run], params[run]),
            )
            for run, name, status, start, end, experiment, artifact_uri in rows
        ]

    def _tagged(self, key: str, value: str) -> str:
        return f"r.run_uuid in (select run_uuid from tags where key = '{key}' and value = ?)"

    def study_runs(self) -> list[StoredRun]:
        return self._runs(self._tagged(ROLE_TAG, "study"), ("study",))

    def study_names(self) -> list[str]:
        return sorted({run.data.tags.get(STUDY_TAG, "") for run in self.study_runs()})

    def study_run(self, study: str) -> StoredRun | None:
        """The parent run of `study`, or None."""
        return next((run for run in self.study_runs() if run.data.tags.get(STUDY_TAG) == study), None)

    def trial_runs(self, parent: StoredRun) -> list[StoredRun]:
        return self._runs(self._tagged(PARENT_TAG, parent.info.run_id), (parent.info.run_id,))

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        rows = self._rows(
            "select step, value, is_nan from metrics where run_uuid = ? and key = ? order by timestamp, step",
            (run_id, key),
        )
        return [(step, math.nan if is_nan else value) for step, value, is_nan in rows]

    def artifact_bytes(self, run_id: str, path: str) -> bytes | None:
        """A run's artifact read from its folder (a local artifact store), None when there is none."""
        rows = self._rows("select artifact_uri from runs where run_uuid = ?", (run_id,))
        location = urlparse(rows[0][0]) if rows and rows[0][0] else None
        if location is None or location.scheme not in ("file", ""):
            return None
        try:
            return (Path(url2pathname(location.path)) / path).read_bytes()
        except OSError:
            return None

    def artifact_text(self, run_id: str, path: str) -> str | None:
        content = self.artifact_bytes(run_id, path)
        return None if content is None else content.decode()


def open_run_reader(uri: str) -> RunReader:
    """The fastest reader of a store: the database itself for an sqlite store at a known schema,
    MLflow's client (store/mlflow_reader.py) otherwise."""
    database = sqlite_path(uri)
    if database is not None and database.is_file() and schema_revision(database) in KNOWN_REVISIONS:
        return SqliteRuns(database)
    from smcl_tune.store.mlflow_reader import StudyStore  # MLflow: only for the stores read through it

    return StudyStore(uri)
