"""A study file: the trial config, the search space over dotted config paths, and how to run it.

Every search bound and baseline override is applied to the trial config and validated, so a
study that would produce an invalid trial is refused before anything starts.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from smcl_tune.config import (
    ConfigError,
    TrialConfig,
    apply_overrides,
    format_validation_error,
    load_yaml,
    short_repr,
    trial_config_from_dict,
)

# Metrics a trial reports on the validation split; tuning may only use these (never test_*).
OBJECTIVE_METRICS = ("val_balanced_accuracy", "val_top1", "val_many", "val_medium", "val_few")
DISTRIBUTIONS = ("uniform", "loguniform", "int", "logint", "choice")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Objective(_Strict):
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


class SchedulerConfig(_Strict):
    type: Literal["asha", "fifo"] = "asha"
    max_epochs: int | None = Field(
        None, ge=1, description="ASHA's max_t: trial.training.epochs, which it must equal if given"
    )
    grace_period: int = Field(1, ge=1, description="epochs before ASHA may stop a trial")
    reduction_factor: float = Field(3.0, gt=1.0)


class ResourcesConfig(_Strict):
    cpus: float = Field(1.0, gt=0.0, description="CPU cores per trial")
    gpus: float = Field(0.0, ge=0.0, le=1.0, description="fraction of one GPU per trial (0.25 packs four trials)")


class TrackingConfig(_Strict):
    uri: str | None = Field(None, description="MLflow tracking URI; default: sqlite store in the storage folder")
    experiment: str | None = Field(None, description="MLflow experiment; default: the study name")
    outage_timeout_s: float = Field(
        600.0, gt=0, description="seconds to wait for a tracking server that stopped answering before the study stops"
    )


NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # names reach paths, MLflow filters and run names
RESERVED_NAMES = frozenset({"mlartifacts", "mlruns", "mlflow.db", "smcl-runs"})  # the store's own entries


SeedList = Annotated[list[Annotated[int, Field(ge=0, lt=2**32)]], Field(min_length=1)]


def _distinct(seeds: list[int] | None) -> list[int] | None:
    if seeds is not None and len(set(seeds)) != len(seeds):
        raise ValueError("each seed once")
    return seeds


class Baseline(_Strict):
    name: str = Field(pattern=NAME_PATTERN, max_length=100)
    overrides: dict[str, Any] = Field(default_factory=dict, description="dotted config path -> value")
    seeds: SeedList | None = Field(None, description="one trial per seed (training.seed); unset: the trial's own seed")

    _distinct_seeds = field_validator("seeds")(_distinct)


class ConfirmConfig(_Strict):
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


class StudyConfig(_Strict):
    name: str = Field(pattern=NAME_PATTERN, max_length=100)
    trial: dict[str, Any] = Field(default_factory=dict)
    conditions: dict[str, list[Any]] = Field(
        default_factory=dict, description="dotted config path -> values; each combination is a stratum of its own"
    )
    search: dict[str, dict[str, Any]] = Field(default_factory=dict)
    baselines: list[Baseline] = Field(default_factory=list)
    confirm: ConfirmConfig | None = None
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    num_trials: int = Field(
        8, ge=0, description="trials sampled by Optuna in each condition (baselines come on top); 0: baselines only"
    )
    max_concurrent: int = Field(2, ge=1)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    seed: int = Field(0, ge=0, lt=2**32, description="seed of Optuna's sampler")
    storage: str = Field("smcl-runs", description="folder or URI (s3://, gs://) for Ray results and the Optuna study")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    @field_validator("name")
    @classmethod
    def _not_the_stores_own(cls, name: str) -> str:
        if name.lower() in RESERVED_NAMES:
            raise ValueError(f"{name!r} is a name the study store uses itself ({', '.join(sorted(RESERVED_NAMES))})")
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


@dataclass(frozen=True)
class Condition:
    """One combination of the study's conditions: its label ("" without conditions) and values."""

    label: str
    overrides: dict[str, Any]


def _value_label(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def study_conditions(conditions: dict[str, list[Any]]) -> list[Condition]:
    """Every combination of the conditions' values, in the order given; one unlabelled condition
    when there are none."""
    if not conditions:
        return [Condition("", {})]
    names = list(plain_param_names(dict.fromkeys(conditions)))
    crossed = []
    for values in itertools.product(*conditions.values()):
        label = ",".join(f"{name}={_value_label(value)}" for name, value in zip(names, values))
        crossed.append(Condition(label, dict(zip(conditions, values))))
    return crossed


class Study:
    """A validated study: the config, the base trial config and the parsed search space."""

    def __init__(self, config: StudyConfig, base_trial: TrialConfig, source: Path | None) -> None:
        self.config = config
        self.base_trial = base_trial
        self.source = source

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def conditions(self) -> list[Condition]:
        return study_conditions(self.config.conditions)

    @property
    def max_epochs(self) -> int:
        return self.config.scheduler.max_epochs or self.base_trial.training.epochs

    @property
    def planned_trials(self) -> int:
        """Every trial the study file asks for, in all conditions: each baseline seed, each search
        trial and each confirmation run (fewer of these when fewer search trials complete)."""
        config = self.config
        per_condition = sum(len(baseline.seeds or [None]) for baseline in config.baselines) + config.num_trials
        if config.confirm is not None:
            per_condition += config.confirm.top_k * len(config.confirm.seeds)
        return per_condition * len(self.conditions)

    def display_dict(self) -> dict[str, Any]:
        """The resolved study for people and logs: the tracking URI's credentials redacted."""
        resolved = self.config.model_dump(mode="json")
        resolved["tracking"]["uri"] = redact_uri(resolved["tracking"]["uri"])
        return resolved

    def source_text(self) -> str | None:
        """The study file as written, the tracking URI's credentials redacted; None without a file."""
        if self.source is None or not self.source.is_file():
            return None
        text = self.source.read_text(encoding="utf-8")
        uri = self.config.tracking.uri
        return text.replace(uri, redact_uri(uri)) if uri else text

    def fingerprint(self) -> str:
        """Hash of everything that defines the study's trials (not of how they are scheduled)."""
        defining = self.config.model_dump(mode="json", exclude={"max_concurrent", "resources", "tracking", "storage"})
        return hashlib.sha256(json.dumps(defining, sort_keys=True).encode()).hexdigest()[:16]

    def trial_config(self, params: dict[str, Any]) -> TrialConfig:
        """The base trial config with dotted-path values applied."""
        return trial_config_from_dict(apply_overrides(self.config.trial, params))


def redact_uri(uri: str | None) -> str | None:
    """A URI without the user and password it may carry: `https://user:secret@host` -> `https://***@host`."""
    if uri is None:
        return None
    return re.sub(r"(?<=://)[^/@]+@", "***@", uri)


def plain_param_names(params: dict[str, Any]) -> dict[str, Any]:
    """`method.temperature` -> `temperature`, unless two paths share their last name."""
    last_names = [path.rsplit(".", 1)[-1] for path in params]
    return {
        (name if last_names.count(name) == 1 else path): value
        for path, name, value in zip(params, last_names, params.values())
    }


def _config_field(path: str):
    """The pydantic field a dotted path names in the trial config, or None."""
    model: type[BaseModel] = TrialConfig
    parts = path.split(".")
    field = None
    for index, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        if index < len(parts) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return None
            model = annotation
    return field


def _is_config_field(path: str) -> bool:
    return _config_field(path) is not None


def _value_type(annotation: Any) -> Any:
    """int, float, or another type (Literal, bool, str, list...) of a field, without `| None`."""
    arguments = [argument for argument in typing.get_args(annotation) if argument is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(arguments) == 1:
        return arguments[0]
    return annotation


def _check_distribution_kind(path: str, kind: str) -> None:
    """A numeric distribution only for a numeric field; whole numbers only for a whole-number field."""
    value_type = _value_type(_config_field(path).annotation)
    if kind == "choice" or value_type is float or (value_type is int and kind in ("int", "logint")):
        return
    wanted = "int, logint or choice" if value_type is int else "choice"
    raise ConfigError(f"search.{path}: {kind} gives values this field does not take; use {wanted}")


def _distribution_values(path: str, spec: dict[str, Any]) -> list[Any]:
    """Check one distribution and return the values it can take at its edges (to validate)."""
    where = f"search.{path}"
    if len(spec) != 1:
        raise ConfigError(f"{where}: give exactly one distribution ({', '.join(DISTRIBUTIONS)}), got {sorted(spec)}")
    kind, bounds = next(iter(spec.items()))
    if kind not in DISTRIBUTIONS:
        raise ConfigError(f"{where}: unknown distribution {kind!r}; one of {', '.join(DISTRIBUTIONS)}")
    if kind == "choice":
        if not isinstance(bounds, list) or not bounds:
            raise ConfigError(f"{where}.choice: needs a non-empty list of values, got {short_repr(bounds)}")
        return bounds
    if not (
        isinstance(bounds, list)
        and len(bounds) == 2
        and all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
    ):
        raise ConfigError(f"{where}.{kind}: needs [low, high], got {short_repr(bounds)}")
    low, high = bounds
    if not all(math.isfinite(b) for b in bounds):
        raise ConfigError(f"{where}.{kind}: bounds must be finite, got {short_repr(bounds)}")
    if kind in ("int", "logint") and not all(float(b).is_integer() for b in bounds):
        raise ConfigError(f"{where}.{kind}: bounds must be whole numbers, got {short_repr(bounds)}")
    if low >= high:
        raise ConfigError(f"{where}.{kind}: low must be below high, got [{low}, {high}]")
    if kind in ("loguniform", "logint") and low <= 0:
        raise ConfigError(f"{where}.{kind}: low must be > 0 on a log scale, got {low}")
    if kind in ("int", "logint"):
        return [int(low), int(high)]
    return [float(low), float(high)]


MAX_CHECKED_COMBINATIONS = 4096


# What a trial measures: the data it trains and is tested on, and the shot groups it reports.
# Trials that differ in these are not comparable, so they are conditions, never searched.
MEASUREMENT_FIELDS = (
    "data.source",
    "data.root",
    "data.num_classes",
    "data.imbalance_factor",
    "data.profile",
    "data.n_max",
    "data.val_per_class",
    "data.subset_seed",
    "data.subset_protocol",
    "data.many_above",
    "data.few_below",
    "data.image_size",
    "data.synthetic",
)
# What a baseline or a confirmation run may still set of them: training on the whole subset.
FINAL_RUN_FIELDS = ("data.val_per_class",)


def _measures(path: str) -> bool:
    return any(path == field or path.startswith(field + ".") for field in MEASUREMENT_FIELDS)


def _check_not_measured(where: str, paths, allowed: tuple[str, ...] = ()) -> None:
    for path in paths:
        if _measures(path) and path not in allowed:
            raise ConfigError(
                f"{where}.{path}: changes what a trial measures (its data or shot groups), so its trials would not "
                "be comparable; put it under conditions: (each value a stratum of its own)"
            )


def _check_conditions(config: StudyConfig) -> None:
    for path, values in config.conditions.items():
        if not _is_config_field(path):
            raise ConfigError(f"conditions.{path}: names no config field")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"conditions.{path}: needs a non-empty list of values, got {short_repr(values)}")
        if len({json.dumps(value, sort_keys=True) for value in values}) != len(values):
            raise ConfigError(f"conditions.{path}: each value once, got {short_repr(values)}")
    for condition in study_conditions(config.conditions):
        if not re.fullmatch(r"[A-Za-z0-9_.=,:+-]*", condition.label):
            raise ConfigError(f"conditions: {condition.label!r} is not a usable label; use plain numbers and names")
        try:
            trial_config_from_dict(apply_overrides(config.trial, condition.overrides))
        except ConfigError as error:
            raise ConfigError(f"conditions ({condition.label}) give an invalid trial: {error}") from None


def _check_validation_split(config: StudyConfig) -> None:
    """A search selects on validation metrics: every condition it runs in needs a validation split."""
    if not config.num_trials:
        return
    for condition in study_conditions(config.conditions):
        trial = trial_config_from_dict(apply_overrides(config.trial, condition.overrides))
        if trial.data.val_per_class == 0:
            where = f" (condition {condition.label})" if condition.label else ""
            raise ConfigError(
                f"trial.data.val_per_class: 0 leaves no validation split{where}, and a search is tuned on "
                f"{config.objective.metric}; keep a validation split for the search and train on the whole "
                "subset in baselines and confirm.overrides (data.val_per_class: 0)"
            )


def _check_search_space(config: StudyConfig) -> None:
    """Every distribution fits its field, and in every condition every combination of the
    distributions' edge values (all of them up to MAX_CHECKED_COMBINATIONS) gives a valid trial."""
    edges = {}
    for path, spec in config.search.items():
        if not _is_config_field(path):
            raise ConfigError(f"search.{path}: names no config field")
        if path in config.conditions:
            raise ConfigError(f"search.{path}: is a condition; a path is either searched or a condition")
        edges[path] = _distribution_values(path, spec)
        _check_distribution_kind(path, next(iter(spec)))
    _check_not_measured("search", config.search)
    for condition in study_conditions(config.conditions):
        base = apply_overrides(config.trial, condition.overrides)
        where = f" (condition {condition.label})" if condition.label else ""
        for path, values in edges.items():
            for value in values:
                try:
                    trial_config_from_dict(apply_overrides(base, {path: value}))
                except ConfigError as error:
                    raise ConfigError(
                        f"search.{path}: the value {short_repr(value)} gives an invalid trial{where}: {error}"
                    ) from None
        if len(edges) < 2:
            continue
        for count, values in enumerate(itertools.product(*edges.values())):
            if count == MAX_CHECKED_COMBINATIONS:
                break
            combination = dict(zip(edges, values))
            try:
                trial_config_from_dict(apply_overrides(base, combination))
            except ConfigError as error:
                shown = ", ".join(f"{path}: {short_repr(value)}" for path, value in combination.items())
                raise ConfigError(
                    f"search: the combination {{{shown}}} gives an invalid trial{where}: {error}"
                ) from None


def _check_fixed_runs(config: StudyConfig) -> None:
    """Baselines and confirmation runs: known fields, nothing that changes what is measured but
    the validation hold-out, and a valid trial in every condition."""
    runs = [
        (f"baselines[{index}]", baseline.name, baseline.overrides) for index, baseline in enumerate(config.baselines)
    ]
    if config.confirm is not None:
        runs.append(("confirm", "confirm", config.confirm.overrides))
    for where, name, overrides in runs:
        for path in overrides:
            if not _is_config_field(path):
                raise ConfigError(f"{where}.overrides.{path}: names no config field")
        _check_not_measured(f"{where}.overrides", overrides, FINAL_RUN_FIELDS)
        for condition in study_conditions(config.conditions):
            try:
                trial_config_from_dict(apply_overrides(apply_overrides(config.trial, condition.overrides), overrides))
            except ConfigError as error:
                shown = f", condition {condition.label}" if condition.label else ""
                raise ConfigError(f"{where} ({name}{shown}): {error}") from None


def _measured_data(trial: TrialConfig) -> dict[str, Any]:
    """The trial's data fields that decide what it is measured on, by dotted path."""
    data = trial.data.model_dump(mode="json")
    return {path: data[path.split(".")[1]] for path in MEASUREMENT_FIELDS if path.startswith("data.")}


def _check_shared_subset(config: StudyConfig) -> None:
    """Baselines and confirmation runs are paired over seeds within a condition: they must train
    and test on the same data (the same subset, hold-out included)."""
    runs = [
        (f"baselines[{index}] ({baseline.name})", baseline.overrides) for index, baseline in enumerate(config.baselines)
    ]
    if config.confirm is not None:
        runs.append(("confirm", config.confirm.overrides))
    if len(runs) < 2:
        return
    for condition in study_conditions(config.conditions):
        base = apply_overrides(config.trial, condition.overrides)
        first_name, first = runs[0][0], _measured_data(trial_config_from_dict(apply_overrides(base, runs[0][1])))
        for name, overrides in runs[1:]:
            measured = _measured_data(trial_config_from_dict(apply_overrides(base, overrides)))
            differing = [path for path in first if measured[path] != first[path]]
            if differing:
                shown = ", ".join(
                    f"{path} {short_repr(first[path])} and {short_repr(measured[path])}" for path in differing
                )
                where = f" (condition {condition.label})" if condition.label else ""
                raise ConfigError(
                    f"{first_name} and {name} train on different data{where}: {shown}; they are compared over "
                    f"seeds, so give them the same {' and '.join(differing)}"
                )


def _check_asha_budget(config: StudyConfig, base_trial: TrialConfig) -> None:
    """ASHA's budget is one epoch count for every trial; a trial may not change its own."""
    max_epochs, epochs = config.scheduler.max_epochs, base_trial.training.epochs
    if config.scheduler.type != "asha":
        if max_epochs is not None:
            raise ConfigError("scheduler.max_epochs: used by the ASHA scheduler only; remove it with type: fifo")
        return
    if max_epochs is not None and max_epochs != epochs:
        raise ConfigError(
            f"scheduler.max_epochs: ASHA stops every trial at max_epochs ({max_epochs}) while trials "
            f"train trial.training.epochs ({epochs}); leave max_epochs out (it defaults to "
            "trial.training.epochs) or make the two equal"
        )
    if "training.epochs" in config.search:
        raise ConfigError(
            "search.training.epochs: ASHA gives every trial scheduler.max_epochs epochs; "
            "search the epoch count with scheduler.type: fifo"
        )
    for index, baseline in enumerate(config.baselines):
        if "training.epochs" in baseline.overrides:
            raise ConfigError(
                f"baselines[{index}].overrides.training.epochs: ASHA gives every trial "
                "scheduler.max_epochs epochs; set training.epochs for the whole study"
            )


def study_from_dict(raw: dict[str, Any], source: Path | None = None) -> Study:
    """Validate a study mapping; ConfigError names the field path and the reason."""
    try:
        config = StudyConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error)) from None
    base_trial = trial_config_from_dict(config.trial, prefix="trial")
    _check_conditions(config)
    _check_validation_split(config)
    _check_search_space(config)
    _check_fixed_runs(config)
    _check_shared_subset(config)
    _check_asha_budget(config, base_trial)
    return Study(config, base_trial, source)


def load_study(path: str | Path) -> Study:
    """Read and validate a study file; errors name the file, the field path and the reason."""
    path = Path(path)
    raw = load_yaml(path)
    try:
        return study_from_dict(raw, path)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
