"""Which config field changes a trial when: the one table that `validate` and `run` check a study's
search against, and that the README's method table repeats in words. A searched field that no trial
of the study can feel (a threshold under box masks, a contrastive field under CE) wastes the
search's budget, and Optuna's importance plot then ranks noise."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from smcl_tune.config import TrialConfig
from smcl_tune.errors import ConfigError
from smcl_tune.studyfile.search_space import Choice

MASKING = ("smcl", "mask_only")


@dataclass(frozen=True)
class FieldEffect:
    fields: tuple[str, ...]
    when: str  # in the README's words
    acts: Callable[[TrialConfig], bool]


def _masking(config: TrialConfig) -> bool:
    return config.method.name in MASKING


FIELD_EFFECTS = (
    FieldEffect(
        ("method.saliency", "method.compose", "method.mask_mode", "method.soft_label", "method.minor_images"),
        "method.name smcl or mask_only",
        _masking,
    ),
    FieldEffect(
        ("method.saliency_threshold",),
        "smcl or mask_only with mask_mode threshold",
        lambda c: _masking(c) and c.method.mask_mode == "threshold",
    ),
    FieldEffect(
        ("method.saliency_blur_sigma",),
        "smcl or mask_only with saliency spectral_residual",
        lambda c: _masking(c) and c.method.saliency == "spectral_residual",
    ),
    FieldEffect(
        ("method.box_alpha",),
        "smcl or mask_only with mask_mode box, or cmo",
        lambda c: (_masking(c) and c.method.mask_mode == "box") or c.method.name == "cmo",
    ),
    FieldEffect(
        ("method.fill",),
        "smcl or mask_only with compose erase, or paste with erase_head",
        lambda c: _masking(c) and (c.method.compose == "erase" or c.method.erase_head),
    ),
    FieldEffect(
        ("method.mask_source", "method.erase_head"),
        "smcl or mask_only with compose paste",
        lambda c: _masking(c) and c.method.compose == "paste",
    ),
    FieldEffect(
        ("method.temperature", "method.loss_weight", "model.projection_dim"),
        "method.name smcl or supcon (the contrastive loss)",
        lambda c: c.method.name in ("smcl", "supcon"),
    ),
    FieldEffect(
        ("method.sampler_beta", "method.mask_probability", "method.mask_start_epoch", "method.mask_end_epoch"),
        "every method but ce (the minor-class batch)",
        lambda c: c.method.name != "ce",
    ),
    FieldEffect(
        ("method.drw_start_epoch", "method.drw_beta"),
        "method.classifier_loss drw or ldam_drw",
        lambda c: c.method.uses_drw,
    ),
    FieldEffect(
        ("method.ldam_max_margin", "method.ldam_scale"),
        "method.classifier_loss ldam_drw",
        lambda c: c.method.classifier_loss == "ldam_drw",
    ),
)
EFFECT_OF = {name: effect for effect in FIELD_EFFECTS for name in effect.fields}


def _trials_to_try(study) -> list[TrialConfig]:
    """A trial config for each condition and each combination of the searched choices (the ranges
    of the other searched fields change no rule of FIELD_EFFECTS); combinations the config refuses
    are left out."""
    choices = {path: d.values for path, d in study.config.search.items() if isinstance(d, Choice)}
    configs = []
    for condition in study.conditions:
        for values in itertools.product(*choices.values()):
            try:
                configs.append(study.trial_config({**condition.overrides, **dict(zip(choices, values))}))
            except ConfigError:
                continue
    return configs


def idle_search_fields(study) -> list[str]:
    """One line for each searched field that changes no trial of the study, and for each ASHA
    setting under FIFO (a warning, not a refusal: a study started with one must still resume)."""
    configs = _trials_to_try(study)
    lines = [
        f"scheduler.{name}: does nothing under scheduler.type: fifo, which stops no trial early (it is ASHA's)"
        for name in study.config.scheduler.idle_fields()
    ]
    for path in study.config.search:
        effect = EFFECT_OF.get(path)
        if effect is not None and configs and not any(effect.acts(config) for config in configs):
            lines.append(
                f"search.{path}: changes no trial of this study (it acts only with {effect.when}); its samples "
                "would waste the search's budget"
            )
    return lines
