"""Dotted config paths (`method.temperature`) set on a plain trial mapping, before it is validated."""

from __future__ import annotations

import copy
from typing import Any

from smcl_tune.errors import ConfigError


def apply_overrides(trial: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A copy of `trial` with each `a.b.c: value` set (missing sections created). A study's paths
    name fields, never a section (studyfile/checks.py): a mapping for one would replace it whole."""
    result = copy.deepcopy(trial)
    for path, value in params.items():
        node = result
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{path}: {part} is not a section")
        node[leaf] = value
    return result
