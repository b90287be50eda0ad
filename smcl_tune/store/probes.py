"""Is a store usable? Read-only checks of an sqlite file, a tracking server and Ray's saved state,
each answering with what is wrong (None when nothing is), so that a caller can refuse in one line
before it starts anything. Nothing here writes, creates or deletes a file of a store."""

from __future__ import annotations

import fnmatch
import json
import logging
import pickletools
import shutil
import socket
import sqlite3
import tempfile
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
TUNER_FILE = "tuner.pkl"
EXPERIMENT_STATE_FILES = "experiment_state-*.json"


def sqlite_problem(path: Path) -> str | None:
    """Why the sqlite database at `path` cannot be read (opened read-only), or None.

    A write cut short (a driver killed mid-transaction) leaves a hot journal that sqlite rolls back
    at the next writer's open, and a read-only open refuses to read past: then a copy of both files,
    rolled back in a temporary folder, is checked instead (the store itself stays as it is)."""
    problem = _sqlite_problem(path, read_only=True)
    journal = path.with_name(f"{path.name}-journal")
    if problem is None or "readonly" not in problem or not journal.exists():
        return problem
    with tempfile.TemporaryDirectory(prefix="smcl-check-") as folder:
        copy = Path(folder) / path.name
        shutil.copyfile(path, copy)
        shutil.copyfile(journal, copy.with_name(journal.name))
        return _sqlite_problem(copy, read_only=False)


def _sqlite_problem(path: Path, read_only: bool) -> str | None:
    try:
        mode = "?mode=ro" if read_only else ""
        connection = sqlite3.connect(f"{path.resolve().as_uri()}{mode}", uri=True)
    except sqlite3.Error as error:
        return str(error)
    try:
        connection.execute("SELECT name FROM sqlite_master").fetchall()
        (verdict,) = connection.execute("PRAGMA quick_check(1)").fetchone()
    except sqlite3.Error as error:
        return str(error)
    finally:
        connection.close()
    return None if verdict == "ok" else str(verdict)


def server_problem(uri: str, timeout_s: float = CONNECT_TIMEOUT_S) -> str | None:
    """Why the http(s) server of `uri` does not answer (a TCP connection to its port), or None;
    None for any other kind of URI."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:  # a port that is not a number
        return str(error)
    if not parts.hostname:
        return "no host in the URI"
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            return None
    except OSError as error:
        return error.strerror or str(error) or type(error).__name__


def _pickle_problem(data: bytes) -> str | None:
    """Why `data` is not a whole pickle, found by reading its opcodes (nothing is unpickled), or None."""
    try:
        for _ in pickletools.genops(data):
            pass
    except (ValueError, EOFError) as error:
        return f"not a pickle ({error})"
    return None


def experiment_state_problem(data: bytes) -> str | None:
    """Why `data` is not Ray's experiment state (JSON with a list of trials), or None."""
    try:
        state = json.loads(data)
    except ValueError as error:
        return f"not JSON ({error})"
    if not (isinstance(state, dict) and isinstance(state.get("trial_data"), list)):
        return "it holds no list of trials"
    return None


# What Ray restores a Tuner from: its own pickle, and the newest of each kind of state file.
RAY_STATE_FILES = (
    (TUNER_FILE, _pickle_problem),
    (EXPERIMENT_STATE_FILES, experiment_state_problem),
    ("search_gen_state-*.json", _pickle_problem),  # a pickle, whatever its name says
    ("searcher-state-*.pkl", _pickle_problem),
)


def _experiment_files(experiment_dir: str):
    """The filesystem of a Ray experiment (a folder, or an object store's URI), its path there, and
    the names of the files in it; OSError when it cannot be listed."""
    import pyarrow.fs as pafs  # pyarrow: only when a study starts

    if "://" in experiment_dir:
        filesystem, folder = pafs.FileSystem.from_uri(experiment_dir)
    else:
        filesystem, folder = pafs.LocalFileSystem(), experiment_dir
    entries = filesystem.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    return filesystem, folder, sorted(entry.base_name for entry in entries if entry.type == pafs.FileType.File)


class StateProblem(NamedTuple):
    """A file of a saved Ray experiment that Ray could not restore from."""

    name: str  # in the experiment's folder
    problem: str  # what is wrong with it, or why it could not be read
    unread: bool  # the store refused this machine (its user, its credentials) access to it


def ray_state_problem(experiment_dir: str) -> StateProblem | None:
    """The first file of the Ray experiment saved in `experiment_dir` (a folder, or an object
    store's URI) that is damaged or cannot be read; None when every file reads, or when no
    experiment was saved there (no Tuner file). A folder or store that cannot be listed is another
    check's to say (an object store that does not answer, or refuses this machine)."""
    try:
        filesystem, folder, names = _experiment_files(experiment_dir)
    except OSError:  # not a folder, or one this user cannot list: not a damaged state, and Ray will say
        return None
    if TUNER_FILE not in names:
        return None
    for pattern, problem_of in RAY_STATE_FILES:
        found = fnmatch.filter(names, pattern)
        if not found:
            continue
        try:
            with filesystem.open_input_stream(f"{folder}/{found[-1]}") as stream:
                data = stream.readall()
        except OSError as error:  # listed, but not given: Ray's restore would fail on it and start over
            said = str(error).splitlines()[0] if str(error) else type(error).__name__
            if _denied(error):
                return StateProblem(found[-1], said, True)
            return StateProblem(found[-1], f"not readable ({said})", False)
        problem = problem_of(data)
        if problem is not None:
            return StateProblem(found[-1], problem, False)
    return None


def _denied(error: OSError) -> bool:
    """Whether a store refused access (a folder's permissions, an object store's policy), not a fault."""
    return isinstance(error, PermissionError) or any(
        word in str(error) for word in ("ACCESS_DENIED", "AccessDenied", "Permission denied")
    )


def holds_experiment_state(experiment_dir: str) -> bool:
    """Whether Ray saved an experiment state in `experiment_dir` (a folder, or an object store's
    URI). A driver killed in a study's first seconds leaves Ray's Tuner file without one: Ray then
    fails to restore, starts the experiment over and, without the study's number of trials (its
    restore passes none), runs one trial and ends, at every later run too. A folder that cannot be
    listed holds one as far as this can tell: Ray's restore, as before, says what it finds."""
    try:
        _, _, names = _experiment_files(experiment_dir)
    except OSError as error:
        log.warning("cannot list %s (%s): its Ray experiment is restored as it is", experiment_dir, error)
        return True
    return bool(fnmatch.filter(names, EXPERIMENT_STATE_FILES))
