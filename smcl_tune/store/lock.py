"""One driver per study: an advisory lock held for the whole of `smcl-tune run` (and --restart).

The kernel releases a `flock` lock when its holder exits in any way, SIGKILL included, so a
killed driver never blocks the resume. The lock file says who holds it, for the message.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from smcl_tune.errors import ConfigError, StudyBusy
from smcl_tune.studyfile.schema import NAME_PATTERN

# errors of a path the study file names (not of the disk: a full one is StorageFull's, exit 1)
REFUSED_PATH = {errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.EPERM, errno.EROFS}


@contextlib.contextmanager
def _refused_as_storage(what: str) -> Iterator[None]:
    """A path the file system refuses, as the study file's `storage` (ConfigError: `storage: WHAT (why)`)."""
    try:
        yield
    except OSError as error:
        if error.errno not in REFUSED_PATH:
            raise
        raise ConfigError(f"storage: {what} ({error.strerror})") from None


class StudyLock:
    lost: str | None = None  # a file lock is never taken from its holder

    def __init__(self, path: Path, study: str) -> None:
        self.path = path
        self.study = study
        self._fd: int | None = None
        self._made: list[Path] = []  # the folder and file this acquire created, for withdraw

    def acquire(self) -> None:
        if not self.path.parent.exists():
            self._made.append(self.path.parent)
        # the storage's first writes: a folder the file system will not make is the study file's storage
        with _refused_as_storage(f"{self.path.parent} cannot be made"):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            made_file = not self.path.exists()
            with _refused_as_storage(f"cannot write in {self.path.parent}"):
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
                os.close(fd)
                raise StudyBusy(
                    f"study '{self.study}' is being run by {holder}; wait for that run to end, or stop it first "
                    f"(its lock: {self.path})"
                ) from None
            if _still_named(fd, self.path):
                break
            os.close(fd)  # a refused run withdrew that file after this one opened it: take the new one
        if made_file:
            self._made.append(self.path)
        os.ftruncate(fd, 0)
        os.write(
            fd, f"process {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}".encode()
        )
        self._fd = fd

    def withdraw(self) -> None:
        """A run refused after it took the lock leaves no lock file, nor the storage folder it made
        for it; a file or folder that was there before is left."""
        if self._fd is None:
            return
        for made in reversed(self._made):
            with contextlib.suppress(OSError):  # a folder another run has written into meanwhile
                if made == self.path:
                    made.unlink()
                else:
                    made.rmdir()

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> StudyLock:
        self.acquire()
        return self

    def __exit__(self, *_exc) -> None:
        self.release()


def _still_named(fd: int, path: Path) -> bool:
    """Whether the locked file is still the one `path` names (withdraw unlinks it under its lock)."""
    try:
        return os.fstat(fd).st_ino == path.stat().st_ino
    except FileNotFoundError:
        return False


def study_lock_file(local_root: Path, study_name: str) -> Path:
    """The lock a study's driver holds while it runs (see StudyLock), in the storage folder."""
    return local_root / f".{study_name}.lock"


def studies_being_run(local_root: Path) -> list[str]:
    """The studies of a storage folder whose drivers hold their locks now, by name."""
    if not local_root.is_dir():
        return []
    names = (lock.name.removeprefix(".").removesuffix(".lock") for lock in local_root.glob(".*.lock"))
    return sorted(
        name
        for name in names
        if re.fullmatch(NAME_PATTERN, name) and driver_holds(study_lock_file(local_root, name)) is True
    )


def driver_holds(lock_file: Path) -> bool | None:
    """Whether a driver holds the study's lock: True, False, or None when it cannot be told."""
    try:
        fd = os.open(lock_file, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # shared: a driver's exclusive lock refuses it
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases the shared lock
    return False
