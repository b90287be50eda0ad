"""Optuna behind Ray Tune, with baselines first and pruned trials reported as PRUNED.

Ray's OptunaSearch tells Optuna COMPLETE for a trial that ASHA stopped early, with its
short-budget score, which feeds TPE wrong values. `StudySearcher` tells PRUNED (the epoch
values stay as intermediate values), FAIL for a trial whose loss went non-finite, and COMPLETE
only for a trial that trained all its epochs.

After the driver was killed, the Optuna study can hold RUNNING trials that Ray's last saved
state never heard of. They are handed out again to the next new Ray trials, so the Optuna
study ends with exactly one record per trial.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

log = logging.getLogger(__name__)

TRIAL_KEY = "smcl_trial_key"
TRIAL_ROLE = "smcl_role"
TRIAL_NAME = "smcl_trial_name"


def trial_outcome(result: dict[str, Any] | None, error: bool = False) -> tuple[str, str | None]:
    """'completed', 'pruned' or 'failed' (with a reason) from a trial's last reported result."""
    if error:
        return "failed", "the trial raised an error (see its Ray log)"
    if not result:
        return "pruned", None
    if result.get("trial_failed"):
        return "failed", str(result.get("failure_reason") or "failed")
    done = result.get("epochs_completed", result.get("epoch", -1) + 1)
    if done >= result.get("epochs_planned", math.inf):
        return "completed", None
    return "pruned", None


def to_optuna_distribution(spec: dict[str, Any]) -> optuna.distributions.BaseDistribution:
    """A study file's distribution (already validated) as an Optuna distribution."""
    (kind, bounds), = spec.items()
    if kind == "uniform":
        return optuna.distributions.FloatDistribution(bounds[0], bounds[1])
    if kind == "loguniform":
        return optuna.distributions.FloatDistribution(bounds[0], bounds[1], log=True)
    if kind == "int":
        return optuna.distributions.IntDistribution(int(bounds[0]), int(bounds[1]))
    if kind == "logint":
        return optuna.distributions.IntDistribution(int(bounds[0]), int(bounds[1]), log=True)
    return optuna.distributions.CategoricalDistribution(bounds)


class StudySearcher(OptunaSearch):
    """OptunaSearch with fixed baseline trials first and prune-aware completion."""

    def __init__(self, space: dict[str, Any], baselines: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(space={path: to_optuna_distribution(spec) for path, spec in space.items()}, **kwargs)
        self._pending_baselines = list(baselines)
        self._baseline_trials: set[str] = set()

    # -- suggesting ------------------------------------------------------------------------------
    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self._pending_baselines:
            baseline = self._pending_baselines.pop(0)
            self._baseline_trials.add(trial_id)
            return {TRIAL_KEY: f"baseline-{baseline['name']}", TRIAL_ROLE: "baseline",
                    TRIAL_NAME: f"baseline-{baseline['name']}", **baseline["overrides"]}
        if trial_id not in self._ot_trials:
            orphan = self._orphan_trial()
            if orphan is not None:
                self._ot_trials[trial_id] = orphan
                log.info("Optuna trial %d (left running by an interrupted driver) continues as %s",
                         orphan.number, trial_id)
        params = super().suggest(trial_id)
        if params is None:
            return None
        number = self._ot_trials[trial_id].number
        self._ot_trials[trial_id].set_user_attr("ray_trial_id", trial_id)
        return {TRIAL_KEY: f"optuna-{number}", TRIAL_ROLE: "search", TRIAL_NAME: f"trial-{number:03d}",
                **params}

    def _orphan_trial(self) -> optuna.Trial | None:
        known = {trial.number for trial in self._ot_trials.values()}
        for frozen in self._ot_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if frozen.number not in known:
                return optuna.Trial(self._ot_study, frozen._trial_id)
        return None

    # -- results ---------------------------------------------------------------------------------
    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if trial_id in self._baseline_trials:
            return
        value = result.get(self.metric) if isinstance(self.metric, str) else None
        if isinstance(self.metric, str) and (value is None or not math.isfinite(value)):
            return  # Optuna refuses NaN intermediate values
        super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if trial_id in self._baseline_trials or trial_id in self._completed_trials:
            return
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is None:
            return
        outcome, reason = trial_outcome(result, error)
        self._report_last_value(ot_trial, result)
        if reason:
            ot_trial.set_user_attr("failure_reason", reason[:2000])
        try:
            if outcome == "completed":
                metrics = self.metric if isinstance(self.metric, list) else [self.metric]
                # the validation score of the epoch the trial selected (its test metrics are that epoch's)
                values = [float(result.get(f"selected_{name}", result[name])) for name in metrics]
                if all(math.isfinite(v) for v in values):
                    self._ot_study.tell(ot_trial, values if len(values) > 1 else values[0])
                else:
                    self._ot_study.tell(ot_trial, state=TrialState.FAIL)
            elif outcome == "pruned":
                self._ot_study.tell(ot_trial, state=TrialState.PRUNED)
            else:
                self._ot_study.tell(ot_trial, state=TrialState.FAIL)
        except (RuntimeError, ValueError) as told:  # e.g. told before the driver was restarted
            log.warning("Optuna trial %d: %s", ot_trial.number, told)
        self._completed_trials.add(trial_id)

    def _report_last_value(self, ot_trial: optuna.Trial, result: dict[str, Any] | None) -> None:
        """Ray does not pass the result that made the scheduler stop a trial to on_trial_result."""
        if not result or not isinstance(self.metric, str) or "training_iteration" not in result:
            return
        value = result.get(self.metric)
        step = result["training_iteration"]
        if value is not None and math.isfinite(value) and step not in ot_trial.storage.get_trial(
                ot_trial._trial_id).intermediate_values:
            ot_trial.report(value, step)
