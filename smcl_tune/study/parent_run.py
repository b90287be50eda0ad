"""The study's parent run in MLflow: the tags that describe the study to its readers (status, the
leaderboard), written when a run starts."""

from __future__ import annotations

import json
import time

from smcl_tune.store.paths import StudyPaths
from smcl_tune.studyfile.conditions import plain_param_names
from smcl_tune.studyfile.study import Study
from smcl_tune.tracking.tags import (
    BASELINES_TAG,
    CONDITIONS_TAG,
    EPOCHS_PER_TRIAL_TAG,
    FINGERPRINT_TAG,
    OBJECTIVE_METRIC_TAG,
    OBJECTIVE_MODE_TAG,
    OPTUNA_STORAGE_TAG,
    PLANNED_TRIALS_TAG,
    RUN_STARTED_TAG,
    SEARCH_TAG,
)


def study_tags(study: Study, paths: StudyPaths) -> dict[str, str]:
    """The parent run's tags: the objective, the Optuna storage, the searched names, the conditions'
    labels, the baselines, the planned trials, the epochs per trial and when this run started."""
    objective = study.config.objective
    return {
        OBJECTIVE_METRIC_TAG: objective.metric,
        OBJECTIVE_MODE_TAG: objective.mode,
        OPTUNA_STORAGE_TAG: paths.optuna_url,
        SEARCH_TAG: json.dumps(list(plain_param_names(dict.fromkeys(study.config.search)))),
        CONDITIONS_TAG: json.dumps([condition.label for condition in study.conditions if condition.label]),
        BASELINES_TAG: json.dumps([baseline.name for baseline in study.config.baselines]),
        PLANNED_TRIALS_TAG: str(study.planned_trials),
        EPOCHS_PER_TRIAL_TAG: str(study.max_epochs),
        # the file's, set by the driver on every run (a trial's tracker keeps the first run's): the
        # checks let a file that now pins a changed default resume, under a new fingerprint
        FINGERPRINT_TAG: study.fingerprint(),
        # a resumed study's status tells its time since it started (downtime included) from this run's
        RUN_STARTED_TAG: str(int(time.time() * 1000)),
    }
