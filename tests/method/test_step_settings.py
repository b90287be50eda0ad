"""Config -> step: every method field reaches the step's settings, and the defaults are SMCL.md's."""

import typing

import pytest

from smcl_tune.config import MethodConfig, TrialConfig
from smcl_tune.method.step import StepSettings

# SMCL.md, "Specification (one training step)": the defaults of every option the step reads.
SPECIFICATION_DEFAULTS = {
    "method": "smcl",
    "saliency": "spectral_residual",
    "saliency_blur_sigma": 1.5,
    "compose": "erase",
    "mask_mode": "box",
    "saliency_threshold": 0.5,
    "box_alpha": 1.0,
    "mask_source": "minor",
    "erase_head": False,
    "fill": "mean",
    "soft_label": "mixed",
    "minor_images": False,
    "temperature": 0.1,
    "loss_weight": 1.0,
    "classifier_loss": "ce",
    "ldam_max_margin": 0.5,  # SMCL.md, baselines: LDAM's largest margin 0.5, scale s = 30
    "ldam_scale": 30.0,
}
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


def test_the_default_config_gives_the_specifications_step():
    settings = StepSettings.from_config(TrialConfig().method, num_classes=7)
    assert {name: getattr(settings, name) for name in STEP_FIELDS} == SPECIFICATION_DEFAULTS
    assert settings.num_classes == 7


@pytest.mark.parametrize("name", STEP_FIELDS)
def test_each_method_field_set_away_from_its_default_reaches_the_step(name):
    config_name = "name" if name == "method" else name
    value = _other_value(config_name)
    method = {config_name: value, "mask_start_epoch": 0}
    if config_name == "erase_head":
        method["compose"] = "paste"  # erase_head is an option of paste
    settings = StepSettings.from_config(TrialConfig(method=method).method, 3)
    assert getattr(settings, name) == value
