"""Dotted config paths (`method.temperature`) set on a plain trial mapping, before it is validated."""

from __future__ import annotations

import copy
from typing import Any

from smcl_tune.errors import ConfigError


def apply_overrides(trial: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A copy of `trial` with each `a.b.c: value` set (missing sections created). A mapping given
    for a section sets the fields it names and keeps the others: `training: {lr: 0.01}` is
    `training.lr: 0.01` (it replaced the whole section, silently dropping the trial's epochs, batch
    size and device)."""
    result = copy.deepcopy(trial)
    for path, value in params.items():
        node = result
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{path}: {part} is not a section")
        _set(node, leaf, copy.deepcopy(value))
    return result


def _set(node: dict[str, Any], key: str, value: Any) -> None:
    if isinstance(value, dict) and isinstance(node.get(key), dict):
        for name, inner in value.items():
            _set(node[key], name, inner)
    else:
        node[key] = value
