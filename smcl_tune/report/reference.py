"""Published results beside a study: a small table shipped with the package (`published.csv`),
which a user can extend with a file of the same columns.

Published figures are usually the best epoch on the test set; this tool never selects on test
(the epoch selected on validation, or the last epoch), so its numbers are, if anything, lower.
"""

from __future__ import annotations

import csv
import difflib
import io
import math
from importlib import resources
from pathlib import Path

import pandas as pd

from smcl_tune.errors import ConfigError
from smcl_tune.report.published_subsets import SUBSET_COLUMNS, blank, check_subset_columns, subset_reason

COLUMNS = ("benchmark", "imbalance_factor", "backbone", "method", "epochs", "top1", "many", "medium", "few", "source")
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
BACKBONES = {
    "resnet32": "ResNet-32",
    "resnet18": "ResNet-18",
    "resnet50": "ResNet-50",
    "small_cnn": "small CNN",
    "tiny_cnn": "tiny CNN",
}


def backbone_of(architecture: str) -> str:
    """An architecture as the published table names its backbone (`resnet32` is ResNet-32)."""
    return BACKBONES.get(architecture, architecture)


CAVEAT = (
    "published figures are usually the best epoch on the test set (ProCo's own logs, CIFAR-100-LT IF 100: last epoch "
    "52.76, best 52.84); this study's are never selected on test"
)


BENCHMARKS = ("CIFAR-10-LT", "CIFAR-100-LT", "ImageNet-LT")  # what benchmark_of can find a study's data to be


def benchmark_of(source: str, class_names: list[str]) -> str | None:
    """The published benchmark a study's data is, or None (the synthetic data, an unknown folder)."""
    if source == "cifar10" or (source == "image_folder" and sorted(class_names) == CIFAR10_CLASSES):
        return "CIFAR-10-LT"
    if source == "cifar100":
        return "CIFAR-100-LT"
    if source == "file_list" and len(class_names) == 1000:
        return "ImageNet-LT"
    return None


def load_reference(own: pd.DataFrame | None = None) -> pd.DataFrame:
    """The shipped table, with a user's rows (`load_own_reference`) after it."""
    shipped = pd.read_csv(io.StringIO(resources.files("smcl_tune.report").joinpath("published.csv").read_text()))
    return shipped if own is None else pd.concat([shipped, own], ignore_index=True)


def load_own_reference(extra: Path) -> pd.DataFrame:
    """A user's published results: the shipped table's columns, each row checked; a backbone may be
    named as the study file names it (`resnet32` is ResNet-32)."""
    try:
        text = extra.read_text()
        _check_fields(extra, text)
        own = pd.read_csv(io.StringIO(text))
    except pd.errors.EmptyDataError:
        raise ConfigError(f"{extra}: empty; published results need a header line: {', '.join(COLUMNS)}") from None
    except (OSError, pd.errors.ParserError, UnicodeDecodeError, csv.Error) as error:
        raise ConfigError(f"{extra}: not a readable CSV of published results ({error})") from None
    if own.empty:
        raise ConfigError(f"{extra}: a header and no rows; add a row of published results under it")
    missing = [column for column in COLUMNS if column not in own.columns]
    if missing:
        raise ConfigError(
            f"{extra}: published results need the columns {', '.join(COLUMNS)}; missing: {', '.join(missing)}"
        )
    _check_numbers(extra, own)
    unnamed = own.index[own["method"].isna() | (own["method"].astype(str).str.strip() == "")]
    if len(unnamed):
        raise ConfigError(f"{extra}: line {unnamed[0] + 2}, method: blank; each published row names its method")
    unknown = own.index[~own["benchmark"].isin(BENCHMARKS)]
    if len(unknown):  # a row no study can match would never be shown
        name = own["benchmark"][unknown[0]]
        lower = {benchmark.lower(): benchmark for benchmark in BENCHMARKS}
        close = [] if pd.isna(name) else difflib.get_close_matches(str(name).lower(), lower, n=1, cutoff=0.6)
        hint = f"; did you mean {lower[close[0]]}?" if close else ""
        raise ConfigError(
            f"{extra}: line {unknown[0] + 2}, benchmark: {'blank' if pd.isna(name) else repr(name)} is not one a study "
            f"can be matched to ({', '.join(BENCHMARKS)}){hint}"
        )
    check_subset_columns(extra, own)
    own = own[[column for column in (*COLUMNS, *SUBSET_COLUMNS) if column in own.columns]].fillna({"source": ""})
    return own.assign(backbone=[backbone_of(name) for name in own["backbone"]])


def rows_of_other_benchmarks(own: pd.DataFrame, trials: pd.DataFrame, class_names: list[str]) -> str | None:
    """Which of a user's published rows no condition of the study is shown beside (another
    benchmark's), in words; None when every row is of the study's benchmark."""
    studied = {benchmark_of(source, class_names) for source in trials["source"].dropna().unique()} - {None}
    others = own[~own["benchmark"].isin(studied)]
    if others.empty:
        return None
    counts = ", ".join(f"{count} of {name}" for name, count in others["benchmark"].value_counts(sort=False).items())
    study = ", ".join(sorted(studied)) if studied else "no published benchmark"
    which = "its row is" if len(own) == 1 else f"{len(others)} of its {len(own)} rows are"
    return f"{which} not shown ({counts}); this study's data is {study}"


PERCENTS = ("top1", "many", "medium", "few")
NUMBERS = {"imbalance_factor": (1, math.inf), "epochs": (1, math.inf), **dict.fromkeys(PERCENTS, (0, 100))}


def _check_fields(extra: Path, text: str) -> None:
    """Each column named once, and no row longer than the header: pandas would take a name twice as
    `top1.1`, and a row one field too long (every row, or the first) as an index, each column then
    read as the one before it."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return
    header = [name.strip() for name in rows[0]]
    twice = sorted({name for name in header if name and header.count(name) > 1})  # a spreadsheet's blank ones
    if twice:
        raise ConfigError(f"{extra}: line 1 names the column {twice[0]} twice; name each column once")
    for line, row in enumerate(rows[1:], start=2):
        if len(row) > len(header):
            raise ConfigError(
                f"{extra}: line {line} has {len(row)} fields, the header names {len(header)} columns; "
                "quote a field that holds a comma"
            )


def _check_numbers(extra: Path, own: pd.DataFrame) -> None:
    """Each figure a number in its range, or blank (not published; a blank factor: the data as
    published); accuracies in percent, as papers give them."""
    for column, (low, high) in NUMBERS.items():
        for row, value in enumerate(own[column], start=2):  # the file's line: its header is line 1
            if pd.isna(value):
                continue
            number = pd.to_numeric(value, errors="coerce")
            if pd.isna(number) or not low <= number <= high:
                unit = " (percent)" if column in PERCENTS else ""
                shown = repr(value) if pd.isna(number) else f"{number:g}"
                raise ConfigError(
                    f"{extra}: line {row}, {column}: {shown} is not a number from {low:g} to {high:g}{unit}, nor blank"
                )
            if column == "epochs" and not float(number).is_integer():
                raise ConfigError(f"{extra}: line {row}, epochs: {number:g} is not a whole number of epochs")


def _same_factor(published, factor: float) -> bool:
    """An imbalance factor matches, or both are the data as published (no factor)."""
    published = pd.to_numeric(published, errors="coerce")
    if math.isnan(factor):
        return bool(math.isnan(published))
    return not math.isnan(published) and published == factor


def matching(reference: pd.DataFrame, benchmark: str | None, factor: float, backbone: str) -> pd.DataFrame:
    if benchmark is None:
        return reference.iloc[0:0]
    chosen = reference[(reference["benchmark"] == benchmark) & (reference["backbone"] == backbone)]
    return chosen[[_same_factor(value, factor) for value in chosen["imbalance_factor"]]]


def _single(values) -> str | float | None:
    """The one value a condition's trials share, or None (several, or none recorded)."""
    known = {value for value in values if not blank(value)}
    return known.pop() if len(known) == 1 else None


def comparability(row: pd.Series, study: dict) -> str:
    """'yes', or 'not comparable: ...' naming what differs between a published row and a condition
    of the study (imbalance factor, backbone, training subset, epochs)."""
    reasons = []
    if not _same_factor(row["imbalance_factor"], study["factor"]):
        published = pd.to_numeric(row["imbalance_factor"], errors="coerce")
        ours = "as published" if math.isnan(study["factor"]) else f"{study['factor']:g}"
        reasons.append(
            f"imbalance factor {'as published' if math.isnan(published) else f'{published:g}'} (this study {ours})"
        )
    if row["backbone"] != study["backbone"]:
        reasons.append(f"backbone {row['backbone']} (this study {study['backbone']})")
    subset = subset_reason(row, study)
    if subset:
        reasons.append(subset)
    epochs = pd.to_numeric(row["epochs"], errors="coerce")
    if math.isnan(epochs):
        reasons.append("epochs not published")
    elif study["epochs"] is None:
        reasons.append("this study's epochs are not recorded")
    elif epochs != study["epochs"]:
        reasons.append(f"{epochs:g} epochs (this study {study['epochs']:g})")
    return "yes" if not reasons else "not comparable: " + "; ".join(reasons)


def published_for(
    trials: pd.DataFrame, class_names: list[str], reference: pd.DataFrame
) -> list[tuple[str, str, pd.DataFrame]]:
    """Per condition of the study: its label, a description of what it measures, and the published
    rows of its benchmark, each with `comparable`: 'yes' or 'not comparable: ' and why."""
    found = []
    for condition, members in trials.groupby("condition", sort=False):
        first = members.iloc[0]
        factors = members["imbalance_factor"].dropna().unique()
        factor = float(factors[0]) if len(factors) == 1 else math.nan
        backbone = backbone_of(first["architecture"])
        benchmark = benchmark_of(first["source"], class_names)
        shown = f"IF {factor:g}" if not math.isnan(factor) else "as published"
        data = benchmark or {"synthetic": "the synthetic background-bias benchmark"}.get(
            first["source"], first["source"]
        )
        described = f"{data or 'unknown data'}, {shown}, {backbone or 'unknown backbone'}"
        study = {
            "benchmark": benchmark,
            "factor": factor,
            "backbone": backbone,
            "protocol": _single(members.get("subset_protocol", pd.Series(dtype=object))),
            "n_max": _single(members.get("n_max", pd.Series(dtype=object))),
            "profile": _single(members.get("profile", pd.Series(dtype=object))),
            "subset_seed": _single(members.get("subset_seed", pd.Series(dtype=object))),
            "epochs": _single(members.get("planned_epochs", pd.Series(dtype=float))),
        }
        rows = reference[reference["benchmark"] == benchmark].copy() if benchmark else reference.iloc[0:0].copy()
        rows["comparable"] = [comparability(row, study) for _, row in rows.iterrows()]
        # the condition's own imbalance factor first (its own backbone first among them), the rest after
        distance = [
            (not _same_factor(row["imbalance_factor"], factor), row["backbone"] != backbone)
            for _, row in rows.iterrows()
        ]
        rows = rows.iloc[sorted(range(len(rows)), key=lambda index: distance[index])]
        found.append((condition, f"{condition + ': ' if condition else ''}{described}", rows))
    return found
