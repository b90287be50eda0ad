"""What `validate` says of a study that fuses trials (resources.fuse > 1): what its resources count,
and which searched fields, baselines or confirmation overrides put trials into groups of their own."""

from __future__ import annotations

import json
from typing import Any

from smcl_tune.errors import ConfigError


def fusion_lines(study) -> list[str]:
    """Nothing for a study that does not fuse; else a line on groups, then one per field that splits them."""
    config = study.config
    resources = config.resources
    if resources.fuse == 1:
        return []
    from smcl_tune.trial.fused.fusible import fusible_shape

    def shape(overrides: dict[str, Any]) -> str | None:
        try:
            return json.dumps(fusible_shape(study.trial_config(overrides)), sort_keys=True)
        except ConfigError:  # a combination the trial config refuses: validate reports those itself
            return None

    held = f"resources.cpus {resources.cpus:g}" + (f" and resources.gpus {resources.gpus:g}" if resources.gpus else "")
    lines = [
        f"fused: up to {resources.fuse} trials of one shape (data, network, batch size, augmentation, steps per "
        f"epoch, device) train as one group in one process; {held} and max_concurrent {config.max_concurrent} "
        f"count groups, so up to {resources.fuse * config.max_concurrent} trials run at once"
    ]
    own_section = shape({})
    searched = {own_section} if config.num_trials else set()  # the shapes the search's trials may have
    for field, distribution in config.search.items():
        shapes = {shape({field: value}) for value in distribution.edge_values()} - {None}
        searched |= shapes
        if len(shapes) > 1:
            lines.append(
                f"search.{field} changes the shape: trials with different values train in different groups, "
                f"each with its own members' CPUs ({resources.cpus:g} / {resources.fuse} a trial)"
            )
    fixed = [(f"baseline {baseline.name}", baseline.overrides) for baseline in config.baselines]
    if config.confirm is not None:
        fixed.append(("the confirmation runs", config.confirm.overrides))
    others = "no search trial has" if searched else "the study's trial section does not have"
    for name, overrides in fixed:
        own = shape(overrides)
        if own is not None and own not in (searched or {own_section}):  # a study of baselines: the trial section's
            lines.append(f"{name} has a shape {others}: it trains in groups of its own runs only")
    return lines
