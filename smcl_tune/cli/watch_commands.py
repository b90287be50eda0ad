"""`smcl-tune status` and `smcl-tune dashboard`: watching a study from another terminal.

Both read copies of the study's sqlite files, so they never hold a lock the running driver waits on.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path

from smcl_tune.cli.exit_codes import EXIT_OK
from smcl_tune.cli.formatting import format_duration, format_objective
from smcl_tune.cli.report_commands import tracking_uri
from smcl_tune.errors import ConfigError


def _study_line(status) -> str:
    counts = status.counts()
    ended = sum(counts[state] for state in ("completed", "pruned", "failed"))
    planned = "?" if status.planned_trials is None else status.planned_trials
    line = f"study {status.name}: {status.state}, {ended} of {planned} trials ended"
    line += f", elapsed {format_duration(status.elapsed_seconds())}"
    if status.state == "running":
        line += f", ETA {format_duration(status.eta_seconds())}"
    return line


def _print_study(status) -> None:
    from smcl_tune.store.status import INTERRUPTED

    counts = status.counts()
    print(_study_line(status))
    order = ("completed", "pruned", "failed", "running", INTERRUPTED)
    states = ", ".join(f"{counts[state]} {state}" for state in order if counts[state])
    to_go = status.to_go()
    print(f"trials: {states or 'none yet'}" + ("" if to_go is None else f", {to_go} to go"))
    print(f"objective: {status.metric} ({status.mode})")
    for condition, trial in sorted(status.best().items()):
        where = f"[{condition}] " if condition else ""
        print(f"best {where}{trial.name}: {format_objective(trial.objective)} ({trial.state})")
    error = status.last_error()
    if error is not None:
        print(f"last error: {error.name}: {error.reason or 'no reason recorded'}")
    print()
    # Columns as wide as their longest entry: a trial's name carries its condition, which can be long.
    name_width = max([len("trial"), *(len(trial.name) for trial in status.trials)]) + 2
    condition_width = max([len("condition"), *(len(trial.condition) for trial in status.trials)]) + 2
    print(
        f"{'trial':<{name_width}}{'condition':<{condition_width}}{'role':<10}{'state':<13}"
        f"{'epochs':>7}{'objective':>11}{'time':>9}"
    )
    for trial in status.trials:
        print(
            f"{trial.name:<{name_width}}{trial.condition:<{condition_width}}{trial.role:<10}{trial.state:<13}"
            f"{trial.epochs_done:>7}{format_objective(trial.objective):>11}{format_duration(trial.seconds):>9}"
        )


def command_status(arguments: argparse.Namespace) -> int:
    from smcl_tune.store.snapshot import StoreSnapshot

    uri = tracking_uri(arguments)
    storage = None if arguments.tracking_uri else Path(arguments.storage).resolve()
    with StoreSnapshot(uri, storage) as snapshot:
        if arguments.study is None:
            statuses = snapshot.all_statuses()
            if not statuses:
                print("no studies in this store yet")
            for status in statuses:
                print(_study_line(status))
            return EXIT_OK
        status = snapshot.status(arguments.study)
        if status is None:
            known = ", ".join(snapshot.study_names()) or "none"
            raise ConfigError(f"no study named '{arguments.study}' in {uri} (studies there: {known})")
        _print_study(status)
    return EXIT_OK


def command_dashboard(arguments: argparse.Namespace) -> int:
    from smcl_tune.report.dashboard import serve_dashboard
    from smcl_tune.store.paths import optuna_database

    database = optuna_database(Path(arguments.storage).resolve(), arguments.study)
    if not database.is_file():
        raise ConfigError(f"{database}: no Optuna storage for study '{arguments.study}'; check NAME and --storage")
    if arguments.refresh <= 0:
        raise ConfigError(f"--refresh: must be a positive number of seconds, not {arguments.refresh:g}")
    print(
        f"Optuna dashboard on http://{arguments.host}:{arguments.port} over a copy of {database}, "
        f"refreshed every {arguments.refresh:g} s (Ctrl-C stops it)",
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt), _sigterm_as_interrupt():
        serve_dashboard(database, arguments.host, arguments.port, arguments.refresh)
    return EXIT_OK


def _interrupt(*_signal) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (`kill`, a service manager) stops the dashboard as Ctrl-C does: its copy of the
    study's storage in the temporary folder is removed on the way out."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
