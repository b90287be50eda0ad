"""Consistent copies of a running study's sqlite files, for readers that must not hold its locks.

SQLite's online backup copies a database as one transaction saw it; the source is only read, and
only for the few milliseconds the copy takes (a writer waits that long at most, under its busy
timeout). Readers then query the copy for as long as they like.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from smcl_tune.errors import StudyUnavailable


def sqlite_path(url: str) -> Path | None:
    """The file of a `sqlite:///` URL, None for any other store."""
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def copy_database(source: Path, destination: Path) -> None:
    """Write a consistent copy of `source` into `destination` (created, or updated in place)."""
    if not source.is_file():
        raise StudyUnavailable(f"{source}: no such database")
    try:
        reader = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as error:
        raise StudyUnavailable(f"{source}: cannot open the database ({error})") from None
    try:
        writer = sqlite3.connect(destination, timeout=30)
        try:
            reader.backup(writer)
        except sqlite3.DatabaseError as error:
            raise StudyUnavailable(f"{source}: cannot read the database ({error})") from None
        finally:
            writer.close()
    finally:
        reader.close()
