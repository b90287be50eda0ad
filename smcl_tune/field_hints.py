"""A hint for a field name a config or study file gets wrong: the field of that name in another
section (`temperature` under `training:` is `method.temperature`), or the closest name beside it
(`nmax` is `n_max`, `n_trials` is `num_trials`). Read from the models' own fields."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

SIBLING_CUTOFF = 0.75  # difflib's ratio, as it prints them: `nmax` and `n_max` 0.89, `training` and `tracking` 0.75
PATH_CUTOFF = 0.8


def _unwrapped(annotation: Any) -> Any:
    """`X` of `X | None`, and of `list[X]` (a list of sections: baselines)."""
    arguments = [argument for argument in typing.get_args(annotation) if argument is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(arguments) == 1:
        annotation = arguments[0]
    if typing.get_origin(annotation) is list and len(typing.get_args(annotation)) == 1:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _section_model(annotation: Any) -> Any:
    """The model a field holds, or None for a plain value."""
    annotation = _unwrapped(annotation)
    return annotation if isinstance(annotation, type) and hasattr(annotation, "model_fields") else None


def field_paths(model: Any, prefix: str = "", sections: Mapping[str, Any] | None = None) -> Iterator[str]:
    """Every dotted path of `model`'s fields, sections and the fields in them; `sections` names the
    model of a field the model holds as a plain mapping (a study's `trial:`)."""
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        yield path
        section = (sections or {}).get(path) or _section_model(field.annotation)
        if section is not None:
            yield from field_paths(section, f"{path}.", sections)


def _fields_of(model: Any, parts: Sequence[str], sections: Mapping[str, Any]) -> list[str]:
    """The field names of the section `parts` names in `model` ([] where it names none); a list's
    index (`baselines.0`) is passed by."""
    walked: list[str] = []
    for part in parts:
        if part.isdigit():
            continue
        walked.append(part)
        field = model.model_fields.get(part)
        model = None if field is None else sections.get(".".join(walked)) or _section_model(field.annotation)
        if model is None:
            return []
    return list(model.model_fields)


def field_hint(
    model: Any, parts: Sequence[str], sections: Mapping[str, Any] | None = None, peer_sections: bool = False
) -> str | None:
    """The path (relative to `model`) a user most likely meant by the unknown `parts` (two joined by
    ` or ` where a field beside it and one elsewhere are as likely), or None. With
    `peer_sections` (a trial's data / model / method / training), a field put in the wrong one of
    them is looked for in the others; else only within its own top section."""
    sections = sections or {}
    if not parts or any(not part or "." in part for part in parts):  # a dotted key where a mapping belongs
        return None
    logical = [part for part in parts if not part.isdigit()]
    wanted, leaf = ".".join(logical), logical[-1]
    paths = list(field_paths(model, sections=sections))
    # the same name in another section: of the same top section, or anywhere below the top for a top-level name
    elsewhere = [
        path
        for path in paths
        if path.rsplit(".", 1)[-1] == leaf
        and path != wanted
        and "." in path
        and (
            len(logical) == 1
            or path.split(".")[0] == logical[0]
            or (peer_sections and path.count(".") == len(logical) - 1)
        )
    ]
    if len(elsewhere) == 1:
        # a field beside it with that word in its name may be the one meant (data.seed: subset_seed)
        beside = [name for name in _fields_of(model, parts[:-1], sections) if leaf in name.split("_")]
        return " or ".join([*(".".join([*parts[:-1], name]) for name in beside[:1]), elsewhere[0]])
    beside = _fields_of(model, parts[:-1], sections)
    siblings = difflib.get_close_matches(leaf, beside, n=1, cutoff=SIBLING_CUTOFF)
    # a short field's long form, which no ratio reaches: learning_rate (its initials) and lrate are lr
    # (lr_decay is not: a word of its own after lr names something else)
    initials = "".join(word[:1] for word in leaf.split("_")) if "_" in leaf else None
    longer = [name for name in beside if len(name) <= 3 and leaf.startswith(name) and "_" not in leaf]
    siblings = siblings or [name for name in beside if name == initials] or longer
    if siblings:
        return ".".join([*parts[:-1], siblings[0]])
    parent = wanted.rpartition(".")[0]  # its section's fields were weighed above, by their names alone
    others = [path for path in paths if not wanted.startswith(path) and path.rpartition(".")[0] != parent]
    close = difflib.get_close_matches(wanted, others, n=1, cutoff=PATH_CUTOFF)
    return close[0] if close else None
