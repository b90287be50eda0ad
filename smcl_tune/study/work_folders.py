"""A trial's work folder in the node's temporary folder: named after the worker process that owns
it, so that the next trial on the node removes the folders of workers that were killed (SIGKILL,
a lost node, a stopped driver) instead of leaving their checkpoints behind for good."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

PREFIX = "smcl-trial-"


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
        if folder.stat().st_uid != os.getuid():
            continue
        shutil.rmtree(folder, ignore_errors=True)
        log.info("removed %s, the work folder of a trial whose process %d is gone", folder, pid)
        removed.append(folder)
    return removed


def work_folder() -> tempfile.TemporaryDirectory:
    """This trial's work folder (removed when the trial ends), after the stale ones of killed workers."""
    remove_stale_work_folders()
    return tempfile.TemporaryDirectory(prefix=f"{PREFIX}{os.getpid()}-")
