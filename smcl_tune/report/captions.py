"""The lines that go with the leaderboard's tables: the title, the shot groups of each condition,
the titles of the tables over seeds, and the notes."""

from __future__ import annotations

import pandas as pd

from smcl_tune.report.cells import CUT
from smcl_tune.report.leaderboard import Leaderboard
from smcl_tune.report.statistics import MIN_SEEDS_FOR_INTERVAL
from smcl_tune.results import TrialState, uniform_head_share

BACKGROUND_HEADING = "bg→many"
BACKGROUND_NOTE = (
    f"{BACKGROUND_HEADING}: the share of the test images with their salient box erased (on the synthetic source, "
    "their object) that the model puts in a many-shot class, %; SMCL claims to lower it"
)
SEEDS_TITLE = "configurations over seeds: mean ± std [95% interval, Student t], test %"


def epoch_rule(board: Leaderboard) -> str:
    """Which epoch's test metrics the report gives: a completed trial without a validation value
    trained without a validation split (data.val_per_class: 0) and reports its last epoch."""
    return epoch_rule_of(completed_objectives(board))


def completed_objectives(board: Leaderboard) -> pd.Series:
    """The validation objective of each completed trial (missing: trained without a validation
    split); while none has completed, of each trial that trained an epoch (a study stopped early
    on, whose rule is the one its trials will report by)."""
    trials = board.trials
    completed = trials["state"] == TrialState.COMPLETED
    if not completed.any():
        completed = pd.to_numeric(trials["epochs"], errors="coerce").fillna(0) >= 1
    return trials.loc[completed, "objective"]


def epoch_rule_of(objectives: pd.Series) -> str:
    """The epoch rule of trials with these objective values (missing: no validation split)."""
    unvalidated = pd.to_numeric(objectives, errors="coerce").isna()
    if len(objectives) and unvalidated.all():
        return "the last epoch (no validation split)"
    if unvalidated.any():
        return "the epoch selected on validation, or the last where a run has no validation split"
    return "the epoch selected on validation"


def title_line(board: Leaderboard) -> str:
    if pd.to_numeric(board.trials["objective"], errors="coerce").notna().any():
        within = " within each condition" if board.grouped else ""
        order = (
            f"ranked by {board.metric} ({board.mode}){within}, completed trials before those stopped "
            "early (whose value is an early epoch's)"
        )
    else:  # nothing to rank by: the test set is never one
        by = "condition, state and name" if board.grouped else "state and name"
        order = f"unranked (no validation split; this tool never ranks on test), by {by}"
    return (
        f"study {board.study}: {len(board.trials)} trials, {order}; "
        f"accuracies in %, test metrics of {epoch_rule(board)} ('last': of the "
        "last epoch); this tool never selects on test"
    )


def differences_title(board: Leaderboard) -> str:
    return (
        f"paired differences to the baseline '{board.baseline}' over the seeds both ran: mean [95% interval], "
        "points; * the interval excludes 0"
    )


def group_lines(board: Leaderboard, background: bool = True) -> list[str]:
    """One line per condition: shot-group sizes and thresholds; with `background` (a table that shows
    the background head share), its uniform-guessing level and what it measures."""
    lines = []
    for condition, members in board.trials.groupby("condition", sort=False):
        sizes = members[["many_classes", "medium_classes", "few_classes"]].dropna()
        many_above, few_below = members["many_above"].dropna(), members["few_below"].dropna()
        where = f"condition {condition}: " if condition else ""
        if sizes.empty:
            lines.append(f"{where}shot groups unknown (no trial completed)")
            continue
        many, medium, few = (int(v) for v in sizes.iloc[0])
        rule = ""
        if not many_above.empty and not few_below.empty:
            rule = f" (many: > {many_above.iloc[0]:g} training images, few: < {few_below.iloc[0]:g})"
        share = uniform_head_share({"many": many, "medium": medium, "few": few})
        uniform = f"; {BACKGROUND_HEADING} of uniform guessing {100 * share:.1f}%" if background else ""
        lines.append(f"{where}shot groups {many} / {medium} / {few} classes (many / medium / few){rule}{uniform}")
    if background and any("uniform guessing" in line for line in lines):
        lines.append(BACKGROUND_NOTE)
    return lines


def interval_notes(frame: pd.DataFrame, metric_headings: list[str]) -> list[str]:
    """Why a table over seeds shows no interval where it shows none, and what a cut bound means."""
    notes = []
    counts = [len(seeds.split(",")) for seeds in frame["seeds"]]
    few = sorted({count for count in counts if count < MIN_SEEDS_FOR_INTERVAL})
    if few:
        notes.append(
            f"{' or '.join(str(count) for count in few)} seeds: too few for an interval (it needs "
            f"{MIN_SEEDS_FOR_INTERVAL} or more), so no interval and no star"
        )
    cells = frame[[heading for heading in metric_headings if heading in frame.columns]]
    enough = [count >= MIN_SEEDS_FOR_INTERVAL for count in counts]
    if any(ok and any("[" not in cell and cell != "n/a" for cell in row) for ok, row in zip(enough, cells.values)):
        notes.append("a zero spread over the seeds: no interval (seeds that agree are not evidence of precision)")
    if any(CUT in cell for row in cells.values for cell in row):
        notes.append(f"{CUT} the interval reaches past the metric's range and is shown cut at it")
    return notes
