"""The leaderboard's tables as frames of strings, the same for every format that shows them (text,
Markdown, HTML): the trials, ranked within their condition; the configurations run with two or
more seeds (mean ± std and the Student-t 95% interval); each configuration's paired difference to
the baseline over the seeds both ran; and the published results for what the study measures."""

from __future__ import annotations

import pandas as pd

from smcl_tune.report.captions import BACKGROUND_HEADING, SEEDS_TITLE, differences_title, interval_notes
from smcl_tune.report.cells import difference_cell, interval_cell, number_cell, param_cell, percent_cell
from smcl_tune.report.leaderboard import ACCURACY_COLUMNS, Leaderboard
from smcl_tune.report.reference import CAVEAT, published_for
from smcl_tune.report.statistics import unpaired_configurations

HEADINGS = {
    "test_top1": "top-1",
    "test_balanced_accuracy": "balanced",
    "test_many": "many",
    "test_medium": "medium",
    "test_few": "few",
}
# Columns of text, aligned left; every other column holds a number and is aligned right.
LEFT_ALIGNED = {
    "trial",
    "state",
    "study",
    "best trial",
    "condition",
    "configuration",
    "seeds",
    "vs",
    "method [published]",
    "source",
    "comparable",
    "published results",
}
GROUP_SIZE_OF = {"test_many": "many_classes", "test_medium": "medium_classes", "test_few": "few_classes"}
_KIND_MARK = {"baseline": " [baseline]", "confirm": " [confirm]", "search": ""}


def display_frame(board: Leaderboard) -> pd.DataFrame:
    """The leaderboard as strings, one row per trial, in rank order."""
    rows = []
    for _, trial in board.trials.iterrows():
        row = {"rank": number_cell(trial["rank"])}
        if board.grouped:
            row["condition"] = trial["condition"]
        row["trial"] = trial["trial"] + _KIND_MARK.get(trial["kind"], "")
        failed = trial["state"] == "failed" and trial["reason"]
        row["state"] = trial["state"] + (f": {trial['reason']}" if failed else "")
        row["val objective"] = percent_cell(trial["objective"])
        for column in ACCURACY_COLUMNS:
            row[HEADINGS[column]] = percent_cell(trial[column], trial.get(GROUP_SIZE_OF.get(column, ""), None))
        row["last top-1"] = percent_cell(trial["last_test_top1"])
        row["last few"] = percent_cell(trial["last_test_few"], trial.get("few_classes"))
        row[BACKGROUND_HEADING] = percent_cell(trial["test_background_head_share"], trial.get("many_classes"))
        for name in board.searched:
            row[name] = param_cell(trial.get(f"param.{name}"))
        row["epochs"] = number_cell(trial["epochs"])
        row["wall s"] = number_cell(trial["wall_s"])
        rows.append(row)
    return pd.DataFrame(rows)


def _configuration_cells(board: Leaderboard, row) -> dict[str, str]:
    """The leading cells of a per-configuration row: its condition (when there are several) and name."""
    cells = {"condition": row["condition"]} if board.grouped else {}
    cells["configuration"] = row["configuration"] + _KIND_MARK.get(row["kind"], "")
    return cells


def seeds_frame(board: Leaderboard) -> pd.DataFrame:
    """Configurations with two or more seeds: mean ± std [95% interval] of each test metric, %."""
    rows = []
    for _, summary in board.configurations().iterrows():
        row = _configuration_cells(board, summary)
        row["seeds"] = summary["seeds"]
        for metric in ACCURACY_COLUMNS:
            row[HEADINGS[metric]] = interval_cell(summary, metric)
        rows.append(row)
    return pd.DataFrame(rows)


def differences_frame(board: Leaderboard) -> pd.DataFrame:
    """Each configuration minus the baseline, paired over the seeds both ran, in points."""
    rows = []
    for _, difference in board.differences().iterrows():
        row = _configuration_cells(board, difference)
        row["vs"] = difference["baseline"]
        row["seeds"] = difference["paired_seeds"]
        for metric in ACCURACY_COLUMNS:
            row[HEADINGS[metric]] = difference_cell(difference, metric)
        rows.append(row)
    return pd.DataFrame(rows)


def reference_sections(board: Leaderboard, reference: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Published results for what each condition measures; a one-row note where none matches."""
    class_names = board.class_names
    sections = []
    for _, described, rows in published_for(board.trials, class_names, reference):
        if rows.empty:
            note = pd.DataFrame([{"published results": "no published figure matches this study"}])
            sections.append((f"published results for {described}", note))
            continue
        shown = pd.DataFrame(
            {
                "method [published]": rows["method"] + " [published]",
                "epochs": [param_cell(value) for value in rows["epochs"]],
                "top-1": [param_cell(value) for value in rows["top1"]],
                "many": [param_cell(value) for value in rows["many"]],
                "medium": [param_cell(value) for value in rows["medium"]],
                "few": [param_cell(value) for value in rows["few"]],
                "comparable": rows["comparable"],
                "source": rows["source"],
            }
        )
        title = (
            f"published results on {rows['benchmark'].iloc[0]}, every imbalance factor and backbone, beside {described}"
        )
        sections.append((f"{title} (%; {CAVEAT})", shown))
    return sections


def sections_after_trials(board: Leaderboard, reference: pd.DataFrame | None = None) -> list[tuple[str, pd.DataFrame]]:
    """The titled tables after the trials: seed statistics, paired differences and published results."""
    sections = []
    seeds, differences = seeds_frame(board), differences_frame(board)
    metrics = list(HEADINGS.values())
    if not seeds.empty:
        sections.append(("; ".join([SEEDS_TITLE, *interval_notes(seeds, metrics)]), seeds))
    unpaired = unpaired_configurations(board.trials, board.baseline) if board.baseline else []
    left_out = [f"not paired, fewer than 2 seeds in common: {'; '.join(unpaired)}"] if unpaired else []
    if not differences.empty:
        title = "; ".join([differences_title(board), *interval_notes(differences, metrics), *left_out])
        sections.append((title, differences))
    elif unpaired:
        sections.append((differences_title(board), pd.DataFrame([{"paired differences": left_out[0]}])))
    if reference is not None:
        sections += reference_sections(board, reference)
    return sections
