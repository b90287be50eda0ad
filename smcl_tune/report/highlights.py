"""Baselines and confirmed configurations as the plots show them: one labelled point per
configuration (the mean over its seeds, with a 95% interval where it has two or more) and a
marker of its kind, so that they stand out from the search trials."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from smcl_tune.report.statistics import MIN_SEEDS_FOR_INTERVAL, seed_list, t_interval
from smcl_tune.results import TrialState

HIGHLIGHTED_KINDS = ("baseline", "confirm")
KIND_WORDS = {"baseline": "baseline", "confirm": "confirmed"}
MARKERS = {"baseline": "star", "confirm": "hexagram"}  # search trials are circles, the Pareto front diamonds
MARKER_SIZE = 16


@dataclass
class Highlight:
    """A baseline or a confirmed configuration in one condition, with its completed runs."""

    kind: str  # "baseline" or "confirm"
    configuration: str
    condition: str
    runs: pd.DataFrame  # its completed runs (one per seed)

    @property
    def label(self) -> str:
        where = f" [{self.condition}]" if self.condition else ""
        return f"{KIND_WORDS[self.kind]} {self.configuration}{where}"

    @property
    def legend(self) -> str:
        """The label with what the point is: one run, or the mean of several seeds."""
        seeds = self.runs["seed"].dropna()
        if len(self.runs) < 2:
            return self.label
        bar = " (95% interval)" if len(self.runs) >= MIN_SEEDS_FOR_INTERVAL else " (too few seeds for an interval)"
        if len(seeds) < len(self.runs):
            return f"{self.label}: mean of {len(self.runs)} runs{bar}"
        return f"{self.label}: mean of seeds {seed_list(seeds)}{bar}"

    def value(self, column: str) -> tuple[float, float, float]:
        """mean, 95% interval low and high of `column` over the runs (the interval NaN for one run)."""
        values = pd.to_numeric(self.runs[column], errors="coerce").astype(float).tolist()
        mean, _, low, high = t_interval(values)
        return mean, low, high


def highlights(trials: pd.DataFrame) -> list[Highlight]:
    """The baselines and confirmed configurations among `trials`, with their completed runs; a run
    without a configuration tag stands for itself (named after its trial)."""
    runs = trials[(trials["state"] == TrialState.COMPLETED) & trials["kind"].isin(HIGHLIGHTED_KINDS)]
    if runs.empty:
        return []
    names = runs["configuration"].astype(str).where(runs["configuration"].astype(str) != "", runs["trial"])
    found = []
    for (condition, kind, configuration), members in runs.groupby(["condition", "kind", names], sort=True):
        found.append(Highlight(kind, configuration, condition, members))
    return found


def error_bar(mean: float, low: float, high: float, scale: float = 100.0) -> dict | None:
    """A plotly error bar for the interval [low, high] around mean (None without an interval), cut
    at an accuracy's range [0, 1] as the tables cut it."""
    if math.isnan(low) or math.isnan(high):
        return None
    low, high = max(low, 0.0), min(high, 1.0)
    return {
        "type": "data",
        "symmetric": False,
        "array": [scale * (high - mean)],
        "arrayminus": [scale * (mean - low)],
    }


def per_class_summary(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Per class over the runs' per-class tables (class_id, class_name, train_count, test_accuracy):
    the mean test accuracy and its 95% interval (`test_accuracy`, `ci_low`, `ci_high`; NaN for one run)."""
    rows = []
    joined = pd.concat(tables, ignore_index=True)
    for (class_id, name, count), members in joined.groupby(["class_id", "class_name", "train_count"], sort=True):
        mean, _, low, high = t_interval(pd.to_numeric(members["test_accuracy"], errors="coerce").tolist())
        rows.append(
            {"class_id": class_id, "class_name": name, "train_count": count, "test_accuracy": mean}
            | {"ci_low": low, "ci_high": high}
        )
    return pd.DataFrame(rows)
