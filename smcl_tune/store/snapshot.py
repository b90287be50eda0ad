"""Where a study stands (store/status.py), read from the store as it is now.

An embedded sqlite store is read from a consistent copy (see sqlite_copy), so a running driver
never waits on this reader for more than the copy's few milliseconds.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from smcl_tune.layout import MLFLOW_DATABASE
from smcl_tune.store.lock import study_lock_file
from smcl_tune.store.sqlite_copy import copy_database, sqlite_path
from smcl_tune.store.sqlite_reader import open_run_reader
from smcl_tune.store.status import StudyStatus, study_status
from smcl_tune.tracking.tags import STUDY_TAG


class StoreSnapshot:
    """The store as it is now: a consistent copy of an embedded sqlite store, the store itself otherwise."""

    def __init__(self, tracking_uri: str, storage: Path | None) -> None:
        self.tracking_uri = tracking_uri
        self.storage = storage
        self._folder: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> StoreSnapshot:
        path = sqlite_path(self.tracking_uri)
        uri = self.tracking_uri
        if path is not None:
            self._folder = tempfile.TemporaryDirectory(prefix="smcl-status-")
            copy = Path(self._folder.name) / MLFLOW_DATABASE
            copy_database(path, copy)
            uri = f"sqlite:///{copy}"
        self.store = open_run_reader(uri)
        return self

    def __exit__(self, *_exc) -> None:
        if self._folder is not None:
            self._folder.cleanup()

    def _lock_file(self, study: str) -> Path | None:
        return None if self.storage is None else study_lock_file(self.storage, study)

    def study_names(self) -> list[str]:
        return self.store.study_names()

    def status(self, study: str) -> StudyStatus | None:
        parent = self.store.study_run(study)
        return None if parent is None else study_status(self.store, parent, self._lock_file(study))

    def all_statuses(self) -> list[StudyStatus]:
        runs = sorted(self.store.study_runs(), key=lambda run: run.data.tags.get(STUDY_TAG, ""))
        return [study_status(self.store, run, self._lock_file(run.data.tags.get(STUDY_TAG, ""))) for run in runs]
