"""Leaderboard tables as text, CSV, Markdown and LaTeX, and the side-by-side comparison of studies.

Cells: accuracies in % with one decimal; an empty shot group is "n/a"; a metric the trial never
reported (pruned, failed, interrupted) is an empty cell. The CSV keeps the raw fractions.
Three tables: the trials, ranked within their condition; the configurations run with two or
more seeds (mean ± std and the Student-t 95% interval); and each configuration's paired
difference to the baseline over the seeds both ran (* when the interval excludes 0).
"""

from __future__ import annotations

import math

import pandas as pd

from smcl_tune.report.leaderboard import ACCURACY_COLUMNS, BACKGROUND_COLUMNS, Leaderboard
from smcl_tune.report.reference import CAVEAT, published_for
from smcl_tune.report.table_width import column_widths, fit_to_width
from smcl_tune.results import uniform_head_share

_HEADINGS = {
    "test_top1": "top-1",
    "test_balanced_accuracy": "balanced",
    "test_many": "many",
    "test_medium": "medium",
    "test_few": "few",
}
_LEFT_ALIGNED = {
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
_GROUP_OF = {"test_many": "many_classes", "test_medium": "medium_classes", "test_few": "few_classes"}
_KIND_MARK = {"baseline": " [baseline]", "confirm": " [confirm]", "search": ""}
BACKGROUND_HEADING = "bg→many"
BACKGROUND_NOTE = (
    f"{BACKGROUND_HEADING}: the share of the test images with their salient box erased (on the synthetic source, "
    "their object) that the model puts in a many-shot class, %; SMCL claims to lower it"
)
FULL_TABLE_HINT = "`smcl-tune leaderboard STUDY --format csv`, or a pipe or a file, keeps every column"
SELECTION_NOTE = (
    "test metrics of the epoch selected on validation ('last': of the last epoch); this tool never selects on test"
)


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
            row["condition"] = trial["condition"]
        row["trial"] = trial["trial"] + _KIND_MARK.get(trial["kind"], "")
        failed = trial["state"] == "failed" and trial["reason"]
        row["state"] = trial["state"] + (f": {trial['reason']}" if failed else "")
        row["val objective"] = percent_cell(trial["objective"])
        for column in ACCURACY_COLUMNS:
            row[_HEADINGS[column]] = percent_cell(trial[column], trial.get(_GROUP_OF.get(column, ""), None))
        row["last top-1"] = percent_cell(trial["last_test_top1"])
        row["last few"] = percent_cell(trial["last_test_few"], trial.get("few_classes"))
        row[BACKGROUND_HEADING] = percent_cell(trial["test_background_head_share"], trial.get("many_classes"))
        for name in board.searched:
            row[name] = _param_cell(trial.get(f"param.{name}"))
        row["epochs"] = _number_cell(trial["epochs"])
        row["wall s"] = _number_cell(trial["wall_s"])
        rows.append(row)
    return pd.DataFrame(rows)


MISSING = "–"  # a spread or an interval one seed cannot give (the metric is missing in the others)


def _points(value, signed: bool = False) -> str:
    return MISSING if _missing(value) else f"{100 * value:{'+' if signed else ''}.1f}"


def _interval_cell(row, metric: str) -> str:
    mean, spread = row[f"{metric}_mean"], row[f"{metric}_std"]
    if _missing(mean):
        return "n/a"
    low, high = row[f"{metric}_ci_low"], row[f"{metric}_ci_high"]
    return f"{_points(mean)} ± {_points(spread)} [{_points(low)}, {_points(high)}]"


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
            row[_HEADINGS[metric]] = _interval_cell(summary, metric)
        rows.append(row)
    return pd.DataFrame(rows)


def _difference_cell(row, metric: str) -> str:
    mean = row[f"{metric}_diff"]
    if _missing(mean):
        return "n/a"
    low, high = row[f"{metric}_diff_low"], row[f"{metric}_diff_high"]
    mark = "*" if row[f"{metric}_excludes_0"] else ""
    return f"{_points(mean, True)} [{_points(low, True)}, {_points(high, True)}]{mark}"


def differences_frame(board: Leaderboard) -> pd.DataFrame:
    """Each configuration minus the baseline, paired over the seeds both ran, in points."""
    rows = []
    for _, difference in board.differences().iterrows():
        row = _configuration_cells(board, difference)
        row["vs"] = difference["baseline"]
        row["seeds"] = difference["paired_seeds"]
        for metric in ACCURACY_COLUMNS:
            row[_HEADINGS[metric]] = _difference_cell(difference, metric)
        rows.append(row)
    return pd.DataFrame(rows)


def group_lines(board: Leaderboard) -> list[str]:
    """One line per condition: shot-group sizes and thresholds."""
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
        uniform = f"; {BACKGROUND_HEADING} of uniform guessing {100 * share:.1f}%"
        lines.append(f"{where}shot groups {many} / {medium} / {few} classes (many / medium / few){rule}{uniform}")
    if len(lines) and any("uniform guessing" in line for line in lines):
        lines.append(BACKGROUND_NOTE)
    return lines


def title_line(board: Leaderboard) -> str:
    return (
        f"study {board.study}: {len(board.trials)} trials, ranked by {board.metric} ({board.mode}) "
        f"within each condition; accuracies in %, {SELECTION_NOTE}"
    )


SEEDS_TITLE = "configurations over seeds: mean ± std [95% interval, Student t], test %"


def differences_title(board: Leaderboard) -> str:
    return (
        f"paired differences to the baseline '{board.baseline}' over the seeds both ran: mean [95% interval], "
        "points; * the interval excludes 0"
    )


def _text_table(frame: pd.DataFrame) -> str:
    columns = list(frame.columns)
    widths = column_widths(frame)

    def line(cells: dict) -> str:
        return "  ".join(
            cells[c].ljust(widths[c]) if c in _LEFT_ALIGNED else cells[c].rjust(widths[c]) for c in columns
        ).rstrip()

    out = [line({c: c for c in columns}), "  ".join("-" * widths[c] for c in columns)]
    out += [line(row) for row in frame.to_dict("records")]
    return "\n".join(out)


def reference_sections(board: Leaderboard, reference: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Published results for what each condition measures; a one-row note where none matches."""
    class_names = [] if board.best_per_class is None else board.best_per_class["class_name"].astype(str).tolist()
    sections = []
    for described, rows in published_for(board.trials, class_names, reference):
        if rows.empty:
            note = pd.DataFrame([{"published results": "no published figure matches this study"}])
            sections.append((f"published results for {described}", note))
            continue
        shown = pd.DataFrame(
            {
                "method [published]": rows["method"] + " [published]",
                "epochs": [_param_cell(value) for value in rows["epochs"]],
                "top-1": [_param_cell(value) for value in rows["top1"]],
                "many": [_param_cell(value) for value in rows["many"]],
                "medium": [_param_cell(value) for value in rows["medium"]],
                "few": [_param_cell(value) for value in rows["few"]],
                "comparable": rows["comparable"],
                "source": rows["source"],
            }
        )
        sections.append((f"published results for {described} (%; {CAVEAT})", shown))
    return sections


def _sections(board: Leaderboard, reference: pd.DataFrame | None = None) -> list[tuple[str, pd.DataFrame]]:
    """The tables after the trials: seed statistics, paired differences and published results."""
    sections = []
    seeds, differences = seeds_frame(board), differences_frame(board)
    if not seeds.empty:
        sections.append((SEEDS_TITLE, seeds))
    if not differences.empty:
        sections.append((differences_title(board), differences))
    if reference is not None:
        sections += reference_sections(board, reference)
    return sections


def _drop_order(board: Leaderboard) -> list[str]:
    """The trials' table's columns a narrow terminal loses first: timings and last-epoch figures,
    then the searched parameters past the first three, the background share, epochs, the rest."""
    searched = list(board.searched)
    return [
        "wall s",
        "last few",
        "last top-1",
        *reversed(searched[3:]),
        BACKGROUND_HEADING,
        "epochs",
        *reversed(searched[:3]),
        "val objective",
    ]


def format_text(board: Leaderboard, reference: pd.DataFrame | None = None, width: int | None = None) -> str:
    """The leaderboard as text; with `width` (a terminal's), the trials' table leaves out its least
    important columns until it fits, and a line under it names them."""
    trials = display_frame(board)
    left_out = []
    if width is not None:
        trials, dropped = fit_to_width(trials, width, _drop_order(board))
        if dropped:
            left_out = [f"left out to fit {width} columns: {', '.join(dropped)}", f"({FULL_TABLE_HINT})"]
    parts = ["\n".join([title_line(board), *group_lines(board), "", _text_table(trials), *left_out])]
    parts += [f"{title}\n\n{_text_table(frame)}" for title, frame in _sections(board, reference)]
    return "\n\n".join(parts)


def _markdown_table(frame: pd.DataFrame) -> str:
    columns = list(frame.columns)
    escape = lambda text: str(text).replace("|", "\\|")  # noqa: E731
    out = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" if c in _LEFT_ALIGNED else "---:" for c in columns) + "|",
    ]
    out += ["| " + " | ".join(escape(row[c]) for c in columns) + " |" for row in frame.to_dict("records")]
    return "\n".join(out)


def format_markdown(board: Leaderboard, reference: pd.DataFrame | None = None) -> str:
    lines = [f"## {title_line(board)}", "", *(f"- {line}" for line in group_lines(board))]
    parts = ["\n".join([*lines, "", _markdown_table(display_frame(board))])]
    parts += [f"### {title}\n\n{_markdown_table(frame)}" for title, frame in _sections(board, reference)]
    return "\n\n".join(parts) + "\n"


def csv_frame(board: Leaderboard) -> pd.DataFrame:
    """Raw values (fractions, seconds), one row per trial: for spreadsheets and scripts. A trial
    that is a seed of a configuration also carries the configuration's statistics (`config_*`)
    and its paired difference to the baseline (`diff_*`)."""
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
    for name in board.searched:
        frame[f"param.{name}" if name in frame else name] = board.trials.get(f"param.{name}")
    keys = ["condition", "kind", "configuration"]
    summary = board.configurations()
    if not summary.empty:
        statistics = summary.drop(columns=["seeds"]).rename(
            columns={c: f"config_{c}" for c in summary.columns if c not in keys}
        )
        frame = frame.merge(statistics, on=keys, how="left")
    differences = board.differences()
    if not differences.empty:
        paired = differences.drop(columns=["baseline", "paired_seeds"]).rename(
            columns={c: f"diff_{c}" for c in differences.columns if c not in keys}
        )
        frame = frame.merge(paired, on=keys, how="left")
    return frame


def format_csv(board: Leaderboard, reference: pd.DataFrame | None = None) -> str:
    """The trials; with `reference`, the matching published results after them (kind `published`,
    accuracies as fractions like the trials')."""
    frame = csv_frame(board)
    if reference is not None:
        class_names = [] if board.best_per_class is None else board.best_per_class["class_name"].astype(str).tolist()
        for described, rows in published_for(board.trials, class_names, reference):
            condition = described.split(": ")[0] if board.grouped else ""
            published = pd.DataFrame(
                {
                    "condition": condition,
                    "trial": rows["method"],
                    "kind": "published",
                    "epochs": rows["epochs"],
                    "imbalance_factor": rows["imbalance_factor"],
                    "source": rows["source"],
                    "comparable": rows["comparable"],
                    **{
                        f"test_{name}": pd.to_numeric(rows[name], errors="coerce") / 100
                        for name in ("top1", "many", "medium", "few")
                    },
                }
            )
            frame = pd.concat([frame, published], ignore_index=True)
    return frame.to_csv(index=False)


# -- LaTeX (booktabs) -------------------------------------------------------------------------------

_LATEX_METRICS = ("test_top1", "test_many", "test_medium", "test_few")


def _latex_escape(text: str) -> str:
    for character, escaped in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("&", r"\&"), ("%", r"\%"), ("#", r"\#")):
        text = text.replace(character, escaped)
    return text


def format_latex(board: Leaderboard) -> str:
    """A booktabs table of the configurations run with two or more seeds: mean ± std per shot
    group, the best mean of each column (within a condition) in bold."""
    summary = board.configurations()
    header = " & ".join(["Method", *(_HEADINGS[m].capitalize() for m in _LATEX_METRICS)])
    lines = [
        f"% {board.study}: test accuracy (%), mean $\\pm$ std over seeds; epoch selected on validation",
        r"\begin{tabular}{l" + "c" * len(_LATEX_METRICS) + "}",
        r"\toprule",
        header + r" \\",
        r"\midrule",
    ]
    if summary.empty:  # a frame without columns: nothing to group
        lines.append(r"\multicolumn{" + str(len(_LATEX_METRICS) + 1) + r"}{c}{no configuration has two seeds yet} \\")
    conditions = [] if summary.empty else summary.groupby("condition", sort=False)
    for index, (condition, rows) in enumerate(conditions):
        if index:
            lines.append(r"\midrule")
        if condition:
            lines.append(
                r"\multicolumn{" + str(len(_LATEX_METRICS) + 1) + "}{l}{\\emph{" + _latex_escape(condition) + r"}} \\"
            )
        best = {metric: f"{100 * rows[f'{metric}_mean'].max():.1f}" for metric in _LATEX_METRICS}  # as printed
        for _, row in rows.iterrows():
            cells = [_latex_escape(row["configuration"] + ("" if row["kind"] == "baseline" else " (tuned)"))]
            for metric in _LATEX_METRICS:
                mean, spread = row[f"{metric}_mean"], row[f"{metric}_std"]
                if _missing(mean):
                    cells.append("--")
                    continue
                value = f"{100 * mean:.1f}"
                cells.append(
                    (r"\textbf{" + value + "}" if value == best[metric] else value)
                    + f" $\\pm$ {'--' if _missing(spread) else f'{100 * spread:.1f}'}"
                )
            lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


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
