"""How far a running study is: trials by state, the running ones' epochs, the best so far, an ETA.

The driver's ProgressCallback feeds a StudyProgress; a listener (the CLI's live or plain view)
hears of every finished epoch and every trial that ends, and reads the rest from the progress.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import Protocol

from smcl_tune.results import EPOCHS_PLANNED, TrialState


def estimate_eta(epochs_left: int, epochs_trained: int, seconds: float) -> float | None:
    """Seconds to train `epochs_left` more at the rate seen so far; None before any epoch.

    An upper bound under ASHA, which stops trials before their last epoch."""
    if epochs_trained <= 0 or seconds <= 0:
        return None
    return epochs_left * seconds / epochs_trained


def is_better(value: float, than: float | None, mode: str) -> bool:
    if math.isnan(value):
        return False
    return than is None or (value > than if mode == "max" else value < than)


@dataclass
class RunningTrial:
    name: str
    condition: str
    epochs_done: int = 0
    epochs_planned: int = 0
    objective: float = math.nan  # the last epoch's
    images_per_second: float = math.nan
    gpu_memory_mib: float = math.nan


@dataclass(frozen=True)
class EndedTrial:
    name: str
    condition: str
    state: TrialState
    epochs_done: int
    reason: str | None = None

    def describe(self) -> str:
        if self.state == TrialState.COMPLETED:
            return f"{self.name}: finished after {self.epochs_done} epochs"
        if self.state == TrialState.PRUNED:
            return f"{self.name}: stopped early at epoch {self.epochs_done}"
        return f"{self.name}: failed at epoch {self.epochs_done}: {self.reason or 'no reason given'}"


class ProgressListener(Protocol):
    def started(self, progress: StudyProgress) -> None: ...

    def epoch_ended(self, progress: StudyProgress, trial: RunningTrial) -> None: ...

    def trial_ended(self, progress: StudyProgress, trial: EndedTrial) -> None: ...


class StudyProgress:
    """A study's progress in this driver session, plus the trials an earlier session ended."""

    def __init__(
        self,
        metric: str,
        mode: str,
        planned_trials: int,
        epochs_per_trial: int,
        listener: ProgressListener | None = None,
    ) -> None:
        self.metric = metric
        self.mode = mode
        self.planned_trials = planned_trials
        self.epochs_per_trial = epochs_per_trial
        self.listener = listener
        self.started = time.monotonic()
        self.running: dict[str, RunningTrial] = {}
        self.ended: Counter[TrialState] = Counter()
        self.epochs_trained = 0  # in this session
        self.best: dict[str, tuple[float, str]] = {}  # condition -> (objective, trial name)

    def add_earlier(self, state: TrialState, condition: str, name: str, objective: float) -> None:
        """A trial an earlier session of the study ended."""
        self.ended[state] += 1
        self._note_objective(condition, name, objective)

    def _note_objective(self, condition: str, name: str, value: float) -> None:
        known = self.best.get(condition)
        if is_better(value, None if known is None else known[0], self.mode):
            self.best[condition] = (value, name)

    def trial_started(self, trial_id: str, name: str, condition: str) -> RunningTrial:
        trial = self.running.get(trial_id)
        if trial is None:
            trial = self.running[trial_id] = RunningTrial(name, condition, epochs_planned=self.epochs_per_trial)
        return trial

    def epoch_ended(self, trial_id: str, name: str, condition: str, result: dict) -> None:
        trial = self.trial_started(trial_id, name, condition)
        epochs_done = int(result.get("epoch", trial.epochs_done)) + 1
        self.epochs_trained += max(0, epochs_done - trial.epochs_done)
        trial.epochs_done = epochs_done
        trial.epochs_planned = int(result.get(EPOCHS_PLANNED) or trial.epochs_planned)
        trial.objective = float(result.get(self.metric, math.nan))
        trial.images_per_second = float(result.get("images_per_second", math.nan))
        trial.gpu_memory_mib = float(result.get("gpu_memory_peak_mib", math.nan))
        self._note_objective(condition, name, trial.objective)
        if self.listener is not None:
            self.listener.epoch_ended(self, trial)

    def trial_ended(self, trial_id: str, name: str, condition: str, state: TrialState, reason: str | None) -> None:
        trial = self.running.pop(trial_id, None)
        epochs_done = 0 if trial is None else trial.epochs_done
        self.ended[state] += 1
        if self.listener is not None:
            self.listener.trial_ended(self, EndedTrial(name, condition, state, epochs_done, reason))

    @property
    def to_go(self) -> int:
        return max(0, self.planned_trials - sum(self.ended.values()) - len(self.running))

    def epochs_left(self) -> int:
        running = sum(max(0, trial.epochs_planned - trial.epochs_done) for trial in self.running.values())
        return running + self.to_go * self.epochs_per_trial

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def eta_seconds(self) -> float | None:
        return estimate_eta(self.epochs_left(), self.epochs_trained, self.elapsed())
