"""ASHA within each condition, and the trials no scheduler may stop.

A trial is compared only with trials of its own condition: each condition has its own ASHA
rungs. Baselines and confirmation runs always train their full budget: they are what the search
is compared with, and a baseline stopped early cannot serve as the comparison.
"""

from __future__ import annotations

from typing import Any

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

from smcl_tune.study.object_store_outage import STORE_DOWN
from smcl_tune.study.trial_data_error import DATA_ERROR
from smcl_tune.study.trial_spec import SEARCH, spec_of

STUDY_STOPPING_REPORTS = (DATA_ERROR, STORE_DOWN)


class StudyScheduler(FIFOScheduler):
    """FIFO for baselines and confirmation runs; one ASHA per condition for search trials (or
    none: `asha` None gives FIFO for every trial)."""

    def __init__(self, metric: str, mode: str, asha: dict[str, Any] | None) -> None:
        super().__init__()
        self.objective, self.direction, self.asha = metric, mode, asha
        self._per_condition: dict[str, ASHAScheduler] = {}

    def _scheduler(self, trial) -> ASHAScheduler | None:
        """The ASHA of the trial's condition, or None for a trial no scheduler stops."""
        spec = spec_of(trial.config)
        if self.asha is None or spec.role != SEARCH:
            return None
        condition = spec.condition.label
        if condition not in self._per_condition:
            self._per_condition[condition] = ASHAScheduler(
                metric=self.objective, mode=self.direction, time_attr="training_iteration", **self.asha
            )
        return self._per_condition[condition]

    def on_trial_add(self, tune_controller, trial) -> None:
        scheduler = self._scheduler(trial)
        if scheduler is not None:
            scheduler.on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        scheduler = self._scheduler(trial)
        if scheduler is None or any(result.get(key) for key in STUDY_STOPPING_REPORTS):
            return TrialScheduler.CONTINUE  # a report that stops the study is no epoch's result for a rung
        return scheduler.on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        scheduler = self._scheduler(trial)
        if scheduler is not None:
            scheduler.on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial) -> None:
        scheduler = self._scheduler(trial)
        if scheduler is not None:
            scheduler.on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        return (
            "; ".join(
                f"{condition or 'study'}: {scheduler.debug_string()}"
                for condition, scheduler in self._per_condition.items()
            )
            or "FIFO"
        )
