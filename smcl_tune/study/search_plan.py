"""A study's search plan: per condition its Optuna study, its baselines, TPE seeded from the study's
seed, the confirmation runs, and ASHA (or FIFO) over them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from smcl_tune.study.scheduler import StudyScheduler
from smcl_tune.study.searcher import StudySearcher
from smcl_tune.study.trial_spec import BASELINE, TrialSpec
from smcl_tune.studyfile.study import Study


def optuna_study_names(study: Study) -> list[str]:
    """One Optuna study per condition: the study's name, with the condition's label after a slash."""
    return [f"{study.name}/{condition.label}" if condition.label else study.name for condition in study.conditions]


def baseline_specs(study: Study) -> list[TrialSpec]:
    """Every baseline, once per seed (its own, or the trial's), in every condition."""
    trials = []
    for condition in study.conditions:
        for baseline in study.config.baselines:
            if baseline.seeds is None:
                trials.append(
                    TrialSpec(condition, BASELINE, f"baseline-{baseline.name}", baseline.name, dict(baseline.overrides))
                )
                continue
            for seed in baseline.seeds:
                trials.append(
                    TrialSpec(
                        condition,
                        BASELINE,
                        f"baseline-{baseline.name}-s{seed}",
                        baseline.name,
                        {**baseline.overrides, "training.seed": seed},
                    )
                )
    return trials


def build_searcher(study: Study, storage: optuna.storages.BaseStorage) -> StudySearcher:
    """The study's searcher: per condition, baselines, then TPE seeded from the study's seed, then
    the confirmation runs."""
    objective = study.config.objective
    metrics, modes = [objective.metric], [objective.mode]
    if objective.secondary is not None:
        metrics.append(objective.secondary.metric)
        modes.append(objective.secondary.mode)
    strata = study.conditions
    # One TPE per condition, each seeded; with two objectives Optuna's TPESampler runs as MOTPE.
    startup = min(10, max(2, study.config.num_trials // 3))
    samplers = [
        optuna.samplers.TPESampler(seed=(study.config.seed + index) % 2**32, n_startup_trials=startup)
        for index in range(len(strata))
    ]
    confirm = study.config.confirm
    return StudySearcher(
        space=study.config.search,
        strata=strata,
        baselines=baseline_specs(study),
        num_trials=study.config.num_trials,
        metric=metrics if len(metrics) > 1 else metrics[0],
        mode=modes if len(modes) > 1 else modes[0],
        samplers=samplers,
        study_names=optuna_study_names(study),
        storage=storage,
        confirm=None if confirm is None else confirm.model_dump(),
        base_trial=absolute_data_root(study.config.trial),
        database_url=study.config.optuna.storage,
        outage_timeout_s=study.config.optuna.outage_timeout_s,
        max_concurrent=study.config.max_concurrent * study.config.resources.fuse,  # members
    )


def build_scheduler(study: Study) -> StudyScheduler:
    """ASHA within each condition for search trials; baselines and confirmation runs never stop early."""
    settings = study.config.scheduler
    objective = study.config.objective
    asha = None
    if settings.type == "asha":
        asha = {
            "max_t": study.max_epochs,
            "grace_period": settings.grace_period,
            "reduction_factor": settings.reduction_factor,
        }
    return StudyScheduler(objective.metric, objective.mode, asha)


def expected_trials(study: Study, storage: optuna.storages.BaseStorage) -> int:
    """The trials a finished study has: the planned ones, less the confirmation runs of the
    top_k that fewer completed search trials of a condition leave out."""
    total = study.planned_trials
    confirm = study.config.confirm
    if confirm is not None:
        for name in optuna_study_names(study):
            completed = optuna.load_study(study_name=name, storage=storage).get_trials(
                deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)
            )
            total -= (confirm.top_k - min(confirm.top_k, len(completed))) * len(confirm.seeds)
    return total


def absolute_data_root(trial: dict[str, Any]) -> dict[str, Any]:
    """Ray runs each trial in its own folder: a relative data root is taken from the driver's."""
    data = trial.get("data", {})
    root = data.get("root")
    if not root or Path(root).is_absolute():
        return trial
    return {**trial, "data": {**data, "root": str(Path(root).resolve())}}
