"""A study store moved to another folder or machine: point its artifacts at their new place.

MLflow keeps each experiment's artifact location, and each run's, as an absolute file URI. A store
written on a GPU machine under /tmp/gpu-study and read here from ~/runs/gpu-study still names
/tmp/gpu-study/mlartifacts, and the UI lists no artifacts. The store's own artifact folder
travels with it, so `smcl-tune ui` rewrites the locations that named an `mlartifacts` folder no
longer on this machine to the one beside the database. A location whose folder still exists
(another store sharing the database, or the original of a copy) is left as it is.

A study's Optuna storage is recorded the same way (its sqlite file's absolute path); one kept in
the study's storage folder travels with the store, and is read from there.
"""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from smcl_tune.layout import ARTIFACT_FOLDER, OPTUNA_FILE
from smcl_tune.store.paths import optuna_database
from smcl_tune.store.sqlite_copy import sqlite_path

log = logging.getLogger(__name__)


def relocate_artifacts(tracking_uri: str, artifact_root: Path) -> list[str]:
    """Rewrite the artifact locations of a moved sqlite store to `artifact_root`; the old
    locations that were rewritten (none for a store that has not moved, or any other store)."""
    database = sqlite_path(tracking_uri)
    if database is None or not database.is_file() or not artifact_root.is_dir():
        return []
    try:
        return _relocate(database, artifact_root.resolve().as_uri())
    except sqlite3.Error as error:  # damaged, read-only or busy: the runs still show, their artifacts may not
        log.warning("%s: cannot point a moved store's artifacts at %s (%s)", database, artifact_root, error)
        return []


def _relocate(database: Path, new: str) -> list[str]:
    with closing(sqlite3.connect(database, timeout=30)) as connection, connection:
        experiments = connection.execute("SELECT experiment_id, artifact_location FROM experiments").fetchall()
        moved = [
            (experiment_id, location)
            for experiment_id, location in experiments
            if location
            and location.startswith("file://")
            and location.rstrip("/").endswith(f"/{ARTIFACT_FOLDER}")
            and not Path(url2pathname(urlparse(location).path)).exists()  # the store's own folder exists
        ]
        for experiment_id, location in moved:
            old = location.rstrip("/")
            connection.execute(
                "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?", (new, experiment_id)
            )
            connection.execute(
                "UPDATE runs SET artifact_uri = ? || substr(artifact_uri, ?) "
                "WHERE experiment_id = ? AND substr(artifact_uri, 1, ?) = ?",
                (new, len(old) + 1, experiment_id, len(old) + 1, f"{old}/"),
            )
            log.info(
                "%s: the store was moved; its artifacts, recorded under %s, are now read from %s", database, old, new
            )
    return [location for _, location in moved]


def optuna_url_beside(recorded: str | None, tracking_uri: str, study: str) -> str | None:
    """The Optuna storage of `study` whose MLflow store is read at `tracking_uri`: an sqlite file
    at its default place (`STORAGE/STUDY/optuna.db`) was written beside that store, so a store moved
    or copied elsewhere is read from its own folder, not from the recorded path (gone, or the
    original's), unless only the recorded file exists; any other storage (a server, a file of the
    study file's choosing) as recorded."""
    recorded_file = sqlite_path(recorded or "")
    database = sqlite_path(tracking_uri)
    at_default_place = recorded_file is not None and recorded_file.parts[-2:] == (study, OPTUNA_FILE)
    if not at_default_place or database is None:
        return recorded
    beside = optuna_database(database.parent, study)
    return recorded if recorded_file.is_file() and not beside.is_file() else f"sqlite:///{beside}"
