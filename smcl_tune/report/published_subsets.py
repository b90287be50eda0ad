"""The training subset a published row and a condition of a study trained on: which CIFAR-LT
images (protocol, n_max, seed) and how their counts fall (profile). Figures on different subsets
are not comparable; the shipped rows all train on Cao et al.'s, and a user's own may say theirs in
columns named as the study file's `data` fields."""

from __future__ import annotations

import difflib
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from smcl_tune.config import DataConfig
from smcl_tune.errors import ConfigError
from smcl_tune.report.cells import is_missing

# The subsets the published CIFAR-LT figures train on: Cao et al.'s LDAM-DRW subsets of each
# class's whole training pool, counts falling exponentially.
PUBLISHED_SUBSETS = {"CIFAR-10-LT": ("ldam", 5000), "CIFAR-100-LT": ("ldam", 500)}
PUBLISHED_PROFILE = "exp"
SUBSET_COLUMNS = ("subset_protocol", "n_max", "profile", "subset_seed")
DEFAULT_SUBSET_SEED = DataConfig.model_fields["subset_seed"].default
UNRECORDED = object()  # a field a condition's trials did not record (a store written before its tag)


def blank(value) -> bool:
    """A cell left empty: missing (NaN, None) or only spaces."""
    return is_missing(value) or str(value).strip() == ""


def check_subset_columns(extra: Path, own: pd.DataFrame) -> None:
    """A user's rows' subset columns, where the file has them: each a value its `data` field takes,
    only on a benchmark whose published figures train on a subset, and a seed only with a seeded
    one. A column whose name is close to one of them is refused: ignored, its rows would be taken
    as trained on the published subset."""
    for column in own.columns:
        normal = str(column).strip().lower().replace("-", "_")
        close = difflib.get_close_matches(normal, SUBSET_COLUMNS, n=1, cutoff=0.75)
        if column not in SUBSET_COLUMNS and close:
            raise ConfigError(f"{extra}: column {str(column)!r}: did you mean {close[0]}? (a row's subset)")
    protocols = own["subset_protocol"] if "subset_protocol" in own.columns else pd.Series("", index=own.index)
    for column in (name for name in SUBSET_COLUMNS if name in own.columns):
        for row, (value, benchmark, protocol) in enumerate(zip(own[column], own["benchmark"], protocols), start=2):
            if blank(value):
                continue
            if benchmark not in PUBLISHED_SUBSETS:
                problem = f"{benchmark} is used as published (no subset is drawn); leave it blank"
            elif column == "subset_seed" and (blank(protocol) or str(protocol).strip() != "seeded"):
                problem = "only a seeded subset has one (subset_protocol seeded)"
            else:
                problem = _value_problem(column, value)
            if problem:
                raise ConfigError(f"{extra}: line {row}, {column}: {problem}")


def _value_problem(column: str, value) -> str | None:
    """Why `value` is not one the study file's `data.<column>` takes, or None: the field's own
    validation (DataConfig validates an assignment, its true/false and inf refusals included)."""
    try:
        setattr(DataConfig(source="synthetic"), column, value)  # the one source that needs no other field
    except ValidationError as error:
        reason = error.errors()[0]["msg"].removeprefix("Value error, ")
        reason = reason[:1].lower() + reason[1:]  # within the line's parentheses
        return f"{str(value).strip()!r} is not a value of data.{column} ({reason})"
    return None


def _row_subset(row: pd.Series, benchmark: str) -> tuple[str, int, str, int | None]:
    """The subset a published row trained on: protocol, n_max, profile and (seeded only) seed; a
    blank or absent column is the benchmark's published subset (LDAM's, of the whole pool, exp)."""
    protocol, pool = PUBLISHED_SUBSETS[benchmark]
    protocol = protocol if blank(row.get("subset_protocol")) else str(row["subset_protocol"]).strip()
    n_max = pool if blank(row.get("n_max")) else int(float(row["n_max"]))
    profile = PUBLISHED_PROFILE if blank(row.get("profile")) else str(row["profile"]).strip()
    seed = None
    if protocol == "seeded":
        seed = DEFAULT_SUBSET_SEED if blank(row.get("subset_seed")) else int(float(row["subset_seed"]))
    return protocol, n_max, profile, seed


def _words(subset: tuple, shown: set[str]) -> str:
    """The `shown` fields of a subset (protocol, n_max, profile, seed), as its reason names them."""
    protocol, n_max, profile, seed = subset
    parts = []
    if "protocol" in shown:
        parts.append(protocol if seed is None else f"{protocol}, seed {'not recorded' if seed is UNRECORDED else seed}")
    if "n_max" in shown:
        parts.append(f"n_max {n_max}")
    if "profile" in shown:
        parts.append(f"{profile} profile")
    return ", ".join(parts)


def subset_reason(row: pd.Series, study: dict) -> str | None:
    """What differs between the subset a published row trained on and a condition's (`study`:
    its benchmark, protocol, n_max, profile and subset_seed as recorded, None where not), or
    what the condition did not record; None when they match."""
    benchmark = study["benchmark"]
    if benchmark not in PUBLISHED_SUBSETS:
        return None
    if study["protocol"] is None or study["n_max"] is None:
        return "this study's subset protocol is not recorded"
    protocol, n_max = study["protocol"], study["n_max"]
    seed = None
    if protocol == "seeded":
        seed = UNRECORDED if study["subset_seed"] is None else int(study["subset_seed"])
    ours = (
        protocol,
        PUBLISHED_SUBSETS[benchmark][1] if n_max == "default" else int(n_max),
        UNRECORDED if study["profile"] is None else study["profile"],
        seed,
    )
    theirs = _row_subset(row, benchmark)
    differ = {
        name
        # a seed is named with its protocol (`seeded, seed 0`)
        for name, mine, published in zip(("protocol", "n_max", "profile", "protocol"), ours, theirs)
        if mine is not UNRECORDED and mine != published
    }
    if differ:
        said = f"{_words(theirs, differ)} (this study {_words(ours, differ)})"  # as the other reasons: the row's first
        return said if differ == {"profile"} else f"subset {said}"
    fields = (("imbalance profile", ours[2]), ("subset seed", seed))
    unrecorded = [name for name, value in fields if value is UNRECORDED]
    if unrecorded:
        return f"this study's {' and '.join(unrecorded)} {'are' if len(unrecorded) > 1 else 'is'} not recorded"
    return None
