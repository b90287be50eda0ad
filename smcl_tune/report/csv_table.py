"""The leaderboard as CSV: raw values (fractions, seconds), one row per trial, for spreadsheets and scripts."""

from __future__ import annotations

import pandas as pd

from smcl_tune.report.leaderboard import ACCURACY_COLUMNS, BACKGROUND_COLUMNS, Leaderboard
from smcl_tune.report.reference import backbone_of, published_for


def csv_frame(board: Leaderboard) -> pd.DataFrame:
    """One row per trial. A trial that is a seed of a configuration also carries the
    configuration's statistics (`config_*`, over `config_seeds`) and its paired difference to the
    baseline (`diff_*`, to `diff_baseline` over `diff_paired_seeds`, the seeds both ran)."""
    columns = [
        "rank",
        "condition",
        "imbalance_factor",
        "trial",
        "kind",
        "configuration",
        "seed",
        "state",
        "reason",
        "objective",
        *ACCURACY_COLUMNS,
        *(f"last_{c}" for c in ACCURACY_COLUMNS),
        *BACKGROUND_COLUMNS,
        "many_classes",
        "medium_classes",
        "few_classes",
        "epochs",
        "wall_s",
    ]
    frame = board.trials[columns].copy()
    for counted in ("rank", "seed", "many_classes", "medium_classes", "few_classes", "epochs"):
        frame[counted] = frame[counted].astype("Int64")  # whole numbers, empty where unknown (not 8.0)
    for name in board.searched:
        frame[f"param.{name}" if name in frame else name] = board.trials.get(f"param.{name}")
    keys = ["condition", "kind", "configuration"]
    summary = board.configurations()
    if not summary.empty:
        statistics = summary.rename(columns={c: f"config_{c}" for c in summary.columns if c not in keys})
        frame = frame.merge(statistics, on=keys, how="left")
    differences = board.differences()
    if not differences.empty:
        paired = differences.rename(columns={c: f"diff_{c}" for c in differences.columns if c not in keys})
        frame = frame.merge(paired, on=keys, how="left")
    return frame


def format_csv(board: Leaderboard, reference: pd.DataFrame | None = None) -> str:
    """The trials; with `reference`, the matching published results after them (kind `published`,
    accuracies as fractions like the trials'), and each row's backbone, as the published table
    names it, so that a row's `comparable` reason can be read off its neighbours."""
    frame = csv_frame(board)
    if reference is not None:
        frame["backbone"] = [backbone_of(name) or None for name in board.trials["architecture"]]
        class_names = board.class_names
        for condition, _, rows in published_for(board.trials, class_names, reference):
            published = pd.DataFrame(
                {
                    "condition": condition,
                    "trial": rows["method"],
                    "kind": "published",
                    # whole numbers, as the trials' column is (pandas' concat made both 3.0 and 200.0)
                    "epochs": pd.to_numeric(rows["epochs"], errors="coerce").round().astype("Int64"),
                    "imbalance_factor": rows["imbalance_factor"],
                    "backbone": rows["backbone"],
                    "source": rows["source"],
                    "comparable": rows["comparable"],
                    **{
                        # a published percentage with 2 decimals is a fraction with 4: 70.4 is 0.704, not 0.70400...01
                        f"test_{name}": (pd.to_numeric(rows[name], errors="coerce") / 100).round(6)
                        for name in ("top1", "many", "medium", "few")
                    },
                }
            )
            frame = pd.concat([frame, published], ignore_index=True)
    return frame.to_csv(index=False)
