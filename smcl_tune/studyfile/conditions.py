"""The study's conditions crossed into strata (one Optuna study each), and the plain names of dotted paths."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Condition:
    """One combination of the study's conditions: its label ("" without conditions) and values."""

    label: str
    overrides: dict[str, Any]


def value_label(value: Any) -> str:
    """A condition value as its label shows it: a float at 6 significant digits."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def study_conditions(conditions: dict[str, list[Any]]) -> list[Condition]:
    """Every combination of the conditions' values, in the order given; one unlabelled condition
    when there are none."""
    if not conditions:
        return [Condition("", {})]
    names = list(plain_param_names(dict.fromkeys(conditions)))
    crossed = []
    for values in itertools.product(*conditions.values()):
        label = ",".join(f"{name}={value_label(value)}" for name, value in zip(names, values))
        crossed.append(Condition(label, dict(zip(conditions, values))))
    return crossed


def plain_param_names(params: dict[str, Any]) -> dict[str, Any]:
    """`method.temperature` -> `temperature`, unless two paths share their last name."""
    last_names = [path.rsplit(".", 1)[-1] for path in params]
    return {
        (name if last_names.count(name) == 1 else path): value
        for path, name, value in zip(params, last_names, params.values())
    }
