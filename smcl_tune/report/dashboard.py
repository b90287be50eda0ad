"""optuna-dashboard over a study's Optuna storage, without ever holding a lock the driver waits on.

The dashboard reads a consistent copy of the study's `optuna.db` (see sqlite_copy), refreshed in
the background; anything written through the dashboard (notes, marks) goes to the copy and is
lost at the next refresh. A database server (optuna.storage) is served as it is: its readers
never block the driver.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from pathlib import Path

from smcl_tune.errors import StudyUnavailable
from smcl_tune.store.sqlite_copy import copy_database

log = logging.getLogger(__name__)


def _refresh_forever(source: Path, copy: Path, every_s: float, stop: threading.Event) -> None:
    while not stop.wait(every_s):
        try:
            copy_database(source, copy)
        except StudyUnavailable as error:
            log.warning("dashboard: keeping the last copy (%s)", error)


def serve_dashboard(database: Path, host: str, port: int, refresh_s: float) -> None:
    """Serve until interrupted."""
    import optuna_dashboard
    from optuna.storages import RDBStorage

    with tempfile.TemporaryDirectory(prefix="smcl-dashboard-") as folder:
        copy = Path(folder) / "optuna.db"
        copy_database(database, copy)
        storage = RDBStorage(f"sqlite:///{copy}", skip_compatibility_check=True)
        stop = threading.Event()
        refresher = threading.Thread(
            target=_refresh_forever, args=(database, copy, refresh_s, stop), name="dashboard-refresh", daemon=True
        )
        refresher.start()
        try:
            _serve_until_stopped(optuna_dashboard.run_server, storage, host, port)
        finally:
            stop.set()


def serve_database_dashboard(url: str, host: str, port: int) -> None:
    """Serve the Optuna studies of a database server until interrupted."""
    import optuna_dashboard

    from smcl_tune.store.database import optuna_storage

    _serve_until_stopped(optuna_dashboard.run_server, optuna_storage(url), host, port)


def _serve_until_stopped(run_server, storage, host: str, port: int) -> None:
    failure: list[BaseException] = []
    server = threading.Thread(
        target=_serve, args=(run_server, storage, host, port, failure), name="dashboard", daemon=True
    )
    server.start()
    while server.is_alive():  # Ctrl-C and SIGTERM land here, never inside a request
        server.join(0.5)
    if failure:
        raise failure[0]


def _serve(run_server, storage, host: str, port: int, failure: list[BaseException]) -> None:
    """The server, in a thread of its own: wsgiref's request handler catches every exception,
    KeyboardInterrupt included, so a stop that arrived during a request would be lost."""
    try:
        run_server(storage, host=host, port=port)
    except BaseException as error:  # handed to the main thread, which raises it
        failure.append(error)
