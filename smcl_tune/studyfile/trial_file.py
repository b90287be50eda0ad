"""A bare trial file (data / model / method / training sections), as `smcl-tune trial` reads it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from smcl_tune.config import TrialConfig, trial_config_from_dict
from smcl_tune.errors import ConfigError, in_file
from smcl_tune.studyfile.overrides import apply_overrides
from smcl_tune.studyfile.yaml_loader import load_yaml


def load_trial_config(path: str | Path, overrides: dict[str, Any] | None = None) -> TrialConfig:
    """A trial config from a YAML file (a bare trial file), with dotted-path `overrides` applied
    before validation, so that every cross-field check sees them."""
    loaded = load_yaml(path)
    if isinstance(loaded, dict) and isinstance(loaded.get("trial"), dict):
        raise ConfigError(
            f"{path}: a study file (it has a trial: section), not a trial file; run the study with "
            f"`smcl-tune run {path}`, or give `smcl-tune trial` a file of its trial section alone"
        )
    raw = apply_overrides(loaded, overrides or {})
    try:
        return trial_config_from_dict(raw)
    except ConfigError as error:
        raise in_file(path, error) from None
