"""`smcl-tune status` and `smcl-tune dashboard`: watching a study from another terminal.

Both read copies of the study's sqlite files, so they never hold a lock the running driver waits on.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from smcl_tune.cli.exit_codes import EXIT_OK
from smcl_tune.cli.formatting import format_duration, format_objective
from smcl_tune.cli.report_commands import tracking_uri
from smcl_tune.cli.server_address import check_address_free, server_url
from smcl_tune.errors import ConfigError

MAX_REFRESH_S = 86_400  # a day; far longer ones (1e300) overflowed the refresher's timer


def _study_line(status) -> str:
    from smcl_tune.store.progress import INTERRUPTED

    progress = status.progress
    planned = "?" if progress.planned_trials is None else progress.planned_trials
    line = f"study {status.name}: {status.state}, {progress.ended()} of {planned} trials ended"
    if status.state == INTERRUPTED:  # its driver was lost at a time nothing recorded: no end to count to
        line += f", started {format_duration(status.seconds_since_start())} ago"
    else:
        line += f", elapsed {format_duration(status.elapsed_seconds())}"
    this_run = status.this_run_seconds()
    if this_run is not None:
        line += f" since it started ({format_duration(this_run)} in this run)"
    if status.state == "running":
        line += f", ETA {format_duration(status.eta_seconds())}"
    return line


def _print_study(status) -> None:
    from smcl_tune.report.aligned_columns import aligned_columns
    from smcl_tune.store.progress import INTERRUPTED

    progress = status.progress
    counts = progress.counts()
    print(_study_line(status))
    order = ("completed", "pruned", "failed", "running", INTERRUPTED)
    states = ", ".join(f"{counts[state]} {state}" for state in order if counts[state])
    to_go = progress.to_go
    print(f"trials: {states or 'none yet'}" + ("" if to_go is None else f", {to_go} to go"))
    print(f"objective: {status.metric} ({status.mode})")
    for condition, trial in sorted(progress.best().items()):
        where = f"[{condition}] " if condition and f"[{condition}]" not in trial.name else ""  # once
        print(f"best {where}{trial.name}: {format_objective(trial.objective)} ({trial.state})")
    error = status.last_error()
    if error is not None:
        print(f"last error: {error.name}: {error.reason or 'no reason recorded'}")
    print()
    header = ["trial", "condition", "role", "state", "epochs", "objective", "time"]
    rows = [
        [
            trial.name.removesuffix(f" [{trial.condition}]") if trial.condition else trial.name,  # its own column
            trial.condition,
            trial.role,
            trial.state,
            str(trial.epochs_done),
            format_objective(trial.objective),
            format_duration(trial.seconds),
        ]
        for trial in status.trials
    ]
    if any(trial.fused_group for trial in status.trials):  # where each trial trains: its group and slot
        header.append("group")
        rows = [[*row, trial.fused_group or "-"] for row, trial in zip(rows, status.trials)]
    print(aligned_columns(header, rows, left=("trial", "condition", "role", "state", "group")))


def command_status(arguments: argparse.Namespace) -> int:
    from smcl_tune.store.snapshot import StoreSnapshot
    from smcl_tune.studyfile.study import redact_uri

    storage = None if arguments.tracking_uri else Path(arguments.storage).resolve()
    try:
        uri = tracking_uri(arguments)
    except ConfigError:
        if arguments.study is not None and _said_starting(storage, arguments.study):
            return EXIT_OK  # a new storage's first study, before its MLflow store is made
        if arguments.study is None and _said_starting_all(storage, known=[]):
            return EXIT_OK
        raise
    with StoreSnapshot(uri, storage) as snapshot:
        if arguments.study is None:
            statuses = snapshot.all_statuses()
            for status in statuses:
                print(_study_line(status))
            if not _said_starting_all(storage, known=[status.name for status in statuses]) and not statuses:
                print("no studies in this store yet")
            return EXIT_OK
        status = snapshot.status(arguments.study)
        if status is None and _said_starting(storage, arguments.study):
            return EXIT_OK
        if status is None:
            known = ", ".join(snapshot.study_names()) or "none"
            raise ConfigError(f"no study named '{arguments.study}' in {redact_uri(uri)} (studies there: {known})")
        _print_study(status)
    return EXIT_OK


def _said_starting_all(storage: Path | None, known: list[str]) -> bool:
    """Says which studies other than `known` are starting (their drivers hold their locks); whether
    any is."""
    from smcl_tune.store.lock import studies_being_run

    starting = [name for name in studies_being_run(storage) if name not in known] if storage is not None else []
    for study in starting:
        print(_starting_line(study))
    return bool(starting)


def _said_starting(storage: Path | None, study: str) -> bool:
    """Says that the study is starting when a driver holds its lock (between `smcl-tune run` and its
    first MLflow run); whether it said so. A store read through --tracking-uri has no lock to see."""
    from smcl_tune.store.lock import driver_holds, study_lock_file

    if storage is None or driver_holds(study_lock_file(storage, study)) is not True:
        return False
    print(_starting_line(study))
    return True


def _starting_line(study: str) -> str:
    return (
        f"study {study}: starting (its driver runs; this store has no run of it yet, unless it logs to a "
        "tracking.uri of its own)"
    )


def command_dashboard(arguments: argparse.Namespace) -> int:
    from smcl_tune.store.sqlite_copy import sqlite_path

    own_file = sqlite_path(arguments.optuna_storage or "")
    if arguments.optuna_storage and own_file is None:
        return _dashboard_on_database(arguments)
    from smcl_tune.report.dashboard import serve_dashboard
    from smcl_tune.store.health_check import check_optuna_file
    from smcl_tune.store.paths import optuna_database

    if not 0 < arguments.refresh <= MAX_REFRESH_S:  # nan too: a refresh without pause would copy in a loop
        raise ConfigError(
            f"--refresh: must be a number of seconds above 0 and at most {MAX_REFRESH_S:,}, not {arguments.refresh:g}"
        )
    if own_file is not None:  # a study file's own optuna.storage: sqlite:///PATH
        database = own_file.resolve()
        if not database.is_file():
            raise ConfigError(f"--optuna-storage: {database}: no such file; give the study's optuna.storage")
    else:
        database = optuna_database(Path(arguments.storage).resolve(), arguments.study)
        if not database.is_file():
            raise ConfigError(
                f"{database}: no Optuna storage for study '{arguments.study}'; check NAME and --storage (a study "
                "whose study file sets optuna.storage: --optuna-storage with that URL)"
            )
    check_optuna_file(database, arguments.study, "or run the study again with --restart to start it over")
    check_address_free(arguments.host, arguments.port)
    print(
        f"Optuna dashboard on {server_url(arguments.host, arguments.port)} over a copy of {database}, "
        f"refreshed every {arguments.refresh:g} s (Ctrl-C stops it)",
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C, or SIGTERM (cli/app.py)
        serve_dashboard(database, arguments.host, arguments.port, arguments.refresh)
    return EXIT_OK


def _dashboard_on_database(arguments: argparse.Namespace) -> int:
    """The dashboard over the study's database server (its optuna.storage), from any folder."""
    from smcl_tune.report.dashboard import serve_database_dashboard
    from smcl_tune.store.database import check_database, is_server, shown

    url = arguments.optuna_storage
    if not is_server(url):
        raise ConfigError(f"--optuna-storage: {shown(url)} is not a database server URL (postgresql://user@host/db)")
    check_database(url, "--optuna-storage")
    check_address_free(arguments.host, arguments.port)
    print(
        f"Optuna dashboard on {server_url(arguments.host, arguments.port)} over {shown(url)} (Ctrl-C stops it)",
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C, or SIGTERM (cli/app.py)
        serve_database_dashboard(url, arguments.host, arguments.port)
    return EXIT_OK
