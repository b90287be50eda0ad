"""A trial's work folder in the node's temporary folder: named after the worker process that owns
it and locked by that process while it lives, so that the next trial on the node removes the
folders of workers that were killed (SIGKILL, a lost node, a stopped driver) instead of leaving
their checkpoints behind for good.

The lock, not the pid, decides: a trial in another PID namespace that shares the temporary folder
(a container, a `unshare --pid` Ray head) sees no such pid, but cannot take a live owner's lock.
The kernel frees the lock when its process dies, SIGKILL included."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

PREFIX = "smcl-trial-"
LOCK_NAME = ".owner.lock"
# A folder without its lock file: an older smcl-tune's, or one whose owner is creating the lock now.
UNLOCKED_GRACE_S = 60.0


def _owner_pid(folder: Path) -> int | None:
    """The process id in `smcl-trial-<pid>-<random>`, or None for any other name."""
    parts = folder.name.removeprefix(PREFIX).split("-", 1)
    return int(parts[0]) if len(parts) == 2 and parts[0].isdigit() and parts[1] else None


def remove_stale_work_folders(root: Path | None = None) -> list[Path]:
    """Remove this user's work folders under `root` (the temporary folder) whose process is gone."""
    root = Path(tempfile.gettempdir()) if root is None else root
    removed = []
    for folder in sorted(root.glob(f"{PREFIX}*")):
        pid = _owner_pid(folder)
        if pid is None or psutil.pid_exists(pid) or folder.is_symlink() or not folder.is_dir():
            continue
        if folder.stat().st_uid != os.getuid() or _owner_lives(folder):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        log.info("removed %s, the work folder of a trial whose process %d is gone", folder, pid)
        removed.append(folder)
    return removed


def _owner_lives(folder: Path) -> bool:
    """Whether a process holds the folder's lock (or, without a lock file, whether it is new)."""
    try:
        descriptor = os.open(folder / LOCK_NAME, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return time.time() - folder.stat().st_mtime < UNLOCKED_GRACE_S
    except OSError:
        return True  # unreadable: not ours to judge
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False


class WorkFolder:
    """This trial's work folder, locked while the trial lives and removed when it ends; `with`
    gives its path as a string, as `tempfile.TemporaryDirectory` does."""

    def __init__(self) -> None:
        remove_stale_work_folders()
        self._folder = tempfile.TemporaryDirectory(prefix=f"{PREFIX}{os.getpid()}-")
        self.name = self._folder.name
        self._lock = open(Path(self.name) / LOCK_NAME, "w")  # noqa: SIM115 - held until cleanup
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def cleanup(self) -> None:
        self._lock.close()
        self._folder.cleanup()

    def __enter__(self) -> str:
        return self.name

    def __exit__(self, *_exception) -> None:
        self.cleanup()


def work_folder() -> WorkFolder:
    """This trial's work folder (removed when the trial ends), after the stale ones of killed workers."""
    return WorkFolder()
