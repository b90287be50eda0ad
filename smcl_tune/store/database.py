"""A study's database: Optuna's storage, and when `optuna.storage` names a server (PostgreSQL,
MySQL), the study record and the driver's lock too. Engine arguments fit the database's kind, and
a server is probed before anything starts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from smcl_tune.errors import ConfigError, first_line
from smcl_tune.studyfile.uri_credentials import without_credentials

if TYPE_CHECKING:
    import optuna
    import sqlalchemy

T = TypeVar("T")
SQLITE_BUSY_TIMEOUT_S = 30  # sqlite's own wait for a lock, per statement
SCHEMA_RACE_ATTEMPTS = 5
CONNECT_TIMEOUT_S = 10  # a server's connection attempt, before the study calls it unreachable
# SQLAlchemy's `postgresql://` means psycopg2; the cluster extra brings psycopg (3)
DRIVER_OF_SCHEME = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}
SERVER_KINDS = ("postgresql", "postgres", "mysql")


def kind_of(url: str) -> str:
    """`sqlite`, `postgresql`, `mysql`, ... : the URL's scheme without its driver."""
    kind = urlsplit(url).scheme.split("+")[0]
    return "postgresql" if kind == "postgres" else kind


def is_server(url: str) -> bool:
    """A database server (PostgreSQL, MySQL), not an sqlite file."""
    return kind_of(url) in SERVER_KINDS


def engine_url(url: str) -> str:
    """The URL SQLAlchemy is given: a plain `postgresql://` through psycopg."""
    scheme, rest = url.split("://", 1)
    return f"{DRIVER_OF_SCHEME.get(scheme, scheme)}://{rest}"


def engine_kwargs(url: str) -> dict[str, Any]:
    """sqlite waits for a reader's lock instead of failing at once; a server's connection gives up
    after CONNECT_TIMEOUT_S, and a pooled connection is tested before use (a server restarts)."""
    kind = kind_of(url)
    if kind == "sqlite":
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    if kind in ("postgresql", "mysql"):
        return {"pool_pre_ping": True, "connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}}
    return {"pool_pre_ping": True}


def creating_tables(create: Callable[[], T]) -> T:
    """`create()`, which creates tables if they are missing. Two drivers opening a fresh database at
    once both create them, and PostgreSQL refuses the second's (`duplicate key ... already exists`):
    it tries again, and finds them made."""
    import sqlalchemy

    for attempt in range(1, SCHEMA_RACE_ATTEMPTS):
        try:
            return create()
        except sqlalchemy.exc.DBAPIError as error:
            if "already exists" not in str(error):
                raise
            time.sleep(0.2 * attempt)
    return create()


def optuna_storage(url: str) -> optuna.storages.RDBStorage:
    """The study's Optuna storage (Optuna creates its tables on first use)."""
    import optuna

    return creating_tables(lambda: optuna.storages.RDBStorage(engine_url(url), engine_kwargs=engine_kwargs(url)))


def engine(url: str) -> sqlalchemy.Engine:
    import sqlalchemy

    return sqlalchemy.create_engine(engine_url(url), **engine_kwargs(url))


def shown(url: str) -> str:
    """A database URL for messages: its user stays (it names the role to check), a password never."""
    return without_credentials(url, keep_user=True)


def check_database(url: str, field: str = "optuna.storage") -> None:
    """A server answers and lets the study's user in (ConfigError, before anything starts)."""
    if not is_server(url):
        return
    import sqlalchemy

    try:
        database = engine(url)
    except ModuleNotFoundError as error:
        raise ConfigError(
            f"{field}: {shown(url)} needs the database driver {error.name}, which is not installed; "
            "install smcl-tune with its cluster extra, from its checkout: "
            "pip install --constraint docker/constraints.txt '.[cluster]'"
        ) from None
    try:
        with database.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
    except sqlalchemy.exc.DBAPIError as error:
        raise ConfigError(
            f"{field}: cannot connect to {shown(url)} ({first_line(error)}); check the host, port, database and user, "
            "and give the password through PGPASSWORD or a ~/.pgpass file, never in the URL"
        ) from None
    finally:
        database.dispose()
