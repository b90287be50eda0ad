"""Optuna behind Ray Tune: baselines first, then Optuna's sampler through its ask-and-tell interface.

What Optuna is told: COMPLETE only for a trial that trained all its epochs, with the validation
score of the epoch it selected; PRUNED, with its per-epoch values as intermediate values, for a
trial the scheduler stopped (Ray's own OptunaSearch would tell COMPLETE with the short budget's
score, which feeds the sampler wrong values); FAIL, with the reason as a user attribute, for a
trial that failed. Baselines never reach Optuna.

After the driver was killed, the Optuna study can hold RUNNING trials that Ray's last saved state
never heard of. They are handed out again to the next new Ray trials, so the Optuna study ends
with exactly one record per trial.
"""

from __future__ import annotations

import logging
import math
import pickle
from typing import Any

import optuna
from optuna.trial import TrialState as OptunaState
from ray.tune.search import Searcher

from smcl_tune.results import TrialState, outcome
from smcl_tune.study.keys import TRIAL_KEY, TRIAL_NAME, TRIAL_ROLE
from smcl_tune.study.retry import retry_while_locked

log = logging.getLogger(__name__)

OPTUNA_STATES = {
    TrialState.COMPLETED: OptunaState.COMPLETE,
    TrialState.PRUNED: OptunaState.PRUNED,
    TrialState.FAILED: OptunaState.FAIL,
}


def to_optuna_distribution(spec: dict[str, Any]) -> optuna.distributions.BaseDistribution:
    """A study file's distribution (already validated) as an Optuna distribution."""
    ((kind, bounds),) = spec.items()
    if kind == "uniform":
        return optuna.distributions.FloatDistribution(bounds[0], bounds[1])
    if kind == "loguniform":
        return optuna.distributions.FloatDistribution(bounds[0], bounds[1], log=True)
    if kind == "int":
        return optuna.distributions.IntDistribution(int(bounds[0]), int(bounds[1]))
    if kind == "logint":
        return optuna.distributions.IntDistribution(int(bounds[0]), int(bounds[1]), log=True)
    return optuna.distributions.CategoricalDistribution(bounds)


def _open_trial(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> optuna.Trial:
    """A handle on a trial already in the storage. Optuna has no public way to reopen a RUNNING
    trial; `_trial_id` is its storage id (the adoption test fails if this ever changes)."""
    return optuna.Trial(study, frozen._trial_id)


class StudySearcher(Searcher):
    """Baselines first, then Optuna trials over `space` (dotted config path -> distribution spec)."""

    def __init__(
        self,
        space: dict[str, dict[str, Any]],
        baselines: list[dict[str, Any]],
        metric: str | list[str],
        mode: str | list[str],
        sampler: optuna.samplers.BaseSampler,
        study_name: str,
        storage: optuna.storages.BaseStorage,
    ) -> None:
        super().__init__(metric=metric, mode=mode)
        self.metrics = metric if isinstance(metric, list) else [metric]
        modes = mode if isinstance(mode, list) else [mode]
        self.distributions = {path: to_optuna_distribution(spec) for path, spec in space.items()}
        self.optuna_study = optuna.create_study(
            study_name=study_name,
            storage=storage,
            sampler=sampler,
            load_if_exists=True,
            directions=["maximize" if m == "max" else "minimize" for m in modes],
        )
        self._pending_baselines = list(baselines)
        self._baselines: set[str] = set()
        self._trials: dict[str, optuna.Trial] = {}
        self._reported_steps: dict[str, set[int]] = {}
        self._ended: set[str] = set()

    # -- suggesting ------------------------------------------------------------------------------
    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self._pending_baselines:
            baseline = self._pending_baselines.pop(0)
            self._baselines.add(trial_id)
            name = f"baseline-{baseline['name']}"
            return {TRIAL_KEY: name, TRIAL_ROLE: "baseline", TRIAL_NAME: name, **baseline["overrides"]}
        if trial_id not in self._trials:
            held = retry_while_locked(
                lambda: self._orphan() or (self.optuna_study.ask(self.distributions), set()), "Optuna: a new trial"
            )
            if held is None:
                return None  # the storage stayed locked: Ray asks again later
            self._trials[trial_id], self._reported_steps[trial_id] = held
        trial = self._trials[trial_id]
        retry_while_locked(lambda: trial.set_user_attr("ray_trial_id", trial_id), f"Optuna trial {trial.number}")
        return {
            TRIAL_KEY: f"optuna-{trial.number}",
            TRIAL_ROLE: "search",
            TRIAL_NAME: f"trial-{trial.number:03d}",
            **trial.params,
        }

    def _orphan(self) -> tuple[optuna.Trial, set[int]] | None:
        """A RUNNING Optuna trial that no Ray trial of this driver holds (its driver was killed),
        with the steps it has intermediate values for."""
        held = {trial.number for trial in self._trials.values()}
        for frozen in self.optuna_study.get_trials(deepcopy=False, states=(OptunaState.RUNNING,)):
            if frozen.number not in held:
                log.info("Optuna trial %d, left running by an interrupted driver, continues", frozen.number)
                return _open_trial(self.optuna_study, frozen), set(frozen.intermediate_values)
        return None

    # -- results ---------------------------------------------------------------------------------
    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if trial_id not in self._trials or trial_id in self._ended or len(self.metrics) > 1:
            return  # baselines; Optuna keeps no intermediate values of multi-objective trials
        value, step = result.get(self.metrics[0]), result.get("training_iteration")
        steps = self._reported_steps[trial_id]
        if value is None or step is None or not math.isfinite(value) or step in steps:
            return  # Optuna refuses NaN intermediate values
        trial = self._trials[trial_id]
        retry_while_locked(lambda: trial.report(value, step), f"Optuna trial {trial.number}, step {step}")
        steps.add(step)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if trial_id not in self._trials or trial_id in self._ended:
            return
        trial = self._trials[trial_id]
        # Ray does not pass the result that made the scheduler stop a trial to on_trial_result.
        self.on_trial_result(trial_id, result or {})
        state, reason = outcome(result, error)
        if reason:
            retry_while_locked(
                lambda: trial.set_user_attr("failure_reason", reason[:2000]), f"Optuna trial {trial.number}"
            )
        retry_while_locked(lambda: self._tell(trial, state, result), f"Optuna trial {trial.number}: its end")
        self._ended.add(trial_id)

    def _tell(self, trial: optuna.Trial, state: TrialState, result: dict[str, Any] | None) -> None:
        try:
            if state == TrialState.COMPLETED:
                values = [float(result.get(f"selected_{name}", result[name])) for name in self.metrics]
                if all(math.isfinite(v) for v in values):
                    self.optuna_study.tell(trial, values if len(values) > 1 else values[0])
                else:
                    self.optuna_study.tell(trial, state=OptunaState.FAIL)
            else:
                self.optuna_study.tell(trial, state=OPTUNA_STATES[state])
        except (RuntimeError, ValueError) as told:  # e.g. told already, before the driver was restarted
            log.warning("Optuna trial %d: %s", trial.number, told)

    # -- Ray's experiment checkpoints ---------------------------------------------------------------
    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.__dict__, file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            self.__dict__.update(pickle.load(file))
