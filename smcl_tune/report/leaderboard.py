"""Leaderboards from the MLflow store that `smcl-tune run` writes (works after the fact, on any study).

One row per trial, ranked by the study's objective (a validation metric); studies that vary the
imbalance factor are grouped by it, with ranks within each group.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field

import pandas as pd

from smcl_tune.results import TrialState
from smcl_tune.tracking import (
    FEW_BELOW_TAG,
    IMBALANCE_FACTOR_TAG,
    MANY_ABOVE_TAG,
    OBJECTIVE_METRIC_TAG,
    OBJECTIVE_MODE_TAG,
    OPTUNA_STORAGE_TAG,
    REASON_TAG,
    ROLE_TAG,
    SEARCH_TAG,
    STATE_TAG,
    StudyStore,
)

SHOT_COLUMNS = ("test_many", "test_medium", "test_few")
ACCURACY_COLUMNS = ("test_top1", "test_balanced_accuracy", *SHOT_COLUMNS)
_STATE_ORDER = {TrialState.COMPLETED: 0, TrialState.PRUNED: 1, TrialState.RUNNING: 2, TrialState.FAILED: 3}
CURVE_TRIALS = 5


class StudyNotFound(LookupError):
    """No study of that name in the store; the message lists the studies that exist."""

    def __init__(self, name: str, known: list[str]) -> None:
        listing = ", ".join(known) if known else "none yet"
        super().__init__(f"no study named '{name}' in the MLflow store (studies there: {listing})")


class EmptyStudy(LookupError):
    """A study with no trial runs yet."""


@dataclass
class Leaderboard:
    """A study's trials, ranked, with what the report needs beside the table."""

    study: str
    metric: str
    mode: str
    trials: pd.DataFrame  # one row per trial, ranked; see `_trial_row` for the columns
    searched: list[str]  # plain names of the searched hyperparameters (`param.<name>` columns)
    optuna_storage: str | None = None
    curves: dict[str, pd.DataFrame] = field(default_factory=dict)  # trial -> epoch, validation metric
    best_per_class: pd.DataFrame | None = None  # class_id, class_name, train_count, test_accuracy

    @property
    def grouped(self) -> bool:
        return self.trials["imbalance_factor"].nunique(dropna=True) > 1

    def best(self) -> pd.Series | None:
        finished = self.trials[self.trials["state"] == TrialState.COMPLETED]
        if finished.empty:
            return None
        ordered = finished.sort_values("objective", ascending=self.mode == "min", na_position="last")
        return ordered.iloc[0]


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _state(tag: str | None) -> TrialState:
    try:
        return TrialState(tag)
    except ValueError:
        return TrialState.RUNNING


def _trial_row(run) -> dict:
    tags, metrics = run.data.tags, run.data.metrics
    epochs = metrics.get("epochs_completed")
    if epochs is None and "epoch" in metrics:
        epochs = metrics["epoch"] + 1
    row = {
        "trial": run.info.run_name,
        "kind": "baseline" if tags.get(ROLE_TAG) == "baseline" else "search",
        "state": _state(tags.get(STATE_TAG)),
        "reason": tags.get(REASON_TAG, ""),
        "imbalance_factor": _number(tags.get(IMBALANCE_FACTOR_TAG)),
        "many_above": _number(tags.get(MANY_ABOVE_TAG)),
        "few_below": _number(tags.get(FEW_BELOW_TAG)),
        "epochs": epochs,
        "wall_s": metrics.get("trial_seconds", math.nan),
        "run_id": run.info.run_id,
    }
    for column in ACCURACY_COLUMNS:
        row[column] = metrics.get(column, math.nan)
    for name in ("many", "medium", "few"):
        row[f"{name}_classes"] = metrics.get(f"{name}_classes", math.nan)
    row["_metrics"] = metrics
    row.update({f"param.{key}": value for key, value in run.data.params.items()})
    return row


def rank_trials(trials: pd.DataFrame, metric: str, mode: str) -> pd.DataFrame:
    """Add `objective` (the selected epoch's validation score, else the last) and `rank`.

    Finished trials first, by objective; then pruned, running and failed ones. With several
    imbalance factors, ranks restart within each factor's group.
    """
    frame = trials.copy()
    selected = [m.get(f"selected_{metric}", m.get(metric, math.nan)) for m in frame["_metrics"]]
    frame["objective"] = pd.to_numeric(pd.Series(selected, index=frame.index), errors="coerce")
    frame["_order"] = frame["state"].map(_STATE_ORDER).fillna(4)
    grouped = frame["imbalance_factor"].nunique(dropna=True) > 1
    keys = (["imbalance_factor"] if grouped else []) + ["_order", "objective", "trial"]
    ascending = ([True] if grouped else []) + [True, mode == "min", True]
    frame = frame.sort_values(keys, ascending=ascending, na_position="last").reset_index(drop=True)
    if grouped:
        frame["rank"] = frame.groupby("imbalance_factor", dropna=False).cumcount() + 1
    else:
        frame["rank"] = range(1, len(frame) + 1)
    return frame.drop(columns=["_order"])


def load_leaderboard(tracking_uri: str, study: str, curves: int = CURVE_TRIALS) -> Leaderboard:
    """The ranked trials of `study` from the MLflow store at `tracking_uri`."""
    store = StudyStore(tracking_uri)
    parent = store.study_run(study)
    if parent is None:
        raise StudyNotFound(study, store.study_names())
    tags = parent.data.tags
    metric = tags.get(OBJECTIVE_METRIC_TAG, "val_balanced_accuracy")
    mode = tags.get(OBJECTIVE_MODE_TAG, "max")
    children = store.trial_runs(parent)
    if not children:
        raise EmptyStudy(f"study '{study}' has no trials yet")
    trials = rank_trials(pd.DataFrame([_trial_row(run) for run in children]), metric, mode)
    board = Leaderboard(
        study, metric, mode, trials, json.loads(tags.get(SEARCH_TAG, "[]")), tags.get(OPTUNA_STORAGE_TAG)
    )
    for _, row in trials.head(curves).iterrows():
        history = store.metric_history(row["run_id"], metric)
        board.curves[row["trial"]] = pd.DataFrame(history, columns=["epoch", metric]).sort_values("epoch")
    best = board.best()
    if best is not None:
        text = store.artifact_text(best["run_id"], "per_class_accuracy.csv")
        board.best_per_class = None if text is None else pd.read_csv(io.StringIO(text))
    return board
