"""How far a study is: its trials by state, the running ones' epochs, the best per condition, the ETA.

One model for both readers: the driver feeds it from Ray's reports while the study runs (the live
and plain views listen), and `smcl-tune status` builds it from the store's trial records.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import Protocol

from smcl_tune.results import EPOCHS_PLANNED, FUSED_GROUP, TrialState, objective_value, tie_rounded
from smcl_tune.store.trial_record import SEARCH_ROLE

INTERRUPTED = "interrupted"  # a trial or study whose driver stopped without ending it
ENDED_STATES = (TrialState.COMPLETED, TrialState.PRUNED, TrialState.FAILED)


def trial_key(condition: str, name: str) -> str:
    """A trial's key in the driver's progress: its name within its condition, the same in every run
    of the study (Ray's trial ids are not known to the store)."""
    return f"{name} [{condition}]"


def is_better(value: float, than: float | None, mode: str) -> bool:
    if math.isnan(value):
        return False
    if than is None:
        return True
    value, than = tie_rounded(value), tie_rounded(than)  # a difference in the last bit is a tie
    return value > than if mode == "max" else value < than


@dataclass
class TrialProgress:
    """One trial of a study as far as it has gone."""

    name: str  # its run name: "trial-003", "baseline-ce-s1 [imbalance_factor=100]"
    condition: str
    role: str = ""
    state: str = TrialState.RUNNING  # a TrialState value, or INTERRUPTED
    epochs_done: int = 0
    epochs_planned: int = 0
    objective: float = math.nan  # the selected epoch's validation objective; the last epoch's while running
    seconds: float = 0.0  # training time (Ray's), across resumes: a study's start-up is not in it
    reason: str | None = None
    ended_ms: int | None = None
    images_per_second: float = math.nan
    gpu_memory_mib: float = math.nan
    fused_group: str = ""  # the fused group and slot it trains in: "g2/1"; "" unfused

    def describe(self) -> str:
        """How an ended trial ended, in a line."""
        if self.state == TrialState.COMPLETED:
            return f"{self.name}: finished after {self.epochs_done} epoch{'s' * (self.epochs_done != 1)}"
        if self.state == TrialState.PRUNED:
            return f"{self.name}: stopped early at epoch {self.epochs_done}"
        return f"{self.name}: failed at epoch {self.epochs_done}: {self.reason or 'no reason given'}"


class ProgressListener(Protocol):
    def started(self, progress: StudyProgress) -> None: ...

    def epoch_ended(self, progress: StudyProgress, trial: TrialProgress) -> None: ...

    def trial_ended(self, progress: StudyProgress, trial: TrialProgress) -> None: ...


class StudyProgress:
    """A study's trials by key (`trial_key` in the driver, a run id in the store), and what follows
    from them; `listener` hears of every finished epoch and every trial that ends."""

    def __init__(
        self,
        metric: str,
        mode: str,
        planned_trials: int | None,
        epochs_per_trial: int | None,
        listener: ProgressListener | None = None,
    ) -> None:
        self.metric = metric
        self.mode = mode
        self.planned_trials = planned_trials
        self.epochs_per_trial = epochs_per_trial
        self.listener = listener
        self.started = time.monotonic()
        self.trials: dict[str, TrialProgress] = {}
        self._trained: set[str] = set()  # trials an earlier run had ended that trained in this one

    # -- what the driver (or the store) tells it -----------------------------------------------------
    def add(self, key: str, trial: TrialProgress) -> None:
        """A trial as a record says it is (an earlier run's, or the store's)."""
        self.trials[key] = trial

    def trial_started(self, key: str, name: str, condition: str, role: str = "") -> TrialProgress:
        trial = self.trials.get(key)
        if trial is None:
            trial = self.trials[key] = TrialProgress(name, condition, epochs_planned=self.epochs_per_trial or 0)
        trial.role = role or trial.role
        return trial

    def _reported_again(self, key: str, result: dict | None = None) -> bool:
        """An end an earlier run of the study recorded, that Ray reports again (its last report, then
        its end) when the driver was killed before Ray saved its own state: counted and said once.
        A trial that trains on instead (Ray resumes a pruned or failed one) is followed as running."""
        trial = self.trials.get(key)
        if trial is None or trial.state not in ENDED_STATES or key in self._trained:
            return False
        return result is None or "epochs_completed" in result  # an end, or the report that carries it

    def epoch_ended(self, key: str, name: str, condition: str, result: dict, role: str = "") -> None:
        if self._reported_again(key, result):
            return
        trial = self.trial_started(key, name, condition, role)
        if trial.state in ENDED_STATES:  # ended in an earlier run, and Ray trains it on (a pruned or failed trial)
            self._trained.add(key)
            trial.state = TrialState.RUNNING
        trial.epochs_done = int(result.get("epoch", trial.epochs_done)) + 1
        trial.epochs_planned = int(result.get(EPOCHS_PLANNED) or trial.epochs_planned)
        trial.objective = objective_value(result, self.metric)  # the selected epoch's in a trial's final report
        trial.seconds = float(result.get("time_total_s", trial.seconds))
        trial.images_per_second = float(result.get("images_per_second", math.nan))
        trial.gpu_memory_mib = float(result.get("gpu_memory_peak_mib", math.nan))
        trial.fused_group = str(result.get(FUSED_GROUP, ""))
        if self.listener is not None:
            self.listener.epoch_ended(self, trial)

    def trial_ended(
        self, key: str, name: str, condition: str, state: TrialState, reason: str | None, role: str = ""
    ) -> None:
        if self._reported_again(key):
            return
        trial = self.trial_started(key, name, condition, role)
        trial.state, trial.reason = state, reason
        if self.listener is not None:
            self.listener.trial_ended(self, trial)

    # -- what follows --------------------------------------------------------------------------------
    @property
    def running(self) -> list[TrialProgress]:
        return [trial for trial in self.trials.values() if trial.state == TrialState.RUNNING]

    def counts(self) -> Counter[str]:
        return Counter(trial.state for trial in self.trials.values())

    def ended(self) -> int:
        counts = self.counts()
        return sum(counts[state] for state in ENDED_STATES)

    def best(self) -> dict[str, TrialProgress]:
        """Per condition, the completed search trial with the best validation objective, as the
        leaderboard's report names its best trial (a baseline's or a confirmation's seed only where
        no search trial has completed); before any has completed, the best of any state so far (a
        trial stopped early holds an early epoch's value, which may beat the finished trials' selected ones)."""
        by_condition: dict[str, list[TrialProgress]] = {}
        for trial in self.trials.values():
            by_condition.setdefault(trial.condition, []).append(trial)
        best: dict[str, TrialProgress] = {}
        for condition, trials in by_condition.items():
            completed = [t for t in trials if t.state == TrialState.COMPLETED and not math.isnan(t.objective)]
            searched = [t for t in completed if t.role == SEARCH_ROLE]
            for trial in sorted(searched or completed or trials, key=lambda t: t.name):  # ties: the first name
                known = best.get(condition)
                if is_better(trial.objective, None if known is None else known.objective, self.mode):
                    best[condition] = trial
        return best

    @property
    def to_go(self) -> int | None:
        """Trials not started yet; None when the plan is not known."""
        return None if self.planned_trials is None else max(0, self.planned_trials - len(self.trials))

    def elapsed(self) -> float:
        """Seconds since this driver started watching."""
        return time.monotonic() - self.started

    def eta_seconds(self) -> float | None:
        """Time to train the running trials' remaining epochs and the trials still to start, at the
        rate the study's trials have trained so far (training time, not the study's start-up), as
        many at once as run now. An upper bound under ASHA, which stops trials before their last epoch."""
        if self.epochs_per_trial is None or self.to_go is None:
            return None
        running = self.running
        epochs_left = sum(
            max(0, (trial.epochs_planned or self.epochs_per_trial) - trial.epochs_done) for trial in running
        )
        epochs_left += self.to_go * self.epochs_per_trial
        trained = sum(trial.epochs_done for trial in self.trials.values())
        seconds = sum(trial.seconds for trial in self.trials.values())
        if trained <= 0 or seconds <= 0:
            return None
        return epochs_left * seconds / trained / max(1, len(running))
