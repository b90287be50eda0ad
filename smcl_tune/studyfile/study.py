"""A study file: the trial config, the search space over dotted config paths, and how to run it.

Every search bound and baseline override is applied to the trial config and validated, so a
study that would produce an invalid trial is refused before anything starts. The schema is in
schema.py, the cross-checks in checks.py; this module loads and validates a study
and holds the validated Study.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from smcl_tune.config import TrialConfig, trial_config_from_dict, trial_hint
from smcl_tune.errors import ConfigError, format_validation_error, in_file
from smcl_tune.field_hints import field_hint
from smcl_tune.studyfile.checks import check_study
from smcl_tune.studyfile.conditions import Condition, plain_param_names, study_conditions
from smcl_tune.studyfile.numbers_as_read import numbers_as_read, values_as_read
from smcl_tune.studyfile.overrides import apply_overrides
from smcl_tune.studyfile.schema import OBJECTIVE_METRICS, StudyConfig
from smcl_tune.studyfile.uri_credentials import without_credentials
from smcl_tune.studyfile.yaml_loader import load_yaml

# OBJECTIVE_METRICS, apply_overrides and plain_param_names are imported from here by study/.
__all__ = [
    "OBJECTIVE_METRICS",
    "Study",
    "StudyConfig",
    "apply_overrides",
    "load_study",
    "plain_param_names",
    "redact_uri",
    "study_from_dict",
]


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
        """The resolved study for people and logs: the trial's texts as the values they are read as,
        the tracking URI's credentials redacted."""
        resolved = self.config.model_dump(mode="json")
        resolved["trial"] = values_as_read(resolved["trial"], self.base_trial.model_dump(mode="json"))
        resolved["tracking"]["uri"] = redact_uri(resolved["tracking"]["uri"])
        return resolved

    def source_text(self) -> str | None:
        """The study file as written, the tracking URI's credentials redacted; None without a file."""
        if self.source is None or not self.source.is_file():
            return None
        text = self.source.read_text(encoding="utf-8")
        uri = self.config.tracking.uri
        return text.replace(uri, redact_uri(uri)) if uri else text

    def fingerprint(self, trial: dict[str, Any] | None = None) -> str:
        """Hash of everything that defines the study's trials (not of how they are scheduled); with
        `trial`, of this study with that trial section instead of its own. A number the trial
        section writes as text counts as the number it is read as (`epochs: "3"` is `epochs: 3`)."""
        written = self.config.trial if trial is None else trial
        try:
            read = (self.base_trial if trial is None else trial_config_from_dict(trial)).model_dump(mode="json")
        except ConfigError:  # a trial section no study can run is only hashed, as written
            return self._hash(written)
        return self._hash(numbers_as_read(written, read))

    def fingerprints(self, trial: dict[str, Any] | None = None) -> tuple[str, str]:
        """The fingerprint, and the one smcl-tune gave this study file before 2026-12-07 (numbers
        written as text counted as text): either identifies a study started from this file."""
        return self.fingerprint(trial), self._hash(self.config.trial if trial is None else trial)

    def _hash(self, trial: dict[str, Any]) -> str:
        where_and_how = {"max_concurrent", "resources", "tracking", "storage", "storage_outage_timeout_s", "optuna"}
        defining = self.config.model_dump(mode="json", exclude=where_and_how)
        defining["trial"] = _AS_JSON.dump_python(trial, mode="json")  # as the dump above: a YAML set is a list
        return hashlib.sha256(json.dumps(defining, sort_keys=True).encode()).hexdigest()[:16]

    def trial_config(self, params: dict[str, Any]) -> TrialConfig:
        """The base trial config with dotted-path values applied."""
        return trial_config_from_dict(apply_overrides(self.config.trial, params))


_AS_JSON = TypeAdapter(Any)


def redact_uri(uri: str | None) -> str | None:
    """A URI without the user and password it may carry: `https://user:secret@host` -> `https://***@host`."""
    return None if uri is None else without_credentials(uri)


def _study_hint(parts: tuple[str, ...]) -> str | None:
    """A study field's name gone wrong, or a trial section's written at the top level (`training:`)."""
    meant = field_hint(StudyConfig, parts, {"trial": TrialConfig})
    return f"did you mean {meant}?" if meant else None


def _trial_section_hint(parts: tuple[str, ...]) -> str | None:
    """A field under `trial:`: the trial's closest, or a study field put there (`trial: {tracking: ...}`)."""
    if parts and parts[0] in StudyConfig.model_fields and parts[0] not in TrialConfig.model_fields:
        return f"{parts[0]} is a field of the study: write it at the top level, not under trial:"
    return trial_hint("trial", parts)


def study_from_dict(raw: dict[str, Any], source: Path | None = None) -> Study:
    """Validate a study mapping; ConfigError names the field path and the reason."""
    try:
        config = StudyConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, hint=_study_hint)) from None
    base_trial = trial_config_from_dict(config.trial, prefix="trial", hint=_trial_section_hint)
    check_study(config, base_trial)
    return Study(config, base_trial, source)


TRIAL_SECTIONS = frozenset(TrialConfig.model_fields) - frozenset(StudyConfig.model_fields)  # a trial file's top level


def load_study(path: str | Path) -> Study:
    """Read and validate a study file; errors name the file, the field path and the reason."""
    path = Path(path)
    raw = load_yaml(path)
    if isinstance(raw, dict) and "trial" not in raw and "name" not in raw and TRIAL_SECTIONS & raw.keys():
        sections = ", ".join(sorted(TRIAL_SECTIONS & raw.keys()))
        raise ConfigError(  # the other way round from load_trial_config's refusal
            f"{path}: a trial file (its {sections} at the top), not a study file; train it with"
            f" `smcl-tune trial {path}`, or put it under trial: in a study file with a name"
        )
    try:
        return study_from_dict(raw, path)
    except ConfigError as error:
        raise in_file(path, error) from None
