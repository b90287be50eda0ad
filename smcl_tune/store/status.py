"""Where a study stands, as its MLflow store records it: trial states, the best per condition, an ETA.

Shared by `smcl-tune status` (store/snapshot.py reads it from a copy of the store) and by a resumed
run (study/runner.py counts the trials an earlier run ended); neither package imports the other.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from smcl_tune.results import TrialState
from smcl_tune.store.lock import driver_holds
from smcl_tune.store.mlflow_reader import StudyStore
from smcl_tune.store.progress import estimate_eta, is_better
from smcl_tune.tracking.tags import (
    CONDITION_TAG,
    EPOCHS_PER_TRIAL_TAG,
    OBJECTIVE_METRIC_TAG,
    OBJECTIVE_MODE_TAG,
    PLANNED_TRIALS_TAG,
    REASON_TAG,
    ROLE_TAG,
    STATE_TAG,
    STUDY_TAG,
)

INTERRUPTED = "interrupted"  # a trial or study whose driver stopped without ending it


@dataclass(frozen=True)
class TrialStatus:
    name: str
    condition: str
    role: str
    state: str  # a TrialState value, or INTERRUPTED
    epochs_done: int
    objective: float  # the selected epoch's validation objective; the last epoch's while running
    seconds: float  # training time (Ray's), across resumes
    reason: str | None
    ended_ms: int | None


@dataclass
class StudyStatus:
    name: str
    state: str  # "running", "finished", "stopped", "failed" or INTERRUPTED
    metric: str
    mode: str
    started_ms: int
    ended_ms: int | None
    planned_trials: int | None
    epochs_per_trial: int | None
    trials: list[TrialStatus] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        return Counter(trial.state for trial in self.trials)

    def best(self) -> dict[str, TrialStatus]:
        """Per condition, the trial with the best validation objective (of any state)."""
        best: dict[str, TrialStatus] = {}
        for trial in self.trials:
            known = best.get(trial.condition)
            if is_better(trial.objective, None if known is None else known.objective, self.mode):
                best[trial.condition] = trial
        return best

    def last_error(self) -> TrialStatus | None:
        failed = [trial for trial in self.trials if trial.state == TrialState.FAILED]
        return max(failed, key=lambda trial: trial.ended_ms or 0, default=None)

    def elapsed_seconds(self, now_ms: int | None = None) -> float:
        end = self.ended_ms if self.ended_ms is not None and self.state != "running" else now_ms or _now_ms()
        return max(0.0, (end - self.started_ms) / 1000)

    def to_go(self) -> int | None:
        if self.planned_trials is None:
            return None
        return max(0, self.planned_trials - len(self.trials))

    def eta_seconds(self) -> float | None:
        """Time to train the running trials' remaining epochs and the trials still to start, at the
        rate the study's trials have trained so far, as many at once as are running now."""
        if self.state != "running" or self.epochs_per_trial is None or self.to_go() is None:
            return None
        running = [trial for trial in self.trials if trial.state == TrialState.RUNNING]
        epochs_left = sum(max(0, self.epochs_per_trial - trial.epochs_done) for trial in running)
        epochs_left += self.to_go() * self.epochs_per_trial
        trained = sum(trial.epochs_done for trial in self.trials)
        seconds = sum(trial.seconds for trial in self.trials)
        eta = estimate_eta(epochs_left, trained, seconds)
        return None if eta is None else eta / max(1, len(running))


def _now_ms() -> int:
    return int(time.time() * 1000)


def _int_tag(tags: dict[str, str], name: str) -> int | None:
    value = tags.get(name, "")
    return int(value) if value.isdigit() else None


def _study_state(run_status: str, running_driver: bool | None) -> str:
    if run_status == "RUNNING":
        return INTERRUPTED if running_driver is False else "running"
    return {"FINISHED": "finished", "KILLED": "stopped", "FAILED": "failed"}.get(run_status, run_status.lower())


def _trial_status(run, metric: str, study_running: bool) -> TrialStatus:
    tags, metrics = run.data.tags, run.data.metrics
    state = tags.get(STATE_TAG, TrialState.RUNNING)
    if state == TrialState.RUNNING and not (study_running and run.info.status == "RUNNING"):
        state = INTERRUPTED
    epochs_done = metrics.get("epochs_completed")
    if epochs_done is None:
        epochs_done = metrics["epoch"] + 1 if "epoch" in metrics else 0
    return TrialStatus(
        name=tags.get("mlflow.runName", run.info.run_id),
        condition=tags.get(CONDITION_TAG, ""),
        role=tags.get(ROLE_TAG, ""),
        state=state,
        epochs_done=int(epochs_done),
        objective=metrics.get(f"selected_{metric}", metrics.get(metric, math.nan)),
        seconds=float(metrics.get("trial_seconds", 0.0)),
        reason=tags.get(REASON_TAG),
        ended_ms=run.info.end_time,
    )


def study_status(store: StudyStore, parent, lock_file: Path | None = None) -> StudyStatus:
    """The status of the study whose parent run is `parent`; `lock_file` tells a live driver from a lost one."""
    tags = parent.data.tags
    running_driver = None if lock_file is None else driver_holds(lock_file)
    state = _study_state(parent.info.status, running_driver)
    metric = tags.get(OBJECTIVE_METRIC_TAG, "val_balanced_accuracy")
    trials = [_trial_status(run, metric, state == "running") for run in store.trial_runs(parent)]
    trials.sort(key=lambda trial: (trial.condition, trial.name))
    return StudyStatus(
        name=tags.get(STUDY_TAG, ""),
        state=state,
        metric=metric,
        mode=tags.get(OBJECTIVE_MODE_TAG, "max"),
        started_ms=parent.info.start_time,
        ended_ms=parent.info.end_time,
        planned_trials=_int_tag(tags, PLANNED_TRIALS_TAG),
        epochs_per_trial=_int_tag(tags, EPOCHS_PER_TRIAL_TAG),
        trials=trials,
    )
