"""Where a study stands, as its MLflow store records it: trial states, the best per condition, an ETA.

Shared by `smcl-tune status` (store/snapshot.py reads it from a copy of the store) and by a resumed
run (study/runner.py counts the trials an earlier run ended); neither package imports the other.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from smcl_tune.results import TrialState
from smcl_tune.store.lock import driver_holds
from smcl_tune.store.progress import INTERRUPTED, StudyProgress, TrialProgress
from smcl_tune.store.sqlite_reader import RunReader
from smcl_tune.store.trial_record import TrialRecord
from smcl_tune.tracking.tags import (
    EPOCHS_PER_TRIAL_TAG,
    OBJECTIVE_METRIC_TAG,
    OBJECTIVE_MODE_TAG,
    OPTUNA_STORAGE_TAG,
    PLANNED_TRIALS_TAG,
    RUN_STARTED_TAG,
    STUDY_TAG,
)


@dataclass
class StudyStatus:
    """A study as its store records it: its own state and its trials' progress."""

    name: str
    state: str  # "running", "finished", "stopped", "failed" or INTERRUPTED
    started_ms: int
    ended_ms: int | None
    progress: StudyProgress
    run_started_ms: int | None = None  # this driver's start: later than started_ms where the study was resumed

    @property
    def metric(self) -> str:
        return self.progress.metric

    @property
    def mode(self) -> str:
        return self.progress.mode

    @property
    def planned_trials(self) -> int | None:
        return self.progress.planned_trials

    @property
    def trials(self) -> list[TrialProgress]:
        return sorted(self.progress.trials.values(), key=lambda trial: (trial.condition, trial.name))

    def last_error(self) -> TrialProgress | None:
        failed = [trial for trial in self.trials if trial.state == TrialState.FAILED]
        return max(failed, key=lambda trial: trial.ended_ms or 0, default=None)

    def elapsed_seconds(self, now_ms: int | None = None) -> float:
        end = self.ended_ms if self.ended_ms is not None and self.state != "running" else now_ms or _now_ms()
        return max(0.0, (end - self.started_ms) / 1000)

    def seconds_since_start(self, now_ms: int | None = None) -> float:
        """From the study's first start to now (an end an earlier run recorded is no end of this one)."""
        return max(0.0, ((now_ms or _now_ms()) - self.started_ms) / 1000)

    def this_run_seconds(self, now_ms: int | None = None) -> float | None:
        """How long the running driver has run, where it resumed the study a minute or more after it
        started (the elapsed time then includes the time the study was down); None otherwise."""
        if self.state != "running" or self.run_started_ms is None or self.run_started_ms - self.started_ms < 60_000:
            return None
        return max(0.0, ((now_ms or _now_ms()) - self.run_started_ms) / 1000)

    def eta_seconds(self) -> float | None:
        return self.progress.eta_seconds() if self.state == "running" else None


def _now_ms() -> int:
    return int(time.time() * 1000)


def _int_tag(tags: dict[str, str], name: str) -> int | None:
    value = tags.get(name, "")
    return int(value) if value.isdigit() else None


def _study_state(run_status: str, running_driver: bool | None) -> str:
    if run_status == "RUNNING":
        return INTERRUPTED if running_driver is False else "running"
    return {"FINISHED": "finished", "KILLED": "stopped", "FAILED": "failed"}.get(run_status, run_status.lower())


def trial_state(record: TrialRecord, study_running: bool) -> str:
    """A trial record's state, where a trial its driver left running in a study that is not is interrupted."""
    if record.state == TrialState.RUNNING and not (study_running and record.run_status == "RUNNING"):
        return INTERRUPTED
    return record.state


def trial_progress(record: TrialRecord, study_running: bool, epochs_per_trial: int | None) -> TrialProgress:
    """A trial record as progress."""
    return TrialProgress(
        name=record.run_name,
        condition=record.condition,
        role=record.role,
        state=trial_state(record, study_running),
        epochs_done=record.epochs_done,
        epochs_planned=epochs_per_trial or 0,
        objective=record.objective,
        seconds=record.seconds,
        reason=record.reason,
        ended_ms=record.ended_ms,
        fused_group=record.fused_group,
    )


def _driver_holds(tags: dict[str, str], lock_file: Path | None) -> bool | None:
    """The study's lock: a row of its database server (optuna.storage), else a file in its storage."""
    from smcl_tune.store.database import is_server

    optuna_url = tags.get(OPTUNA_STORAGE_TAG, "")
    if is_server(optuna_url):
        from smcl_tune.store.database_lock import database_driver_holds

        return database_driver_holds(optuna_url, tags.get(STUDY_TAG, ""))
    return None if lock_file is None else driver_holds(lock_file)


def study_status(store: RunReader, parent, lock_file: Path | None = None) -> StudyStatus:
    """The status of the study whose parent run is `parent`; `lock_file` tells a live driver from a lost one."""
    tags = parent.data.tags
    running_driver = _driver_holds(tags, lock_file)
    state = _study_state(parent.info.status, running_driver)
    metric = tags.get(OBJECTIVE_METRIC_TAG, "val_balanced_accuracy")
    epochs = _int_tag(tags, EPOCHS_PER_TRIAL_TAG)
    progress = StudyProgress(metric, tags.get(OBJECTIVE_MODE_TAG, "max"), _int_tag(tags, PLANNED_TRIALS_TAG), epochs)
    for run in store.trial_runs(parent):
        record = TrialRecord.of_run(run, metric)
        progress.add(record.run_id, trial_progress(record, state == "running", epochs))
    if state == "finished":  # fewer confirmation runs than planned when fewer search trials completed
        progress.planned_trials = len(progress.trials)
    return StudyStatus(
        name=tags.get(STUDY_TAG, ""),
        state=state,
        started_ms=parent.info.start_time,
        ended_ms=parent.info.end_time,
        progress=progress,
        run_started_ms=_int_tag(tags, RUN_STARTED_TAG),
    )
