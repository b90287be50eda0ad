"""Leaderboard tables as text, CSV and Markdown, and the side-by-side comparison of studies.

Cells: accuracies in % with one decimal; an empty shot group is "n/a"; a metric the trial never
reported (pruned, failed, interrupted) is an empty cell. The CSV keeps the raw fractions.
"""

from __future__ import annotations

import math

import pandas as pd

from smcl_tune.report.leaderboard import ACCURACY_COLUMNS, Leaderboard

_HEADINGS = {
    "test_top1": "top-1",
    "test_balanced_accuracy": "balanced",
    "test_many": "many",
    "test_medium": "medium",
    "test_few": "few",
}
_LEFT_ALIGNED = {"trial", "state", "study", "best trial"}
_GROUP_OF = {"test_many": "many_classes", "test_medium": "medium_classes", "test_few": "few_classes"}


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def percent_cell(value, group_size=None) -> str:
    if not _missing(group_size) and group_size == 0:
        return "n/a"
    return "" if _missing(value) else f"{100 * value:.1f}"


def _number_cell(value, digits: int = 0) -> str:
    return "" if _missing(value) else f"{value:.{digits}f}"


def _param_cell(value) -> str:
    if _missing(value):
        return ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{number:.4g}"


def display_frame(board: Leaderboard) -> pd.DataFrame:
    """The leaderboard as strings, one row per trial, in rank order."""
    rows = []
    for _, trial in board.trials.iterrows():
        row = {"rank": str(trial["rank"])}
        if board.grouped:
            row["IF"] = _param_cell(trial["imbalance_factor"])
        row["trial"] = trial["trial"] + (" [baseline]" if trial["kind"] == "baseline" else "")
        row["state"] = trial["state"] + (
            f": {trial['reason']}" if trial["state"] == "failed" and trial["reason"] else ""
        )
        row["val objective"] = percent_cell(trial["objective"])
        for column in ACCURACY_COLUMNS:
            row[_HEADINGS[column]] = percent_cell(trial[column], trial.get(_GROUP_OF.get(column, ""), None))
        for name in board.searched:
            if not (board.grouped and name == "imbalance_factor"):  # the IF column shows it
                row[name] = _param_cell(trial.get(f"param.{name}"))
        row["epochs"] = _number_cell(trial["epochs"])
        row["wall s"] = _number_cell(trial["wall_s"])
        rows.append(row)
    return pd.DataFrame(rows)


def group_lines(board: Leaderboard) -> list[str]:
    """One line per imbalance-factor group: shot-group sizes and thresholds."""
    lines = []
    for factor, members in board.trials.groupby("imbalance_factor", dropna=False, sort=True):
        sizes = members[["many_classes", "medium_classes", "few_classes"]].dropna()
        many_above, few_below = members["many_above"].dropna(), members["few_below"].dropna()
        where = f"imbalance factor {_param_cell(factor)}: " if board.grouped or not _missing(factor) else ""
        if sizes.empty:
            lines.append(f"{where}shot groups unknown (no trial completed)")
            continue
        many, medium, few = (int(v) for v in sizes.iloc[0])
        rule = ""
        if not many_above.empty and not few_below.empty:
            rule = f" (many: > {many_above.iloc[0]:g} training images, few: < {few_below.iloc[0]:g})"
        lines.append(f"{where}shot groups {many} / {medium} / {few} classes (many / medium / few){rule}")
    return lines


def title_line(board: Leaderboard) -> str:
    return (
        f"study {board.study}: {len(board.trials)} trials, ranked by {board.metric} ({board.mode}) "
        f"within each group; accuracies in %, test metrics of the epoch selected on validation"
    )


def _text_table(frame: pd.DataFrame) -> str:
    columns = list(frame.columns)
    widths = {c: max(len(c), *(len(v) for v in frame[c])) if len(frame) else len(c) for c in columns}

    def line(cells: dict) -> str:
        return "  ".join(
            cells[c].ljust(widths[c]) if c in _LEFT_ALIGNED else cells[c].rjust(widths[c]) for c in columns
        ).rstrip()

    out = [line({c: c for c in columns}), "  ".join("-" * widths[c] for c in columns)]
    out += [line(row) for row in frame.to_dict("records")]
    return "\n".join(out)


def format_text(board: Leaderboard) -> str:
    return "\n".join([title_line(board), *group_lines(board), "", _text_table(display_frame(board))])


def _markdown_table(frame: pd.DataFrame) -> str:
    columns = list(frame.columns)
    escape = lambda text: str(text).replace("|", "\\|")  # noqa: E731
    out = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" if c in _LEFT_ALIGNED else "---:" for c in columns) + "|",
    ]
    out += ["| " + " | ".join(escape(row[c]) for c in columns) + " |" for row in frame.to_dict("records")]
    return "\n".join(out)


def format_markdown(board: Leaderboard) -> str:
    lines = [f"## {title_line(board)}", "", *(f"- {line}" for line in group_lines(board))]
    return "\n".join([*lines, "", _markdown_table(display_frame(board))]) + "\n"


def csv_frame(board: Leaderboard) -> pd.DataFrame:
    """Raw values (fractions, seconds): for spreadsheets and scripts."""
    columns = [
        "rank",
        "imbalance_factor",
        "trial",
        "kind",
        "state",
        "reason",
        "objective",
        *ACCURACY_COLUMNS,
        "many_classes",
        "medium_classes",
        "few_classes",
        "epochs",
        "wall_s",
    ]
    frame = board.trials[columns].copy()
    for name in board.searched:
        frame[f"param.{name}" if name in frame else name] = board.trials.get(f"param.{name}")
    return frame


def format_csv(board: Leaderboard) -> str:
    return csv_frame(board).to_csv(index=False)


# -- several studies side by side -------------------------------------------------------------------


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
            row[_HEADINGS[column]] = "" if best is None else percent_cell(best[column], best.get(_GROUP_OF.get(column)))
        rows.append(row)
    reference = bests[0]
    for board, best in zip(boards[1:], bests[1:]):
        row = {"study": f"{board.study} - {boards[0].study}", "best trial": "difference", "val objective": ""}
        for column in ACCURACY_COLUMNS:
            row[_HEADINGS[column]] = _difference(
                None if reference is None else reference[column], None if best is None else best[column]
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _difference(reference, value) -> str:
    if _missing(reference) or _missing(value):
        return "n/a"
    return f"{100 * (value - reference):+.1f}"


def format_comparison(boards: list[Leaderboard], fmt: str) -> str:
    frame = comparison_frame(boards)
    title = "best trial of each study (test metrics of the epoch selected on validation, %)"
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "markdown":
        return f"## {title}\n\n{_markdown_table(frame)}\n"
    return f"{title}\n\n{_text_table(frame)}"
