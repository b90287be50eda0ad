"""Config -> step: every method field reaches the step's settings, with the config's defaults."""

import typing

import pytest

from smcl_tune.config import MethodConfig, TrialConfig
from smcl_tune.method.step import StepSettings

STEP_FIELDS = [name for name in StepSettings.__dataclass_fields__ if name != "num_classes"]


def _other_value(name: str):
    """A valid value of MethodConfig.<name> that differs from its default."""
    field = MethodConfig.model_fields[name]
    default = field.default
    if typing.get_origin(field.annotation) is typing.Literal:
        return next(choice for choice in typing.get_args(field.annotation) if choice != default)
    if isinstance(default, bool):
        return not default
    return default * 0.5 if default else 0.25


def test_the_default_config_gives_the_default_step():
    """A step built from a default config and one built with no options are the same step (the
    defaults themselves follow SMCL.md: tests/test_config.py)."""
    from_config = StepSettings.from_config(TrialConfig().method, num_classes=7)
    assert from_config == StepSettings(method="smcl", num_classes=7)
    for name in STEP_FIELDS:
        config_name = "name" if name == "method" else name
        assert getattr(from_config, name) == getattr(MethodConfig(), config_name), name


@pytest.mark.parametrize("name", STEP_FIELDS)
def test_each_method_field_set_away_from_its_default_reaches_the_step(name):
    config_name = "name" if name == "method" else name
    value = _other_value(config_name)
    method = {config_name: value, "mask_start_epoch": 0}
    if config_name == "erase_head":
        method["compose"] = "paste"  # erase_head is an option of paste
    settings = StepSettings.from_config(TrialConfig(method=method).method, 3)
    assert getattr(settings, name) == value
