"""How one value is written in a leaderboard cell: accuracies in % with one decimal, an empty shot
group as "n/a", a metric the trial never reported (pruned, failed, interrupted) as an empty cell."""

from __future__ import annotations

import math

import pandas as pd

MISSING = "–"  # a spread or an interval one seed cannot give (the metric is missing in the others)


def as_percent(fraction: float) -> float:
    """A fraction in %, rid of float noise first: 0.1175 is 11.749999999999998 in %, which `.1f` would
    write 11.7 beside an equal accuracy computed another way and written 11.8."""
    return round(100 * fraction, 9)


def is_missing(value) -> bool:
    """None, NaN, or pandas' NA (a whole-number column's missing value, e.g. an unranked trial's rank)."""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def empty_group(group_size) -> bool:
    """A shot group with no class: its accuracy is a missing value, never 0."""
    return not is_missing(group_size) and group_size == 0


def percent_cell(value, group_size=None) -> str:
    if empty_group(group_size):
        return "n/a"
    return "" if is_missing(value) else f"{as_percent(value):.1f}"


def named_trial(trial) -> str:
    """A trial row's name with its condition: a study with conditions has a trial-000 in each."""
    return f"{trial['trial']} [{trial['condition']}]" if trial["condition"] else str(trial["trial"])


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
    return MISSING if is_missing(value) else f"{as_percent(value):{'+' if signed else ''}.1f}"


CUT = "‡"  # an interval bound past the metric's range, shown at the range's end


def _bounds(low: float, high: float, lowest: float, highest: float, signed: bool = False) -> str:
    """`[low, high]` within [lowest, highest], marked with CUT where a bound was past it."""
    cut = low < lowest or high > highest
    shown = f"[{points(max(low, lowest), signed)}, {points(min(high, highest), signed)}]"
    return shown + (CUT if cut else "")


def interval_cell(row, metric: str) -> str:
    """`mean ± std [low, high]` of a configuration's `metric` over its seeds, %; without the
    interval where it is undefined (statistics.t_interval)."""
    mean, spread = row[f"{metric}_mean"], row[f"{metric}_std"]
    if is_missing(mean):
        return "n/a"
    low, high = row[f"{metric}_ci_low"], row[f"{metric}_ci_high"]
    if is_missing(low):
        return f"{points(mean)} ± {points(spread)}"
    return f"{points(mean)} ± {points(spread)} {_bounds(low, high, 0.0, 1.0)}"


def difference_cell(row, metric: str) -> str:
    """`mean [low, high]` of a paired difference to the baseline, points; `*` when the interval
    excludes 0; the mean alone where the interval is undefined."""
    mean = row[f"{metric}_diff"]
    if is_missing(mean):
        return "n/a"
    low, high = row[f"{metric}_diff_low"], row[f"{metric}_diff_high"]
    if is_missing(low):
        return points(mean, True)
    mark = "*" if row[f"{metric}_excludes_0"] else ""
    return f"{points(mean, True)} {_bounds(low, high, -1.0, 1.0, True)}{mark}"
