"""Statistics over seeds: mean ± standard deviation, Student-t 95% intervals, and paired
differences to a baseline over the seeds both ran.

A configuration is a baseline (its `seeds`) or a search trial retrained by the confirmation stage
(its `confirm.seeds`). The search run that selected a configuration is not one of its seeds: it
was chosen because it scored well, so counting it would bias the mean upwards.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pandas as pd

from smcl_tune.results import TrialState

METRICS = ("test_top1", "test_balanced_accuracy", "test_many", "test_medium", "test_few")
CONFIDENCE = 0.95
# Two seeds give a Student-t interval of 12.7 standard errors (t at 1 degree of freedom), wider than
# the metric's range; two that happen to agree give one of zero width. Neither is evidence.
MIN_SEEDS_FOR_INTERVAL = 3


def t_interval(values: list[float]) -> tuple[float, float, float, float]:
    """mean, sample standard deviation and the Student-t 95% interval of the mean; NaN where
    undefined (fewer than two finite values for the spread; fewer than MIN_SEEDS_FOR_INTERVAL, or a
    zero spread, for the interval)."""
    finite = [value for value in values if not math.isnan(value)]
    if not finite:
        return math.nan, math.nan, math.nan, math.nan
    mean = sum(finite) / len(finite)
    if len(finite) < 2:
        return mean, math.nan, math.nan, math.nan
    spread = math.sqrt(sum((value - mean) ** 2 for value in finite) / (len(finite) - 1))
    if len(finite) < MIN_SEEDS_FOR_INTERVAL or spread == 0:
        return mean, spread, math.nan, math.nan
    from scipy import stats  # half a second to import: only a board with seeds needs it

    half = stats.t.ppf(0.5 + CONFIDENCE / 2, len(finite) - 1) * spread / math.sqrt(len(finite))
    return mean, spread, mean - half, mean + half


def seed_runs(trials: pd.DataFrame) -> pd.DataFrame:
    """The completed runs that are seeds of a configuration (baselines and confirmation runs)."""
    chosen = trials[(trials["state"] == TrialState.COMPLETED) & trials["kind"].isin(["baseline", "confirm"])]
    return chosen[chosen["configuration"].astype(str) != ""]


def seed_list(seeds) -> str:
    """The seeds a row summarises, as written in the tables: `0,1,2`."""
    return ",".join(str(int(seed)) for seed in sorted(seeds))


def configuration_summary(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per (condition, kind, configuration) with two or more seeds: `seeds`, and for each
    metric its mean, std, ci_low and ci_high (fractions)."""
    rows = []
    runs = seed_runs(trials)
    for (condition, kind, configuration), members in runs.groupby(["condition", "kind", "configuration"], sort=True):
        if len(members) < 2:
            continue
        row = {
            "condition": condition,
            "kind": kind,
            "configuration": configuration,
            "seeds": seed_list(members["seed"]),
        }
        for metric in METRICS:
            mean, spread, low, high = t_interval(members[metric].astype(float).tolist())
            row.update(
                {f"{metric}_mean": mean, f"{metric}_std": spread, f"{metric}_ci_low": low, f"{metric}_ci_high": high}
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _against_baseline(
    trials: pd.DataFrame, baseline: str
) -> Iterator[tuple[str, str, str, pd.DataFrame, pd.DataFrame]]:
    """(condition, kind, configuration, its seeded runs, the baseline's in that condition) for every
    configuration but the baseline itself."""
    for condition, in_condition in seed_runs(trials).groupby("condition", sort=True):
        reference = in_condition[(in_condition["kind"] == "baseline") & (in_condition["configuration"] == baseline)]
        for (kind, configuration), members in in_condition.groupby(["kind", "configuration"], sort=True):
            if not (kind == "baseline" and configuration == baseline):
                yield condition, kind, configuration, members, reference


def paired_differences(trials: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Each configuration minus `baseline` in its condition, paired by seed over the seeds both
    ran: per metric the mean difference, its 95% interval, and whether the interval excludes 0."""
    rows = []
    for condition, kind, configuration, members, reference in _against_baseline(trials, baseline):
        by_seed = reference.set_index("seed")
        paired = members[members["seed"].isin(by_seed.index)]
        if len(paired) < 2:
            continue
        row = {
            "condition": condition,
            "kind": kind,
            "configuration": configuration,
            "baseline": baseline,
            "paired_seeds": seed_list(paired["seed"]),
        }
        for metric in METRICS:
            differences = [value - by_seed.loc[seed, metric] for seed, value in zip(paired["seed"], paired[metric])]
            mean, _, low, high = t_interval([float(d) for d in differences])
            row.update(
                {
                    f"{metric}_diff": mean,
                    f"{metric}_diff_low": low,
                    f"{metric}_diff_high": high,
                    # None (an empty CSV cell) where there is no interval: too few seeds, or no difference
                    f"{metric}_excludes_0": bool(low > 0 or high < 0) if not math.isnan(low) else None,
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


def unpaired_configurations(trials: pd.DataFrame, baseline: str) -> list[str]:
    """The configurations run over seeds that share fewer than two seeds with `baseline` in their
    condition, so that paired_differences leaves them out: `trial-002 [confirm] (imbalance_factor=10):
    1 seed in common with ce (seeds 1,2 against 0,1)`."""
    found = []
    for condition, kind, configuration, members, reference in _against_baseline(trials, baseline):
        common = members["seed"].isin(reference["seed"]).sum()
        if len(members) >= 2 and common < 2:
            where = f" ({condition})" if condition else ""
            found.append(
                f"{configuration} [{kind}]{where}: {common} seed{'' if common == 1 else 's'} in common with "
                f"{baseline} (seeds {seed_list(members['seed'])} against {seed_list(reference['seed']) or 'none'})"
            )
    return found
