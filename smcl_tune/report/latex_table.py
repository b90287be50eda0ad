r"""The configurations run over seeds as a LaTeX booktabs table, for a paper.

Written by hand, not through pandas' Styler.to_latex: Styler has no row groups (the condition's
`\multicolumn` row and the `\midrule` between conditions), bolds a whole cell where this bolds the
mean only, and writes no row for an empty table; a Styler version without those was already 15
lines against these 42, and putting them back leaves Styler only the rules and the escaping.
"""

from __future__ import annotations

from smcl_tune.report.captions import epoch_rule
from smcl_tune.report.cells import as_percent, is_missing
from smcl_tune.report.display_frames import HEADINGS
from smcl_tune.report.leaderboard import Leaderboard

_LATEX_METRICS = ("test_top1", "test_many", "test_medium", "test_few")


def _latex_escape(text: str) -> str:
    for character, escaped in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("&", r"\&"), ("%", r"\%"), ("#", r"\#")):
        text = text.replace(character, escaped)
    return text


def format_latex(board: Leaderboard) -> str:
    """A booktabs table of the configurations run with two or more seeds: mean ± std per shot
    group, the best mean of each column (within a condition) in bold."""
    summary = board.configurations()
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
    for index, (condition, rows) in enumerate(conditions):
        if index:
            lines.append(r"\midrule")
        if condition:
            lines.append(
                r"\multicolumn{" + str(len(_LATEX_METRICS) + 1) + "}{l}{\\emph{" + _latex_escape(condition) + r"}} \\"
            )
        best = {metric: f"{as_percent(rows[f'{metric}_mean'].max()):.1f}" for metric in _LATEX_METRICS}  # as printed
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
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"
