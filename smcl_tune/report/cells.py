"""How one value is written in a leaderboard cell: accuracies in % with one decimal, an empty shot
group as "n/a", a metric the trial never reported (pruned, failed, interrupted) as an empty cell."""

from __future__ import annotations

import math

MISSING = "–"  # a spread or an interval one seed cannot give (the metric is missing in the others)


def is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def percent_cell(value, group_size=None) -> str:
    if not is_missing(group_size) and group_size == 0:
        return "n/a"
    return "" if is_missing(value) else f"{100 * value:.1f}"


def number_cell(value, digits: int = 0) -> str:
    return "" if is_missing(value) else f"{value:.{digits}f}"


def param_cell(value) -> str:
    if is_missing(value):
        return ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{number:.4g}"


def points(value, signed: bool = False) -> str:
    return MISSING if is_missing(value) else f"{100 * value:{'+' if signed else ''}.1f}"


def interval_cell(row, metric: str) -> str:
    """`mean ± std [low, high]` of a configuration's `metric` over its seeds, %."""
    mean, spread = row[f"{metric}_mean"], row[f"{metric}_std"]
    if is_missing(mean):
        return "n/a"
    low, high = row[f"{metric}_ci_low"], row[f"{metric}_ci_high"]
    return f"{points(mean)} ± {points(spread)} [{points(low)}, {points(high)}]"


def difference_cell(row, metric: str) -> str:
    """`mean [low, high]` of a paired difference to the baseline, points; `*` when the interval excludes 0."""
    mean = row[f"{metric}_diff"]
    if is_missing(mean):
        return "n/a"
    low, high = row[f"{metric}_diff_low"], row[f"{metric}_diff_high"]
    mark = "*" if row[f"{metric}_excludes_0"] else ""
    return f"{points(mean, True)} [{points(low, True)}, {points(high, True)}]{mark}"
