"""A storage that fills up stops the study, resumably, with one message instead of Ray's retries.

In a trial: a checkpoint is persisted to the study's storage only if it fits, and a copy cut short
by a full storage is removed. In the driver: a trial that failed on a full storage (its own
folder, or the study's storage) interrupts the run as Ctrl-C would, so that every trial keeps its
last checkpoint and the same command goes on once space is freed; Ray's tracebacks of it are not
shown, the CLI prints the one message.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune import Callback

from smcl_tune.atomic_write import FULL_TEXTS, StorageFull, is_storage_full, mount_point, storage_full_message
from smcl_tune.errors import error_chain
from smcl_tune.study.object_store_outage import waiting_for_the_store
from smcl_tune.study.outage_wait import Outage
from smcl_tune.study.printing_handlers import add_to_printing_handlers
from smcl_tune.study.whole_file_filesystem import is_local

log = logging.getLogger(__name__)

METADATA_ALLOWANCE = 1 << 20  # Ray writes its result rows and metadata beside each checkpoint


def _report_once(metrics: dict[str, Any], checkpoint: Path) -> None:
    """One try of `tune.report` with a checkpoint to an object store: one that fails leaves Ray's
    checkpoint count as it was, so the next try writes the same checkpoint folder again."""
    from ray.train._internal.session import get_session

    storage = get_session().storage
    index = storage.current_checkpoint_index
    try:
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(checkpoint)))
    except Exception:
        storage.current_checkpoint_index = index
        raise


def _folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _local_trial_folder() -> Path | None:
    """This trial's folder in the study's storage, if that storage is a folder of this node.
    (Tune's public context names only the trial's local staging folder, not where it persists.)"""
    try:
        from ray.train._internal.session import get_session

        storage = get_session().storage
        if not is_local(storage.storage_filesystem):
            return None
        folder = Path(storage.trial_fs_path)
    except Exception:  # another Ray's internals: no check before the copy, only after a failed one
        return None
    return folder if folder.is_dir() else None


def report_with_checkpoint(
    metrics: dict[str, Any], checkpoint: Path | None, store_outage: Outage | None = None
) -> None:
    """`tune.report(metrics, checkpoint)`, refused with StorageFull before Ray copies a checkpoint
    that cannot fit into the study's storage; a copy that fails half-way is removed. With
    `store_outage` (an object store's), a copy the store did not take is tried again while it is
    waited for (ObjectStoreDown past its timeout)."""
    if checkpoint is None:
        tune.report(metrics)
        return
    if store_outage is not None:
        waiting_for_the_store(store_outage, lambda: _report_once(metrics, checkpoint), "a checkpoint of this trial")
        return
    folder = _local_trial_folder()
    before = set() if folder is None else set(folder.glob("checkpoint_*"))
    if folder is not None:
        needed = _folder_size(checkpoint) + METADATA_ALLOWANCE
        if shutil.disk_usage(folder).free < needed:
            raise StorageFull(storage_full_message(folder, needed, "a checkpoint of this trial"))
    try:
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(checkpoint)))
    except Exception as error:
        if not is_storage_full(error):
            raise
        for partial in set() if folder is None else set(folder.glob("checkpoint_*")) - before:
            shutil.rmtree(partial, ignore_errors=True)
        where = checkpoint if folder is None else folder
        raise StorageFull(storage_full_message(where, _folder_size(checkpoint), "a checkpoint of this trial")) from None


class _FullStorage:
    """What this driver process knows of a full storage: the message to stop with, once."""

    message: str | None = None
    storage: Path | None = None


def _message_of(error: BaseException | None) -> str | None:
    """The StorageFull message a trial sent (Ray wraps it), or a generic one for another full-disk error."""
    for link in error_chain(error):
        if isinstance(link, StorageFull) and not type(link).__module__.startswith("ray"):
            return str(link)
    return None


# What Tune says when it is interrupted: the study's one message says it instead.
INTERRUPTION_LINES = ("Stop signal received", "Trials did not complete", "Experiment has been interrupted")


class _HideFullStorageTracebacks(logging.Filter):
    """Drops the records of a full storage (Ray's, MLflow's: tracebacks); the study stops with one
    message instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and is_storage_full(error):
            _FullStorage.message = _FullStorage.message or _message_of(error)
            return False
        text = record.getMessage()
        if any(line in text.lower() for line in FULL_TEXTS):
            return False
        return _FullStorage.message is None or not any(line in text for line in INTERRUPTION_LINES)


def _hide_full_storage_tracebacks() -> None:
    add_to_printing_handlers(_HideFullStorageTracebacks, ("ray", "mlflow"))


class StorageWatch(Callback):
    """Interrupts the run when a trial fails because a storage is full."""

    def __init__(self, storage: str) -> None:
        self.storage = storage

    def setup(self, **info: Any) -> None:
        _FullStorage.message = None
        _FullStorage.storage = None if "://" in str(self.storage) else Path(self.storage)
        _hide_full_storage_tracebacks()

    def _failed(self, trial) -> None:
        if _FullStorage.message is None:
            error = str(_error_text(trial))
            if not any(text in error.lower() for text in ("no space left", "disk is full", "storage is full")):
                return
            _FullStorage.message = storage_full_message(_FullStorage.storage or Path.cwd())
        if signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, signal.SIG_IGN, None):
            return  # Tune runs outside the main thread and took no signal: its retries end the trial
        log.debug("a storage is full: interrupting the run (%s)", _FullStorage.message)
        os.kill(os.getpid(), signal.SIGUSR1)  # Tune's own interrupt: it saves its state and returns

    def on_trial_recover(self, iteration: int, trials: list, trial, **info: Any) -> None:
        self._failed(trial)

    def on_trial_error(self, iteration: int, trials: list, trial, **info: Any) -> None:
        self._failed(trial)


def _error_text(trial) -> str:
    try:
        return str(trial.get_error() or "")
    except Exception:  # its error file may be on the storage that is full
        return ""


def storage_full_stop() -> StorageFull | None:
    """The error to stop the study with, if a trial found a storage full during this run."""
    return None if _FullStorage.message is None else StorageFull(_FullStorage.message)


def raise_if_storage_full() -> None:
    """After Tune returns: StorageFull if a trial's full storage interrupted the run."""
    stop = storage_full_stop()
    if stop is not None:
        raise stop


@contextmanager
def stopping_when_full(driver_writes: Sequence[Path]) -> Iterator[None]:
    """A write of the driver's own (the stores, Ray's state, the leaderboard) that finds its storage
    full ends the study with StorageFull, the trials' message first. `driver_writes`: where the
    driver writes (StudyPaths.driver_writes), to name the full one when the error does not."""
    try:
        yield
    except StorageFull:
        raise
    except Exception as error:
        if not is_storage_full(error) and storage_full_stop() is None:
            raise
        stop = storage_full_stop()
        if stop is None:
            failed = getattr(error, "filename", None) or fullest(driver_writes) or Path.cwd()
            stop = StorageFull(storage_full_message(Path(failed)))
        raise stop from None


def fullest(places: Sequence[Path]) -> Path | None:
    """Of `places`, one on the filesystem with the least space free (a database error that found its
    disk full does not say which file it was writing)."""
    return min(places, key=lambda place: shutil.disk_usage(mount_point(place)).free, default=None)
