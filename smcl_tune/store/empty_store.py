"""A new study's embedded MLflow store, copied from an empty one that MLflow made once.

MLflow makes a new sqlite store by running its schema migrations: 1.57 CPU-s in a fresh process,
against 0.04 s to copy a store that it made before (docs/RESULTS.md). The empty store is kept in
smcl-tune's cache folder, one per MLflow version and set of schema migrations; a study's store
starts as a copy of it, its Default experiment as MLflow would have written it. Whatever goes
wrong here (no cache folder, a file system without hard links), MLflow makes the store itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from smcl_tune.errors import StudyUnavailable
from smcl_tune.store.sqlite_copy import copy_database, sqlite_path

log = logging.getLogger(__name__)

CACHE_ENV = "SMCL_TUNE_CACHE"  # smcl-tune's cache folder; default: $XDG_CACHE_HOME/smcl-tune
DEFAULT_EXPERIMENT_ID = 0


def cache_folder() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "smcl-tune"


def start_store(tracking_uri: str) -> None:
    """Put a copy of the empty store where a study's sqlite store is about to be made (a file that
    does not exist yet, in a folder that does); any other store is left to MLflow."""
    database = sqlite_path(tracking_uri)
    if database is None or "?" in tracking_uri or database.exists() or not database.parent.is_dir():
        return  # a URI with options (`?timeout=60`) names its file with them: MLflow makes it
    try:
        _copy_in(_empty_store(), database)
    except (OSError, RuntimeError, sqlite3.Error, StudyUnavailable, MlflowException) as error:  # no home: RuntimeError
        log.debug("MLflow makes the store %s itself: %s", database, error)


def _empty_store() -> Path:
    """The empty store of this MLflow version, made by MLflow in a folder of its own and then
    renamed into the cache whole, so that a reader never sees one half made."""
    template = cache_folder() / f"mlflow-{mlflow.__version__}-{_migrations_key()}-empty.db"
    if template.is_file():
        return template
    template.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=template.parent, prefix=".making-") as making:
        made = Path(making) / template.name
        MlflowClient(tracking_uri=f"sqlite:///{made}").search_experiments()
        os.replace(made, template)
    return template


def _migrations_key() -> str:
    """A short digest of the names of MLflow's schema migrations: a build of one version with other
    migrations (a development install) gets an empty store of its own, not one MLflow would refuse
    as out of date."""
    versions = Path(mlflow.__file__).parent / "store" / "db_migrations" / "versions"
    names = sorted(path.name for path in versions.glob("*.py"))  # not __pycache__, made by the first use
    return hashlib.sha1("\n".join(names).encode()).hexdigest()[:12]


def _copy_in(template: Path, database: Path) -> None:
    """The template's copy as `database`, made beside it and linked into place only if no store
    appeared there meanwhile (another study's driver starting in the same folder keeps its own)."""
    # A name of its own (drivers on other hosts may share the folder and the pid), made by sqlite
    # with the mode MLflow's own store would have.
    partial = database.with_name(f".{database.name}.{uuid.uuid4().hex}.new")
    try:
        copy_database(template, partial)
        _default_experiment_as_mlflow_writes_it(partial)
        with contextlib.suppress(FileExistsError):
            os.link(partial, database)
    finally:
        partial.unlink(missing_ok=True)


def _default_experiment_as_mlflow_writes_it(database: Path) -> None:
    """MLflow gives a new store's Default experiment ./mlruns/0 under the folder it runs in, and the
    time it was made; the copy says the same of this driver, not of the template's maker."""
    now_ms = int(time.time() * 1000)
    with contextlib.closing(sqlite3.connect(database)) as connection, connection:
        connection.execute(
            "UPDATE experiments SET artifact_location = ?, creation_time = ?, last_update_time = ? "
            "WHERE experiment_id = ?",
            (str(Path.cwd() / "mlruns" / str(DEFAULT_EXPERIMENT_ID)), now_ms, now_ms, DEFAULT_EXPERIMENT_ID),
        )
