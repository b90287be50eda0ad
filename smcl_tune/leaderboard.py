"""Leaderboards from the MLflow store: one row per trial, ranked by the study's objective."""

from __future__ import annotations

import math

import pandas as pd
from mlflow.tracking import MlflowClient

from smcl_tune.tracking import MLFLOW_PARENT_RUN_ID, ROLE_TAG, STATE_TAG, STUDY_TAG, REASON_TAG

ACCURACY_COLUMNS = ("test_top1", "test_balanced_accuracy", "test_many", "test_medium", "test_few")
_STATE_ORDER = {"completed": 0, "pruned": 1, "running": 2, "failed": 3}


class StudyNotFound(LookupError):
    """No study of that name in the store; `known` lists the studies that exist."""

    def __init__(self, name: str, known: list[str]) -> None:
        listing = ", ".join(known) if known else "none yet"
        super().__init__(f"no study named '{name}' in the MLflow store (studies: {listing})")
        self.known = known


def load_trials(tracking_uri: str, experiment: str, study_name: str) -> pd.DataFrame:
    """One row per trial run of a study: state, role, params (as `param.*`) and latest metrics."""
    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    parents = [] if found is None else client.search_runs(
        [found.experiment_id], filter_string=f"tags.`{ROLE_TAG}` = 'study'", max_results=10000)
    studies = sorted({run.data.tags.get(STUDY_TAG, "") for run in parents})
    parent = next((run for run in parents if run.data.tags.get(STUDY_TAG) == study_name), None)
    if parent is None:
        raise StudyNotFound(study_name, studies)
    children = client.search_runs([found.experiment_id],
                                  filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent.info.run_id}'",
                                  max_results=10000)
    rows = []
    for run in children:
        row = {
            "trial": run.info.run_name,
            "role": run.data.tags.get(ROLE_TAG, "search"),
            "state": run.data.tags.get(STATE_TAG, "running"),
            "reason": run.data.tags.get(REASON_TAG, ""),
            "run_id": run.info.run_id,
        }
        row.update({f"param.{key}": value for key, value in run.data.params.items()})
        row.update(run.data.metrics)
        rows.append(row)
    return pd.DataFrame(rows)


def rank_trials(trials: pd.DataFrame, metric: str = "val_balanced_accuracy", mode: str = "max") -> pd.DataFrame:
    """Sorted rows with a `rank` column: completed trials by their selected validation score first."""
    if trials.empty:
        return trials.assign(rank=pd.Series(dtype="Int64"), objective=pd.Series(dtype=float))
    frame = trials.copy()
    selected = frame.get(f"selected_{metric}", pd.Series(math.nan, index=frame.index))
    frame["objective"] = selected.fillna(frame.get(metric, pd.Series(math.nan, index=frame.index)))
    frame["_state_order"] = frame["state"].map(_STATE_ORDER).fillna(4)
    frame = frame.sort_values(["_state_order", "objective"], ascending=[True, mode == "min"], na_position="last")
    frame = frame.drop(columns="_state_order").reset_index(drop=True)
    frame.insert(0, "rank", range(1, len(frame) + 1))
    return frame


def _percent(value: float) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}"


def format_table(ranked: pd.DataFrame) -> str:
    """A plain-text table: rank, trial, state, objective and test overall / many / medium / few."""
    header = f"{'rank':>4}  {'trial':<22}{'state':<11}{'val obj':>8}{'top-1':>8}{'many':>8}{'medium':>8}{'few':>8}"
    lines = [header, "-" * len(header)]
    for _, row in ranked.iterrows():
        cells = [_percent(row.get(column, math.nan)) for column in ("objective", "test_top1", "test_many",
                                                                     "test_medium", "test_few")]
        lines.append(f"{row['rank']:>4}  {str(row['trial'])[:21]:<22}{row['state']:<11}"
                     + "".join(f"{cell:>8}" for cell in cells))
    return "\n".join(lines)
