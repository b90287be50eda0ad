"""Before a study starts: every store it would resume from can be read, and a shared tracking store
holds no other study of its name. A damaged one is refused in one line naming it, with what the
user can do; nothing is deleted or rewritten."""

from __future__ import annotations

import socket
from pathlib import Path

from smcl_tune.errors import ConfigError, DamagedStore
from smcl_tune.store.database import check_database
from smcl_tune.store.paths import StudyPaths
from smcl_tune.store.probes import ray_state_problem, server_problem, sqlite_problem
from smcl_tune.store.sqlite_copy import sqlite_path
from smcl_tune.studyfile.study import Study, redact_uri

UNCHANGED = "nothing was changed"


def check_tracking_answers(uri: str, where: str, otherwise: str) -> None:
    """A tracking server, or the database server of a tracking store, answers; ConfigError saying
    to start it `otherwise` (the URI is wrong, or its server is down)."""
    problem = server_problem(uri)
    if problem is not None:
        raise ConfigError(
            f"{where}: {redact_uri(uri)} does not answer ({problem}); start the tracking server, {otherwise}"
        )
    check_database(uri, where)  # a database server MLflow would otherwise retry for minutes, then fail


def check_tracking(uri: str, where: str = "tracking.uri") -> None:
    """A tracking store a study writes answers (ConfigError); its sqlite file can be read (DamagedStore)."""
    check_tracking_answers(uri, where, "or point the URI at one that runs")
    database = sqlite_path(uri)
    if database is not None and database.exists():
        problem = sqlite_problem(database)
        if problem is not None:
            raise DamagedStore(
                f"{database}: the MLflow store is damaged ({problem}); {UNCHANGED}: restore it from a backup, "
                "or point storage (or tracking.uri) elsewhere to start afresh"
            )


def check_optuna_file(database: Path, study: str, otherwise: str) -> None:
    """A study's Optuna sqlite file can be read (DamagedStore saying to restore it, `otherwise`)."""
    problem = sqlite_problem(database)
    if problem is not None:
        raise DamagedStore(
            f"{database}: study '{study}''s Optuna storage is damaged ({problem}); {UNCHANGED}: "
            f"restore it from a backup, {otherwise}"
        )


def check_study_stores(study: Study, paths: StudyPaths, restart: bool) -> None:
    """The tracking store, and unless --restart discards them, the study's Optuna storage and
    Ray's saved experiment."""
    check_tracking(paths.tracking_uri)
    if restart:
        return
    restart_hint = "or run again with --restart to start the study over"
    optuna_db = sqlite_path(paths.optuna_url)
    if optuna_db is not None and optuna_db.exists():
        check_optuna_file(optuna_db, study.name, restart_hint)
    found = ray_state_problem(paths.experiment_dir)  # a folder, or an object store's
    if found is None:
        return
    # an object store's options are not part of a file's name, nor are credentials shown
    experiment = redact_uri(paths.experiment_dir.split("?")[0].rstrip("/"))
    if found.unread:  # this machine's access, not the store, is at fault: as for a store refused whole
        who = "this machine's credentials" if paths.remote else "this user"
        raise ConfigError(
            f"{experiment}/{found.name}: Ray's saved state of study '{study.name}' cannot be read from "
            f"{socket.gethostname()} ({found.problem}); {UNCHANGED}: give {who} read access to it, {restart_hint}"
        )
    raise DamagedStore(
        f"{experiment}/{found.name}: Ray's saved state of study '{study.name}' is unreadable ({found.problem}); "
        f"{UNCHANGED}: restore {experiment} from a backup, {restart_hint}"
    )


def check_tracking_store(study: Study, paths: StudyPaths, restart: bool, resumed: str | None = None) -> None:
    """A tracking store shared by several storages (a server) never mixes two studies of one name.
    `resumed`: the fingerprint of the study the record let this study file resume (the file may now
    set defaults that changed since to what they were, study_record._pins_what_it_started_with)."""
    if restart:
        return
    from smcl_tune.store.mlflow_reader import recorded_fingerprint  # MLflow: only when the check runs

    known = recorded_fingerprint(paths.tracking_uri, paths.experiment, study.name)
    if known is not None and known not in (*study.fingerprints(), resumed):
        raise ConfigError(
            f"the MLflow experiment '{paths.experiment}' at {redact_uri(paths.tracking_uri)} already holds a study "
            f"named '{study.name}' from another study file (fingerprint {known}, this file {study.fingerprint()}); "
            "rename the study, or run with --restart to discard that one"
        )
