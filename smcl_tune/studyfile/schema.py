"""The study file's schema: the search space over dotted config paths, baselines, conditions, the
confirmation stage, the objective, the scheduler and the resources.

Each model checks its own fields; the checks that apply the study to the trial config (every
search bound, baseline and condition gives a valid trial) are in checks.py.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from smcl_tune.config import StrictModel, written_out
from smcl_tune.errors import CREDENTIALS_IN_URI
from smcl_tune.layout import DEFAULT_STORAGE, STORE_ENTRIES
from smcl_tune.studyfile.search_space import SearchDistribution
from smcl_tune.studyfile.tracking_uri import TRACKING_URI_FORMS, usable_tracking_uri
from smcl_tune.studyfile.uri_credentials import credentials_advice

# Metrics a trial reports on the validation split; tuning may only use these (never test_*).
OBJECTIVE_METRICS = ("val_balanced_accuracy", "val_top1", "val_many", "val_medium", "val_few")


class Objective(StrictModel):
    metric: str = "val_balanced_accuracy"
    mode: Literal["max", "min"] = "max"

    @field_validator("metric")
    @classmethod
    def _validation_metric(cls, metric: str) -> str:
        if metric.startswith("test_"):
            raise ValueError(f"tuning never reads the test set; use one of {', '.join(OBJECTIVE_METRICS)}")
        if metric not in OBJECTIVE_METRICS:
            raise ValueError(f"unknown metric {metric!r}; one of {', '.join(OBJECTIVE_METRICS)}")
        return metric


class ObjectiveConfig(Objective):
    secondary: Objective | None = Field(None, description="a second objective makes the study multi-objective")

    @model_validator(mode="after")
    def _two_metrics(self) -> ObjectiveConfig:
        if self.secondary is not None and self.secondary.metric == self.metric:
            raise ValueError(
                f"secondary: {self.metric} is already the objective's metric; a second objective is another metric"
            )
        return self


class SchedulerConfig(StrictModel):
    type: Literal["asha", "fifo"] = "asha"
    max_epochs: int | None = Field(
        None, ge=1, description="ASHA's max_t: trial.training.epochs, which it must equal if given"
    )
    grace_period: int = Field(1, ge=1, description="epochs before ASHA may stop a trial")
    reduction_factor: float = Field(3.0, gt=1.0)

    def idle_fields(self) -> list[str]:
        """The ASHA settings the file gives a FIFO scheduler, which stops no trial."""
        return sorted(self.model_fields_set & {"grace_period", "reduction_factor"}) if self.type == "fifo" else []


class ResourcesConfig(StrictModel):
    cpus: float = Field(1.0, gt=0.0, description="CPU cores per trial (per group of fused trials)")
    gpus: float = Field(
        0.0, ge=0.0, le=1.0, description="fraction of one GPU per trial (per group of fused trials; 0.25 packs four)"
    )
    fuse: int = Field(
        1,
        ge=1,
        description="trials of one shape trained as one stacked model in one process; cpus, gpus and "
        "max_concurrent count such groups",
    )


class TrackingConfig(StrictModel):
    uri: str | None = Field(None, description="MLflow tracking URI; default: sqlite store in the storage folder")
    experiment: str | None = Field(None, description="MLflow experiment; default: the study name")
    outage_timeout_s: float = Field(
        600.0, gt=0, description="seconds to wait for a tracking server that stopped answering before the study stops"
    )

    @field_validator("uri", "experiment")
    @classmethod
    def _not_empty(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():  # YAML's '' is not its null: no silent default
            raise ValueError("empty; leave it out (or write null) for the default")
        return value

    @field_validator("uri")
    @classmethod
    def _a_usable_uri_written_out_without_credentials(cls, uri: str | None) -> str | None:
        if uri is not None:
            _refuse_credentials(uri)
            written_out(uri)
            if not usable_tracking_uri(uri):
                raise ValueError(TRACKING_URI_FORMS)
        return uri


DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql")


class OptunaConfig(StrictModel):
    storage: str | None = Field(
        None,
        description="a database URL Optuna's RDBStorage takes (postgresql://user@host:5432/db); the study record "
        "and the driver's lock go there too; default: an sqlite file in the storage folder",
    )
    outage_timeout_s: float = Field(
        600.0, gt=0, description="seconds to wait for a database that stopped answering before the study stops"
    )

    @field_validator("storage")
    @classmethod
    def _a_database_without_credentials(cls, storage: str | None) -> str | None:
        if storage is None:
            return None
        scheme = storage.split("://", 1)[0].split("+")[0] if "://" in storage else ""
        if scheme not in DATABASE_SCHEMES:
            raise ValueError("not a database URL: postgresql://user@host:port/database (or mysql://, sqlite:///path)")
        _refuse_credentials(storage)
        return written_out(storage)


def _refuse_credentials(uri: str) -> None:
    advice = credentials_advice(uri)
    if advice:  # the message leaves the URI out: it would show the secret
        raise ValueError(
            f"{CREDENTIALS_IN_URI}, which would reach the study's tags, logs and Ray's saved state; "
            f"remove them and {advice}"
        )


NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # names reach paths, MLflow filters and run names
NAME_WORDS = "letters, digits, underscores, dots and hyphens, starting with a letter or a digit"


def _plain_name(name: str) -> str:
    if not re.fullmatch(NAME_PATTERN, name):
        raise ValueError(f"a name of {NAME_WORDS}")
    return name


SeedList = Annotated[list[Annotated[int, Field(ge=0, lt=2**32)]], Field(min_length=1)]


def _distinct(seeds: list[int] | None) -> list[int] | None:
    if seeds is not None and len(set(seeds)) != len(seeds):
        raise ValueError("each seed once")
    return seeds


class Baseline(StrictModel):
    name: Annotated[str, AfterValidator(_plain_name)] = Field(max_length=100)
    overrides: dict[str, Any] = Field(default_factory=dict, description="dotted config path -> value")
    seeds: SeedList | None = Field(None, description="one trial per seed (training.seed); unset: the trial's own seed")

    _distinct_seeds = field_validator("seeds")(_distinct)


class ConfirmConfig(StrictModel):
    """After the search, in every condition: the top_k configurations by the validation objective,
    each retrained once per seed at the full budget, never stopped early, kept out of Optuna."""

    top_k: int = Field(ge=1)
    seeds: SeedList
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="dotted config path -> value for the confirmation runs "
        "(e.g. data.val_per_class: 0 to train on the exact subset)",
    )

    _distinct_seeds = field_validator("seeds")(_distinct)


class StudyConfig(StrictModel):
    name: Annotated[str, AfterValidator(_plain_name)] = Field(max_length=100)
    trial: dict[str, Any] = Field(default_factory=dict)
    conditions: dict[str, list[Any]] = Field(
        default_factory=dict, description="dotted config path -> values; each combination is a stratum of its own"
    )
    search: dict[str, SearchDistribution] = Field(
        default_factory=dict, description="dotted config path -> distribution"
    )
    baselines: list[Baseline] = Field(default_factory=list)
    confirm: ConfirmConfig | None = None
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    num_trials: int = Field(
        8,
        ge=0,
        le=1_000_000,
        description="trials sampled by Optuna in each condition (baselines come on top); 0: baselines only",
    )
    max_concurrent: int = Field(2, ge=1, le=1_000_000, description="trials (groups of fused trials) running at once")
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    seed: int = Field(0, ge=0, lt=2**32, description="seed of Optuna's sampler")
    storage: str = Field(
        DEFAULT_STORAGE, description="folder or URI (s3://, gs://) for Ray results and the Optuna study"
    )
    storage_outage_timeout_s: float = Field(
        600.0,
        gt=0,
        description="seconds a trial waits for an object store (storage: s3://...) that stopped answering before "
        "the study stops",
    )
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    optuna: OptunaConfig = Field(default_factory=OptunaConfig)

    @field_validator("storage")
    @classmethod
    def _written_out_without_credentials(cls, storage: str) -> str:
        _refuse_credentials(storage)
        return written_out(storage)

    @field_validator("name")
    @classmethod
    def _not_the_stores_own(cls, name: str) -> str:
        if name.lower() in STORE_ENTRIES:
            raise ValueError(f"{name!r} is a name the study store uses itself ({', '.join(sorted(STORE_ENTRIES))})")
        return name

    @model_validator(mode="after")
    def _check(self) -> StudyConfig:
        names = [baseline.name for baseline in self.baselines]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"baselines: each baseline needs a name of its own; repeated: {', '.join(repeated)}")
        if not self.search and self.num_trials:
            raise ValueError(
                "search: the search space is empty; name at least one config path to tune "
                "(or set num_trials: 0 for a study of baselines only)"
            )
        if self.search and not self.num_trials:
            raise ValueError("num_trials: 0 samples nothing from the search space; remove search or sample trials")
        if not self.num_trials and not self.baselines:
            raise ValueError("num_trials: a study with no trials to sample needs baselines")
        if self.confirm is not None and self.confirm.top_k > self.num_trials:
            raise ValueError(f"confirm.top_k: {self.confirm.top_k} is more than the {self.num_trials} trials searched")
        return self
