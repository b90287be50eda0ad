"""Optuna behind Ray Tune: per condition, baselines, then Optuna's sampler through its
ask-and-tell interface, then the confirmation runs of the best configurations.

Each condition (a value of the study's `conditions:`) is a stratum of its own: its own Optuna
study, sampler and trials, so a sampler never trades one imbalance factor against another.

What Optuna is told: COMPLETE only for a trial that trained all its epochs, with the validation
score of the epoch it selected; PRUNED, with its per-epoch values as intermediate values, for a
trial the scheduler stopped (Ray's own OptunaSearch would tell COMPLETE with the short budget's
score, which feeds the sampler wrong values); FAIL, with the reason as a user attribute, for a
trial that failed. Baselines and confirmation runs never reach Optuna.

After the driver was killed, an Optuna study can hold RUNNING trials that Ray's last saved state
never heard of. They are handed out again to the next new Ray trials, so each Optuna study ends
with exactly one record per trial.
"""

from __future__ import annotations

import logging
import math
import pickle
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.trial import TrialState as OptunaState
from ray.tune.search import Searcher

from smcl_tune.results import TrialState, objective_value, outcome, tie_rounded
from smcl_tune.study.database_outage import stored
from smcl_tune.study.outage_wait import DEFAULT_OUTAGE_TIMEOUT_S, StoreDown, defer, raise_deferred
from smcl_tune.study.trial_spec import CONFIRM, SEARCH, TrialSpec
from smcl_tune.studyfile.conditions import Condition
from smcl_tune.studyfile.search_space import SearchDistribution

log = logging.getLogger(__name__)

OPTUNA_STATES = {
    TrialState.COMPLETED: OptunaState.COMPLETE,
    TrialState.PRUNED: OptunaState.PRUNED,
    TrialState.FAILED: OptunaState.FAIL,
}


def open_trial(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> optuna.Trial:
    """A handle on a trial already in the storage. Optuna has no public way to reopen a RUNNING
    trial; `_trial_id` is its storage id (the adoption test fails if this ever changes)."""
    return optuna.Trial(study, frozen._trial_id)


def _draw_missing(trial: optuna.Trial, distributions: dict[str, BaseDistribution]) -> None:
    """The trial's values of `distributions` that it lacks, drawn now: a driver killed inside
    Optuna's `ask`, after the trial was made and before its values were, left it without them (it
    then trained on the study file's values, and was recorded with no parameters)."""
    for name, distribution in distributions.items():
        if name in trial.params:
            continue
        if isinstance(distribution, CategoricalDistribution):
            trial.suggest_categorical(name, distribution.choices)
        elif isinstance(distribution, IntDistribution):
            trial.suggest_int(name, distribution.low, distribution.high, step=distribution.step, log=distribution.log)
        else:
            trial.suggest_float(name, distribution.low, distribution.high, step=distribution.step, log=distribution.log)


def _past_draws(sampler: optuna.samplers.BaseSampler, distributions: dict, held: int) -> None:
    """`sampler` moved on by the `held` trials its Optuna study holds already. A new searcher meets
    such a study only when the study's first run was stopped before Ray saved its state (a resume
    unpickles the searcher, its samplers' state with it): seeded anew, the sampler drew those
    trials' configurations again. Asked once more on a scratch study, it draws as the first run did
    after them, so the study's seed still gives the configurations an uninterrupted run draws (in
    TPE's random start-up trials; TPE's own depend on the results, as always)."""
    if not held:
        return
    # the sampler's own draws, on a scratch study's trial: asked through the scratch study, TPE would
    # tie its search-space cache to that study, and refuse the study's own afterwards
    scratch = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    scratch.ask()
    trial = scratch.trials[-1]
    for _ in range(held):
        for name, distribution in distributions.items():
            sampler.sample_independent(scratch, trial, name, distribution)


T = TypeVar("T")


def _name_the_values(study: optuna.Study, metrics: list[str]) -> None:
    """Name each objective value after its metric, so that optuna-dashboard and Optuna's plots
    show `val_balanced_accuracy` rather than "Objective 0"."""
    with warnings.catch_warnings():
        # Study.set_metric_names is marked experimental (Optuna 3.2 to 5.0); the name it stores is all we use.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(metrics)


class StudySearcher(Searcher):
    """Per condition: baselines first, then `num_trials` Optuna trials over `space`, then, with
    `confirm`, each of the `top_k` best configurations once per confirmation seed. Each trial's
    config is `base_trial` with its values applied, built and validated here, once."""

    def __init__(
        self,
        space: dict[str, SearchDistribution],
        strata: list[Condition],
        baselines: list[TrialSpec],
        num_trials: int,
        metric: str | list[str],
        mode: str | list[str],
        samplers: list[optuna.samplers.BaseSampler],
        study_names: list[str],
        storage: optuna.storages.BaseStorage,
        confirm: dict[str, Any] | None = None,
        base_trial: dict[str, Any] | None = None,
        database_url: str | None = None,
        outage_timeout_s: float = DEFAULT_OUTAGE_TIMEOUT_S,
        max_concurrent: int | None = None,
    ) -> None:
        super().__init__(metric=metric, mode=mode)
        self.database_url = database_url  # a server's outages are waited for (database_outage.py)
        self.outage_timeout_s = outage_timeout_s
        # the searcher limits its live trials itself, not through Ray's ConcurrencyLimiter, whose
        # saved state can name a trial that Ray's own saved state does not hold (see restore)
        self.max_concurrent = max_concurrent
        self.metrics = metric if isinstance(metric, list) else [metric]
        modes = mode if isinstance(mode, list) else [mode]
        self.distributions = {path: distribution.to_optuna() for path, distribution in space.items()}
        self.strata = strata
        directions = ["maximize" if m == "max" else "minimize" for m in modes]
        self.optuna_studies = {
            stratum.label: self._stored(
                lambda name=name, sampler=sampler: optuna.create_study(
                    study_name=name, storage=storage, sampler=sampler, load_if_exists=True, directions=directions
                ),
                f"Optuna study {name}",
            )
            for stratum, name, sampler in zip(strata, study_names, samplers)
        }
        for study in self.optuna_studies.values():
            self._stored(lambda study=study: _name_the_values(study, self.metrics), f"Optuna study {study.study_name}")
            held = self._stored(
                lambda study=study: len(study.get_trials(deepcopy=False)), f"Optuna study {study.study_name}"
            )
            _past_draws(study.sampler, self.distributions, held)
        self.num_trials = num_trials
        self.confirm = confirm
        self.base_trial = base_trial or {}
        self._pending: list[TrialSpec] = list(baselines)
        self._search_slots: list[Condition] = [stratum for _ in range(num_trials) for stratum in strata]
        self._confirmed: set[str] = set()  # conditions whose confirmation runs are planned
        self._specs: dict[str, TrialSpec] = {}  # every trial suggested, validated
        self._trials: dict[str, tuple[Condition, optuna.Trial]] = {}
        self._reported_steps: dict[str, set[int]] = {}
        self._ended: set[str] = set()

    def _stored(self, action: Callable[[], T], what: str) -> T | None:
        """An Optuna call: waits out a locked sqlite file, or an outage of the study's database."""
        # a searcher pickled by an smcl-tune before optuna.storage has neither attribute
        timeout_s = getattr(self, "outage_timeout_s", DEFAULT_OUTAGE_TIMEOUT_S)
        raise_deferred()  # the database was given up on already: no second wait
        return stored(getattr(self, "database_url", None), timeout_s, action, what)

    # -- suggesting ------------------------------------------------------------------------------
    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        # Ray asks every second, for up to 10 minutes and deaf to Ctrl-C, while no trial runs and
        # this answers None: a store given up on must stop the study here, not only at an Optuna call
        raise_deferred()
        if trial_id in self._specs:
            return self._specs[trial_id].ray_config()
        limit = getattr(self, "max_concurrent", None)
        if limit is not None and len(set(self._specs) - self._ended) >= limit:
            return None  # Ray asks again when a trial ends
        if self._pending:
            return self._suggested(trial_id, self._pending.pop(0))
        if trial_id not in self._trials and self._search_slots:
            stratum = self._search_slots[0]
            held = self._stored(
                lambda: self._orphan(stratum) or (self._ask(stratum), set()),
                f"Optuna ({stratum.label or 'study'}): a new trial",
            )
            if held is None:
                return None  # the storage stayed locked: Ray asks again later
            self._search_slots.pop(0)
            self._trials[trial_id] = (stratum, held[0])
            self._reported_steps[trial_id] = held[1]
        if trial_id in self._trials:
            stratum, trial = self._trials[trial_id]
            self._stored(lambda: trial.set_user_attr("ray_trial_id", trial_id), f"Optuna trial {trial.number}")
            name = f"trial-{trial.number:03d}"
            spec = TrialSpec(stratum, SEARCH, name, name, dict(trial.params), identity=f"optuna-{trial.number}")
            return self._suggested(trial_id, spec)
        self._plan_confirmations()
        if self._pending:
            return self.suggest(trial_id)
        done = self.confirm is None or len(self._confirmed) == len(self.strata)
        return Searcher.FINISHED if done else None  # None: a condition's search is still running

    def _suggested(self, trial_id: str, spec: TrialSpec) -> dict[str, Any]:
        self._specs[trial_id] = spec.validated(self.base_trial)
        return self._specs[trial_id].ray_config()

    def _ask(self, stratum: Condition) -> optuna.Trial:
        return self.optuna_studies[stratum.label].ask(self.distributions)

    def _orphan(self, stratum: Condition) -> tuple[optuna.Trial, set[int]] | None:
        """A RUNNING Optuna trial of the stratum that no Ray trial of this driver holds (its driver
        was killed), with the steps it has intermediate values for."""
        held = {trial.number for held_stratum, trial in self._trials.values() if held_stratum == stratum}
        study = self.optuna_studies[stratum.label]
        for frozen in study.get_trials(deepcopy=False, states=(OptunaState.RUNNING,)):
            if frozen.number not in held:
                log.info("Optuna trial %d, left running by an interrupted driver, continues", frozen.number)
                trial = open_trial(study, frozen)
                _draw_missing(trial, self.distributions)
                return trial, set(frozen.intermediate_values)
        return None

    def _plan_confirmations(self) -> None:
        """Once every search trial of a stratum has ended: its top_k configurations by the
        validation objective, each retrained with every confirmation seed."""
        if self.confirm is None:
            return
        for stratum in self.strata:
            if stratum.label in self._confirmed:
                continue
            ended = sum(
                1 for trial_id, (held, _) in self._trials.items() if held == stratum and trial_id in self._ended
            )
            if ended < self.num_trials:
                continue
            self._confirmed.add(stratum.label)
            sign = -1 if self.optuna_studies[stratum.label].directions[0] == optuna.study.StudyDirection.MAXIMIZE else 1
            completed = self.optuna_studies[stratum.label].get_trials(states=(OptunaState.COMPLETE,))
            best = sorted(completed, key=lambda trial: (sign * tie_rounded(trial.values[0]), trial.number))[
                : self.confirm["top_k"]
            ]
            if len(best) < self.confirm["top_k"]:
                where = f" ({stratum.label})" if stratum.label else ""
                log.warning(
                    "confirm%s: %d of top_k %d configurations to confirm: only %d search trials completed",
                    where,
                    len(best),
                    self.confirm["top_k"],
                    len(completed),
                )
            suggested = {spec.key for spec in self._specs.values()}  # one a resume took up from Ray's state
            for trial in best:
                for seed in self.confirm["seeds"]:
                    spec = TrialSpec(
                        stratum,
                        CONFIRM,
                        f"confirm-{trial.number:03d}-s{seed}",
                        f"trial-{trial.number:03d}",
                        {**trial.params, **self.confirm["overrides"], "training.seed": seed},
                    )
                    if spec.key not in suggested:
                        self._pending.append(spec)

    # -- results ---------------------------------------------------------------------------------
    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if trial_id not in self._trials or trial_id in self._ended or len(self.metrics) > 1:
            return  # baselines, confirmation runs; Optuna keeps no intermediate values of multi-objective trials
        value, step = result.get(self.metrics[0]), result.get("training_iteration")
        steps = self._reported_steps[trial_id]
        if value is None or step is None or not math.isfinite(value) or step in steps:
            return  # Optuna refuses NaN intermediate values
        _, trial = self._trials[trial_id]
        self._stored(lambda: _report(trial, value, step), f"Optuna trial {trial.number}, step {step}")
        steps.add(step)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if trial_id not in self._trials or trial_id in self._ended:
            self._ended.add(trial_id)  # a baseline or confirmation run: no longer live
            return
        try:
            self._record_end(trial_id, result, error)
        except StoreDown as down:  # Ray would log it as the trial's failure and go on
            defer(down)
            return
        self._ended.add(trial_id)

    def _record_end(self, trial_id: str, result: dict[str, Any] | None, error: bool) -> None:
        stratum, trial = self._trials[trial_id]
        study = self.optuna_studies[stratum.label]
        recorded = self._stored(lambda: study.get_trials(deepcopy=False)[trial.number], f"Optuna trial {trial.number}")
        if recorded is not None and recorded.state.is_finished():
            # recorded by a driver killed before Ray saved its own state: Ray reports the end again
            log.debug("Optuna trial %d: its end is recorded already", trial.number)
            return
        # Ray does not pass the result that made the scheduler stop a trial to on_trial_result.
        self.on_trial_result(trial_id, result or {})
        state, reason = outcome(result, error)
        if reason:
            self._stored(lambda: trial.set_user_attr("failure_reason", reason[:2000]), f"Optuna trial {trial.number}")
        self._stored(lambda: self._tell(stratum, trial, state, result), f"Optuna trial {trial.number}: its end")

    def _tell(self, stratum: Condition, trial: optuna.Trial, state: TrialState, result: dict[str, Any] | None) -> None:
        study = self.optuna_studies[stratum.label]
        try:
            if state == TrialState.COMPLETED:
                values = [objective_value(result, name) for name in self.metrics]
                if all(math.isfinite(v) for v in values):
                    study.tell(trial, values if len(values) > 1 else values[0])
                else:
                    missing = [name for name, value in zip(self.metrics, values) if not math.isfinite(value)]
                    trial.set_user_attr(
                        "failure_reason",
                        f"the objective {', '.join(missing)} has no value: a shot group without validation "
                        "classes in this condition (see its trials' group sizes), or a metric the trial never reported",
                    )
                    study.tell(trial, state=OptunaState.FAIL)
            else:
                study.tell(trial, state=OPTUNA_STATES[state])
        except (RuntimeError, ValueError) as told:  # e.g. told already, before the driver was restarted
            log.warning("Optuna trial %d: %s", trial.number, told)

    # -- Ray's experiment checkpoints ---------------------------------------------------------------
    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.__dict__, file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            self.__dict__.update(pickle.load(file))


def _report(trial: optuna.Trial, value: float, step: int) -> None:
    """An intermediate value; none for a trial that has ended, whose last report Ray sends again
    when the driver was killed before Ray saved its state (the end was recorded, its values too)."""
    try:
        trial.report(value, step)
    except optuna.exceptions.UpdateFinishedTrialError:
        log.debug("Optuna trial %d has ended: its value at step %d is not reported again", trial.number, step)
