"""Several studies side by side: the best completed trial of each, and each study's difference to the first."""

from __future__ import annotations

import pandas as pd

from smcl_tune.report.cells import as_percent, is_missing, percent_cell
from smcl_tune.report.display_frames import GROUP_SIZE_OF, HEADINGS
from smcl_tune.report.leaderboard import ACCURACY_COLUMNS, Leaderboard
from smcl_tune.report.markdown_table import markdown_table
from smcl_tune.report.text_table import text_table

COMPARISON_TITLE = "best trial of each study (test metrics of the epoch selected on validation, %)"


def _difference(reference, value) -> str:
    if is_missing(reference) or is_missing(value):
        return "n/a"
    return f"{as_percent(value - reference):+.1f}"


def comparison_frame(boards: list[Leaderboard]) -> pd.DataFrame:
    """Best completed trial of each study, then the difference of each study to the first one."""
    rows, bests = [], []
    for board in boards:
        best = board.best()
        bests.append(best)
        row = {
            "study": board.study,
            "best trial": "" if best is None else best["trial"],
            "val objective": "" if best is None else percent_cell(best["objective"]),
        }
        for column in ACCURACY_COLUMNS:
            group_size = None if best is None else best.get(GROUP_SIZE_OF.get(column))
            row[HEADINGS[column]] = "" if best is None else percent_cell(best[column], group_size)
        rows.append(row)
    reference = bests[0]
    for board, best in zip(boards[1:], bests[1:]):
        row = {"study": f"{board.study} - {boards[0].study}", "best trial": "difference", "val objective": ""}
        for column in ACCURACY_COLUMNS:
            row[HEADINGS[column]] = _difference(
                None if reference is None else reference[column], None if best is None else best[column]
            )
        rows.append(row)
    return pd.DataFrame(rows)


def format_comparison(boards: list[Leaderboard], fmt: str) -> str:
    frame = comparison_frame(boards)
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "markdown":
        return f"## {COMPARISON_TITLE}\n\n{markdown_table(frame)}\n"
    return f"{COMPARISON_TITLE}\n\n{text_table(frame)}"
