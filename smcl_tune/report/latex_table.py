r"""The configurations run over seeds as a LaTeX booktabs table, for a paper.

Written by hand, not through pandas' Styler.to_latex: Styler has no row groups (the condition's
`\multicolumn` row and the `\midrule` between conditions), bolds a whole cell where this bolds the
mean only, and writes no row for an empty table; a Styler version without those was already 15
lines against these 42, and putting them back leaves Styler only the rules and the escaping.
"""

from __future__ import annotations

import re

import pandas as pd

from smcl_tune.report.captions import epoch_rule
from smcl_tune.report.cells import as_percent, is_missing, param_cell
from smcl_tune.report.display_frames import HEADINGS
from smcl_tune.report.leaderboard import Leaderboard
from smcl_tune.report.reference import CAVEAT, published_for

_LATEX_METRICS = ("test_top1", "test_many", "test_medium", "test_few")


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _latex_escape(text: str) -> str:
    """Text set as text: LaTeX's special characters escaped in one pass (an escape's own braces stay)."""
    return re.sub(r"[\\&%#_${}~^]", lambda match: _LATEX_SPECIAL.get(match[0], "\\" + match[0]), text)


def format_latex(board: Leaderboard, reference: pd.DataFrame | None = None) -> str:
    """A booktabs table of the configurations run with two or more seeds: mean ± std per shot
    group, the best mean of each column (within a condition) in bold where another row is below
    it. With `reference`, each condition's comparable published results follow its rows, as
    published (a comment names the others and why they are left out)."""
    summary = board.configurations()
    published = _published_by_condition(board, reference) if reference is not None else {}
    header = " & ".join(["Method", *(HEADINGS[m].capitalize() for m in _LATEX_METRICS)])
    lines = [
        f"% {board.study}: test accuracy (%), mean $\\pm$ std over seeds; {epoch_rule(board)}",
        r"\begin{tabular}{l" + "c" * len(_LATEX_METRICS) + "}",
        r"\toprule",
        header + r" \\",
        r"\midrule",
    ]
    if summary.empty:  # a frame without columns: nothing to group
        lines.append(r"\multicolumn{" + str(len(_LATEX_METRICS) + 1) + r"}{c}{no configuration has two seeds yet} \\")
    conditions = [] if summary.empty else summary.groupby("condition", sort=False)
    published_shown = 0
    for index, (condition, rows) in enumerate(conditions):
        if index:
            lines.append(r"\midrule")
        if condition:
            lines.append(
                r"\multicolumn{" + str(len(_LATEX_METRICS) + 1) + "}{l}{\\emph{" + _latex_escape(condition) + r"}} \\"
            )
        best = {metric: _best_printed(rows[f"{metric}_mean"]) for metric in _LATEX_METRICS}
        for _, row in rows.iterrows():
            cells = [_latex_escape(row["configuration"] + ("" if row["kind"] == "baseline" else " (tuned)"))]
            for metric in _LATEX_METRICS:
                mean, spread = row[f"{metric}_mean"], row[f"{metric}_std"]
                if is_missing(mean):
                    cells.append("--")
                    continue
                value = f"{as_percent(mean):.1f}"
                cells.append(
                    (r"\textbf{" + value + "}" if value == best[metric] else value)
                    + f" $\\pm$ {'--' if is_missing(spread) else f'{as_percent(spread):.1f}'}"
                )
            lines.append(" & ".join(cells) + r" \\")
        published_lines = _published_lines(published.get(condition))
        published_shown += sum(not line.startswith("%") for line in published_lines)
        lines += published_lines
    if published_shown:
        lines.insert(1, f"% (published): {CAVEAT}")
    elif reference is not None and all(rows.empty for rows in published.values()):
        lines.insert(1, "% --reference: no published figure matches this study's benchmark")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def _best_printed(means: pd.Series) -> str | None:
    """The best mean as printed, where it beats another row's: a column of one row, or of rows that
    all print the same (a column of 0.0), has nothing to set in bold."""
    printed = {f"{as_percent(mean):.1f}" for mean in means if not is_missing(mean)}
    if len(printed) < 2:
        return None
    return f"{as_percent(means.max()):.1f}"


def _published_by_condition(board: Leaderboard, reference: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {condition: rows for condition, _, rows in published_for(board.trials, board.class_names, reference)}


def _published_lines(rows: pd.DataFrame | None) -> list[str]:
    """The comparable rows as published (no spread: papers give one figure), each with its source
    as a comment; the others in one comment each."""
    if rows is None or rows.empty:
        return []
    lines = []
    for _, row in rows.iterrows():
        if row["comparable"] != "yes":
            lines.append(_comment(f"left out: {row['method']} [published], {row['comparable']}"))
            continue
        cells = [_latex_escape(f"{row['method']} (published)")]
        cells += [param_cell(row[name]) or "--" for name in ("top1", "many", "medium", "few")]
        lines.append(" & ".join(cells) + r" \\ " + _comment(row["source"]))
    return lines


def _comment(text: object) -> str:
    """A LaTeX comment of one line, whatever line breaks the text holds."""
    return "% " + " ".join(str(text).split())
