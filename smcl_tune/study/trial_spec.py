"""One trial of a study as the driver plans it: who it is, in which condition, and its validated config.

The searcher builds each trial's spec, and validates its TrialConfig, once, in the driver. The
spec travels in the Ray trial's config under `TRIAL_SPEC` (beside the dotted-path values, which
Ray shows and names its trial folders after); the trainable, the scheduler and the callbacks
read it from there, typed, rather than rebuilding the config or parsing names back.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from smcl_tune.config import TrialConfig, trial_config_from_dict
from smcl_tune.errors import ConfigError
from smcl_tune.studyfile.conditions import Condition
from smcl_tune.studyfile.overrides import apply_overrides

TRIAL_SPEC = "smcl_trial"  # the key of a Ray trial's config that holds its TrialSpec
SEARCH, BASELINE, CONFIRM = "search", "baseline", "confirm"  # a trial's role


@dataclass(frozen=True)
class TrialSpec:
    """A trial of a study. `config` is None until `validated`, and stays None for a sampled
    configuration the trial config refuses (`refusal` says why: the trial then ends FAILED)."""

    condition: Condition  # its label ("" without conditions) and the values it sets
    role: str  # SEARCH, BASELINE or CONFIRM
    name: str  # the run name before the condition: "trial-003", "baseline-ce-s1", "confirm-003-s2"
    configuration: str  # what a configuration's seeds share: a baseline's name, or "trial-003"
    values: dict[str, Any] = field(default_factory=dict)  # dotted path -> value, on top of the condition
    identity: str = ""  # the trial's key within its condition when it is not `name`: "optuna-3"
    config: TrialConfig | None = None
    refusal: str | None = None

    @property
    def key(self) -> str:
        """Stable across resumes: "[condition/]optuna-<n>", "[condition/]baseline-<name>..."."""
        own = self.identity or self.name
        return f"{self.condition.label}/{own}" if self.condition.label else own

    @property
    def run_name(self) -> str:
        """The MLflow run name: "trial-003", "baseline-ce-s1 [imbalance_factor=100]"."""
        return f"{self.name} [{self.condition.label}]" if self.condition.label else self.name

    @property
    def params(self) -> dict[str, Any]:
        """The dotted-path values the trial trains with on top of the base trial: its condition's, then its own."""
        return {**self.condition.overrides, **self.values}

    def validated(self, base_trial: dict[str, Any]) -> TrialSpec:
        """This spec with its TrialConfig: `base_trial` with `params` applied, validated once."""
        try:
            return replace(self, config=trial_config_from_dict(apply_overrides(base_trial, self.params)))
        except ConfigError as error:
            return replace(self, config=None, refusal=str(error))

    def ray_config(self) -> dict[str, Any]:
        """The Ray trial's config: the spec, and its dotted-path values for Ray's own display."""
        return {TRIAL_SPEC: self, **self.params}

    def __str__(self) -> str:  # what Ray shows of the spec in its tables and trial folder names
        return self.key


def spec_of(ray_config: dict[str, Any]) -> TrialSpec:
    """The spec of a Ray trial of a study, from its config."""
    return ray_config[TRIAL_SPEC]
