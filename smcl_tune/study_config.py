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
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from smcl_tune.config import (
    ConfigError,
    TrialConfig,
    apply_overrides,
    format_validation_error,
    load_yaml,
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


NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # names reach paths, MLflow filters and run names
RESERVED_NAMES = frozenset({"mlartifacts", "mlruns", "mlflow.db", "smcl-runs"})  # the store's own entries


class Baseline(_Strict):
    name: str = Field(pattern=NAME_PATTERN, max_length=100)
    overrides: dict[str, Any] = Field(default_factory=dict, description="dotted config path -> value")


class StudyConfig(_Strict):
    name: str = Field(pattern=NAME_PATTERN, max_length=100)
    trial: dict[str, Any] = Field(default_factory=dict)
    search: dict[str, dict[str, Any]] = Field(default_factory=dict)
    baselines: list[Baseline] = Field(default_factory=list)
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    num_trials: int = Field(8, ge=1, description="trials sampled by Optuna (baselines come on top)")
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
        if not self.search:
            raise ValueError("search: the search space is empty; name at least one config path to tune")
        return self


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
    def max_epochs(self) -> int:
        return self.config.scheduler.max_epochs or self.base_trial.training.epochs

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
            raise ConfigError(f"{where}.choice: needs a non-empty list of values, got {bounds!r}")
        return bounds
    if not (
        isinstance(bounds, list)
        and len(bounds) == 2
        and all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
    ):
        raise ConfigError(f"{where}.{kind}: needs [low, high], got {bounds!r}")
    low, high = bounds
    if not all(math.isfinite(b) for b in bounds):
        raise ConfigError(f"{where}.{kind}: bounds must be finite, got {bounds!r}")
    if kind in ("int", "logint") and not all(float(b).is_integer() for b in bounds):
        raise ConfigError(f"{where}.{kind}: bounds must be whole numbers, got {bounds!r}")
    if low >= high:
        raise ConfigError(f"{where}.{kind}: low must be below high, got [{low}, {high}]")
    if kind in ("loguniform", "logint") and low <= 0:
        raise ConfigError(f"{where}.{kind}: low must be > 0 on a log scale, got {low}")
    if kind in ("int", "logint"):
        return [int(low), int(high)]
    return [float(low), float(high)]


MAX_CHECKED_COMBINATIONS = 4096


def _check_search_space(config: StudyConfig) -> None:
    """Every distribution fits its field, and every combination of the distributions' edge values
    (all of them up to MAX_CHECKED_COMBINATIONS) gives a valid trial."""
    edges = {}
    for path, spec in config.search.items():
        if not _is_config_field(path):
            raise ConfigError(f"search.{path}: names no config field")
        edges[path] = _distribution_values(path, spec)
        _check_distribution_kind(path, next(iter(spec)))
        for value in edges[path]:
            try:
                trial_config_from_dict(apply_overrides(config.trial, {path: value}))
            except ConfigError as error:
                raise ConfigError(f"search.{path}: the value {value!r} gives an invalid trial: {error}") from None
    if len(edges) < 2:
        return
    for count, values in enumerate(itertools.product(*edges.values())):
        if count == MAX_CHECKED_COMBINATIONS:
            break
        combination = dict(zip(edges, values))
        try:
            trial_config_from_dict(apply_overrides(config.trial, combination))
        except ConfigError as error:
            shown = ", ".join(f"{path}: {value!r}" for path, value in combination.items())
            raise ConfigError(f"search: the combination {{{shown}}} gives an invalid trial: {error}") from None


def _check_baselines(config: StudyConfig) -> None:
    for index, baseline in enumerate(config.baselines):
        for path in baseline.overrides:
            if not _is_config_field(path):
                raise ConfigError(f"baselines[{index}].overrides.{path}: names no config field")
        try:
            trial_config_from_dict(apply_overrides(config.trial, baseline.overrides))
        except ConfigError as error:
            raise ConfigError(f"baselines[{index}] ({baseline.name}): {error}") from None


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
    _check_search_space(config)
    _check_baselines(config)
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
