"""Leaderboards from the MLflow store that `smcl-tune run` writes (works after the fact, on any study).

One row per trial, ranked by the study's objective (a validation metric) within its condition;
then, for every configuration run with two or more seeds (baselines, confirmation runs), its
statistics over seeds and its paired difference to a baseline.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field

import pandas as pd

from smcl_tune.errors import EmptyStudy, StudyNotFound, UnknownBaseline
from smcl_tune.report.cells import named_trial
from smcl_tune.report.highlights import HIGHLIGHTED_KINDS, Highlight, highlights, per_class_summary
from smcl_tune.report.statistics import configuration_summary, paired_differences
from smcl_tune.results import GALLERY_FILE, OBJECTIVE_DECIMALS, TrialState
from smcl_tune.store.progress import INTERRUPTED
from smcl_tune.store.relocation import optuna_url_beside
from smcl_tune.store.sqlite_reader import RunReader, open_run_reader
from smcl_tune.store.status import trial_state
from smcl_tune.store.trial_record import TrialRecord
from smcl_tune.tracking.tags import (
    ARCHITECTURE_TAG,
    BASELINES_TAG,
    CONDITIONS_TAG,
    EPOCHS_TAG,
    FEW_BELOW_TAG,
    IMBALANCE_FACTOR_TAG,
    MANY_ABOVE_TAG,
    N_MAX_TAG,
    OBJECTIVE_METRIC_TAG,
    OBJECTIVE_MODE_TAG,
    OPTUNA_STORAGE_TAG,
    PROFILE_TAG,
    SEARCH_TAG,
    SEED_TAG,
    SOURCE_TAG,
    SUBSET_PROTOCOL_TAG,
    SUBSET_SEED_TAG,
)

SHOT_COLUMNS = ("test_many", "test_medium", "test_few")
ACCURACY_COLUMNS = ("test_top1", "test_balanced_accuracy", *SHOT_COLUMNS)
LAST_EPOCH_COLUMNS = tuple(f"last_{column}" for column in ACCURACY_COLUMNS)
# The share of background-only test images (salient box erased) predicted as a many-shot class.
BACKGROUND_COLUMNS = ("test_background_head_share", "last_test_background_head_share")
_STATE_ORDER = {
    TrialState.COMPLETED: 0,
    TrialState.PRUNED: 1,
    TrialState.RUNNING: 2,
    INTERRUPTED: 2,
    TrialState.FAILED: 3,
}
CURVE_TRIALS = 5


@dataclass
class ConditionPictures:
    """What the report draws of one condition beside its table: its best trial's per-class accuracy,
    its baselines' and confirmed configurations' over their seeds, and the mask gallery of its
    best-ranked trial that masks."""

    condition: str
    best: pd.Series | None  # the condition's best trial (Leaderboard.best's rule); None: nothing selected
    best_per_class: pd.DataFrame | None  # class_id, class_name, train_count, test_accuracy
    highlight_per_class: list[tuple[Highlight, pd.DataFrame]]
    gallery: tuple[str, bytes] | None  # the trial's name and its mask gallery (PNG)


def best_trial(trials: pd.DataFrame, mode: str) -> pd.Series | None:
    """See Leaderboard.best; of these trials."""
    completed = trials[trials["state"] == TrialState.COMPLETED]
    completed = completed[pd.to_numeric(completed["objective"], errors="coerce").notna()]
    finished = completed[completed["kind"] == "search"]
    if finished.empty:
        finished = completed
    if finished.empty:
        return None
    # stable, over the ranked order: a tie in the last bit goes to the trial ranked first
    tied = finished.assign(_objective=finished["objective"].round(OBJECTIVE_DECIMALS))
    ordered = tied.sort_values("_objective", ascending=mode == "min", na_position="last", kind="stable")
    return ordered.iloc[0].drop("_objective")


@dataclass
class Leaderboard:
    """A study's trials, ranked, with what the report needs beside the table."""

    study: str
    metric: str
    mode: str
    trials: pd.DataFrame  # one row per trial, ranked; see `_trial_row` for the columns
    searched: list[str]  # plain names of the searched hyperparameters (`param.<name>` columns)
    optuna_storage: str | None = None
    conditions: list[str] = field(default_factory=list)  # the conditions' labels, in the study's order
    baseline: str | None = None  # the baseline configurations are compared with (paired over seeds)
    curves: dict[str, pd.DataFrame] = field(default_factory=dict)  # trial -> epoch, validation metric
    class_names: list[str] = field(default_factory=list)  # of a completed trial (the best where there is one)
    pictures: list[ConditionPictures] = field(default_factory=list)  # each condition's, in the table's order

    @property
    def grouped(self) -> bool:
        return self.trials["condition"].nunique() > 1

    def best(self) -> pd.Series | None:
        """The completed search trial of the best validation objective (of any completed run in a
        study of baselines only); None where no completed run has a validation value: nothing was
        selected, and this tool never selects on test."""
        return best_trial(self.trials, self.mode)

    def configurations(self) -> pd.DataFrame:
        """Configurations with two or more seeds: mean, std and 95% interval of each test metric."""
        return configuration_summary(self.trials)

    def differences(self) -> pd.DataFrame:
        """Each configuration minus the baseline, paired over the seeds both ran."""
        if self.baseline is None:
            return pd.DataFrame()
        return paired_differences(self.trials, self.baseline)


def _trial_row(record: TrialRecord, study_running: bool) -> dict:
    tags = record.tags
    row = {
        "condition": record.condition,
        "trial": record.name,
        "kind": record.role,
        "configuration": record.configuration,
        "seed": record.number(SEED_TAG),
        "source": tags.get(SOURCE_TAG, ""),
        "architecture": tags.get(ARCHITECTURE_TAG, ""),
        "subset_protocol": tags.get(SUBSET_PROTOCOL_TAG, ""),
        "n_max": tags.get(N_MAX_TAG, ""),
        "profile": tags.get(PROFILE_TAG, ""),
        "subset_seed": tags.get(SUBSET_SEED_TAG, ""),
        "planned_epochs": record.number(EPOCHS_TAG),
        "state": trial_state(record, study_running),
        "reason": record.reason or "",
        "imbalance_factor": record.number(IMBALANCE_FACTOR_TAG),
        "many_above": record.number(MANY_ABOVE_TAG),
        "few_below": record.number(FEW_BELOW_TAG),
        "epochs": record.epochs_done if record.metrics.keys() & {"epochs_completed", "epoch"} else None,
        "wall_s": record.metrics.get("trial_seconds", math.nan),
        "run_id": record.run_id,
        "objective": record.objective,
    }
    for column in (*ACCURACY_COLUMNS, *LAST_EPOCH_COLUMNS, *BACKGROUND_COLUMNS):
        row[column] = record.metrics.get(column, math.nan)
    for group in ("many", "medium", "few"):
        row[f"{group}_classes"] = record.metrics.get(f"{group}_classes", math.nan)
    row.update({f"param.{key}": value for key, value in record.params.items()})
    return row


def rank_trials(trials: pd.DataFrame, mode: str, conditions: list[str] | None = None) -> pd.DataFrame:
    """Order the trials by their `objective` (results.objective_value) and add `rank`.

    Within each condition (in the study's order): completed trials first, by objective; then
    pruned, running and failed ones. Ranks restart in each condition. A trial without an objective
    value (trained without a validation split, or ended before its first) has no rank: ordering
    it by name would be a ranking by nothing.
    """
    frame = trials.copy()
    frame["objective"] = pd.to_numeric(frame["objective"], errors="coerce")
    frame["_order"] = frame["state"].map(_STATE_ORDER).fillna(4)
    order = {label: index for index, label in enumerate(conditions or [])}
    frame["_condition"] = frame["condition"].map(lambda label: (order.get(label, len(order)), label))
    frame["_objective"] = frame["objective"].round(OBJECTIVE_DECIMALS)  # a tie in the last bit goes by name
    frame = frame.sort_values(
        ["_condition", "_order", "_objective", "trial"],
        ascending=[True, True, mode == "min", True],
        na_position="last",
    ).reset_index(drop=True)
    ranked = frame["objective"].notna()
    frame["rank"] = (frame[ranked].groupby("condition", sort=False).cumcount() + 1).astype("Int64")
    return frame.drop(columns=["_order", "_condition", "_objective"])


def load_leaderboard(
    tracking_uri: str, study: str, curves: int = CURVE_TRIALS, baseline: str | None = None
) -> Leaderboard:
    """The ranked trials of `study` from the MLflow store at `tracking_uri`; configurations are
    compared with `baseline` (default: the study's first baseline)."""
    store = open_run_reader(tracking_uri)
    parent = store.study_run(study)
    if parent is None:
        raise StudyNotFound(study, store.study_names())
    tags = parent.data.tags
    metric = tags.get(OBJECTIVE_METRIC_TAG, "val_balanced_accuracy")
    mode = tags.get(OBJECTIVE_MODE_TAG, "max")
    children = store.trial_runs(parent)
    if not children:
        raise EmptyStudy(f"study '{study}' has no trials yet")
    conditions = json.loads(tags.get(CONDITIONS_TAG, "[]"))
    baselines = json.loads(tags.get(BASELINES_TAG, "[]"))
    records = [TrialRecord.of_run(run, metric) for run in children]
    # A study whose run has ended (finished, or stopped by Ctrl-C) runs none of its trials; one whose
    # driver was killed looks running here, as only its lock tells (`smcl-tune status`).
    study_running = parent.info.status == "RUNNING"
    rows = [_trial_row(record, study_running) for record in records]
    trials = rank_trials(pd.DataFrame(rows), mode, conditions)
    if baseline is None and baselines:
        baseline = baselines[0]
    elif baseline is not None and baseline not in baselines:
        raise UnknownBaseline(study, baseline, baselines)
    board = Leaderboard(
        study,
        metric,
        mode,
        trials,
        json.loads(tags.get(SEARCH_TAG, "[]")),
        optuna_url_beside(tags.get(OPTUNA_STORAGE_TAG), tracking_uri, study),
        conditions,
        baseline,
    )
    for _, members in trials.groupby("condition", sort=False):
        for row, history in _curve_runs(store, members, metric, curves):
            board.curves[named_trial(row)] = pd.DataFrame(history, columns=["epoch", metric]).sort_values("epoch")
    board.pictures = [
        _condition_pictures(store, condition, trials[trials["condition"] == condition], mode)
        for condition in trials["condition"].unique()
    ]
    best = board.best()  # also its condition's best: the same rule over a subset that holds it
    pictures = {found.condition: found for found in board.pictures}
    board.class_names = _class_names(
        store, None if best is None else pictures[best["condition"]].best_per_class, trials
    )
    return board


def _curve_runs(
    store: RunReader, members: pd.DataFrame, metric: str, count: int
) -> list[tuple[pd.Series, list[tuple[int, float]]]]:
    """A condition's runs whose validation curves are drawn, each with its curve: its top `count`
    search trials in rank order, and each baseline and confirmed configuration once (its lowest
    completed seed: its best seed would flatter it); runs without a validation value (no validation
    split) are passed over. At most 3 tries per run drawn bound the store reads."""
    search = members[~members["kind"].isin(HIGHLIGHTED_KINDS)]
    # as the configurations' means over seeds are: of their completed runs (a failed seed's curve would stand for it)
    highlighted = members[members["kind"].isin(HIGHLIGHTED_KINDS) & (members["state"] == TrialState.COMPLETED)]
    chosen = _with_curves(store, search.head(3 * count), metric, count)
    for _, seeds in highlighted.sort_values("seed", kind="stable").groupby(
        ["kind", "configuration"], sort=False, dropna=False
    ):
        chosen += _with_curves(store, seeds.head(3), metric, 1)
    return sorted(chosen, key=lambda pair: members.index.get_loc(pair[0].name))  # the table's order


def _with_curves(
    store: RunReader, runs: pd.DataFrame, metric: str, count: int
) -> list[tuple[pd.Series, list[tuple[int, float]]]]:
    """The first `count` of `runs` that logged a validation value, each with its curve."""
    found = []
    for _, row in runs.iterrows():
        history = store.metric_history(row["run_id"], metric)
        if any(not math.isnan(value) for _, value in history):
            found.append((row, history))
            if len(found) == count:
                break
    return found


def _condition_pictures(store: RunReader, condition: str, trials: pd.DataFrame, mode: str) -> ConditionPictures:
    best = best_trial(trials, mode)
    per_class = None
    if best is not None:
        text = store.artifact_text(best["run_id"], "per_class_accuracy.csv")
        per_class = None if text is None else pd.read_csv(io.StringIO(text))
    return ConditionPictures(
        condition, best, per_class, _highlights_per_class(store, trials), _best_gallery(store, trials)
    )


def _class_names(store: RunReader, best_per_class: pd.DataFrame | None, trials: pd.DataFrame) -> list[str]:
    """The classes' names (they tell CIFAR-10 in an image folder): the best trial's, or where no trial
    is best (no validation split) the first completed trial's that kept its per-class file."""
    if best_per_class is not None:
        return best_per_class["class_name"].astype(str).tolist()
    for run_id in trials.loc[trials["state"] == TrialState.COMPLETED, "run_id"]:
        text = store.artifact_text(run_id, "per_class_accuracy.csv")
        if text is not None:
            return pd.read_csv(io.StringIO(text))["class_name"].astype(str).tolist()
    return []


def _highlights_per_class(store: RunReader, trials: pd.DataFrame) -> list[tuple[Highlight, pd.DataFrame]]:
    """Each baseline and confirmed configuration among `trials` with its per-class accuracy over its seeds."""
    found = []
    for highlight in highlights(trials):
        texts = [store.artifact_text(run_id, "per_class_accuracy.csv") for run_id in highlight.runs["run_id"]]
        tables = [pd.read_csv(io.StringIO(text)) for text in texts if text is not None]
        if tables:
            found.append((highlight, per_class_summary(tables)))
    return found


def _best_gallery(store: RunReader, trials: pd.DataFrame, tries: int = 10) -> tuple[str, bytes] | None:
    """The mask gallery of the best-ranked completed trial that has one (methods that mask)."""
    completed = trials[trials["state"] == TrialState.COMPLETED]
    for _, row in completed.head(tries).iterrows():
        picture = store.artifact_bytes(row["run_id"], GALLERY_FILE)
        if picture is not None:
            return named_trial(row), picture
    return None
