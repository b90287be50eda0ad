"""A hint for a field name a config or study file gets wrong: the field of that name in another
section (`temperature` under `training:` is `method.temperature`), or the closest name there is
(`nmax` is `n_max`, `n_trials` is `num_trials`). Read from the models' own fields."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterator, Sequence
from typing import Any


def _section_model(annotation: Any) -> Any:
    """The model a field holds (`X` or `X | None`), or None for a plain value."""
    arguments = [argument for argument in typing.get_args(annotation) if argument is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(arguments) == 1:
        annotation = arguments[0]
    return annotation if isinstance(annotation, type) and hasattr(annotation, "model_fields") else None


def field_paths(model: Any, prefix: str = "") -> Iterator[str]:
    """Every dotted path of `model`'s fields, sections and the fields in them."""
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        yield path
        section = _section_model(field.annotation)
        if section is not None:
            yield from field_paths(section, f"{path}.")


def _fields_of(model: Any, parts: Sequence[str]) -> list[str]:
    """The field names of the section `parts` names in `model` ([] where it names none)."""
    for part in parts:
        field = model.model_fields.get(part)
        model = None if field is None else _section_model(field.annotation)
        if model is None:
            return []
    return list(model.model_fields)


def field_hint(model: Any, parts: Sequence[str]) -> str | None:
    """The path (relative to `model`) a user most likely meant by the unknown `parts`, or None."""
    paths = list(field_paths(model))
    wanted, leaf = ".".join(parts), parts[-1]
    elsewhere = [path for path in paths if path.rsplit(".", 1)[-1] == leaf and path != wanted]
    if len(elsewhere) == 1:
        return elsewhere[0]
    siblings = difflib.get_close_matches(leaf, _fields_of(model, parts[:-1]), n=1, cutoff=0.6)
    if siblings:
        return ".".join([*parts[:-1], siblings[0]])
    close = difflib.get_close_matches(wanted, paths, n=1, cutoff=0.8)
    return close[0] if close else None
