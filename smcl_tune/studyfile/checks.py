"""The study file's cross-checks: the study applied to the trial config.

Every search bound and its combinations, every baseline and confirmation override, every
condition gives a valid trial; what a trial measures is never searched; runs paired over seeds
train on the same data; ASHA's budget is one epoch count; a CUDA device has a GPU share to run
on. Each refusal is a ConfigError naming the field path.
"""

from __future__ import annotations

import itertools
import json
import re
import types
import typing
from typing import Any

from pydantic import BaseModel

from smcl_tune.config import TrainingConfig, TrialConfig, trial_config_from_dict, trial_hint
from smcl_tune.errors import ConfigError, short_repr
from smcl_tune.studyfile.conditions import Condition, plain_param_names, study_conditions, value_label
from smcl_tune.studyfile.overrides import apply_overrides
from smcl_tune.studyfile.schema import StudyConfig
from smcl_tune.studyfile.search_space import SearchDistribution


def _config_field(path: str):
    """The pydantic field a dotted path names in the trial config, or None."""
    model: type[BaseModel] = TrialConfig
    parts = path.split(".")
    field = None
    for index, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        if index < len(parts) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return None
            model = annotation
    return field


def _check_field(where: str, path: str) -> None:
    """`path` names a field: not a section, whose mapping would replace the trial's section whole
    (and pass by the checks of the fields inside it)."""
    field = _config_field(path)
    if field is None:
        raise ConfigError(f"{where}.{path}: names no config field{_meant(path)}")
    value_type = _value_type(field.annotation)
    if isinstance(value_type, type) and issubclass(value_type, BaseModel):
        raise ConfigError(
            f"{where}.{path}: names a section, not a field; give each field of it its own dotted path "
            f"({path}.FIELD: value)"
        )


def _meant(path: str) -> str:
    """`; did you mean method.temperature?` for a path that names no field, or nothing."""
    words = trial_hint("", tuple(path.split(".")))
    return f"; {words}" if words else ""


def _value_type(annotation: Any) -> Any:
    """int, float, or another type (Literal, bool, str, list...) of a field, without `| None`."""
    arguments = [argument for argument in typing.get_args(annotation) if argument is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(arguments) == 1:
        return arguments[0]
    return annotation


def _check_distribution_kind(path: str, distribution: SearchDistribution) -> None:
    """A numeric distribution only for a numeric field; whole numbers only for a whole-number field."""
    value_type = _value_type(_config_field(path).annotation)
    kind = distribution.kind
    if kind == "choice" or value_type is float or (value_type is int and kind in ("int", "logint")):
        return
    wanted = "int, logint or choice" if value_type is int else "choice"
    raise ConfigError(f"search.{path}: {kind} gives values this field does not take; use {wanted}")


MAX_CHECKED_COMBINATIONS = 4096


# What a trial measures: the data it trains and is tested on, and the shot groups it reports.
# Trials that differ in these are not comparable, so they are conditions, never searched.
MEASUREMENT_FIELDS = (
    "data.source",
    "data.root",
    "data.num_classes",
    "data.imbalance_factor",
    "data.profile",
    "data.n_max",
    "data.val_per_class",
    "data.subset_seed",
    "data.subset_protocol",
    "data.many_above",
    "data.few_below",
    "data.image_size",
    "data.synthetic",
)
# What a baseline or a confirmation run may still set of them: training on the whole subset.
FINAL_RUN_FIELDS = ("data.val_per_class",)


def _measures(path: str) -> bool:
    return any(path == field or path.startswith(field + ".") for field in MEASUREMENT_FIELDS)


def _check_not_measured(where: str, paths, allowed: tuple[str, ...] = ()) -> None:
    for path in paths:
        if _measures(path) and path not in allowed:
            raise ConfigError(
                f"{where}.{path}: changes what a trial measures (its data or shot groups), so its trials would not "
                "be comparable; put it under conditions: (each value a stratum of its own)"
            )


def _trial_in(config: StudyConfig, condition: Condition, overrides: dict[str, Any] | None = None) -> TrialConfig:
    """The trial a run with `overrides` (a baseline's, the confirmation's) trains in `condition`."""
    return trial_config_from_dict(apply_overrides(apply_overrides(config.trial, condition.overrides), overrides or {}))


def _check_conditions(config: StudyConfig) -> None:
    for path, values in config.conditions.items():
        _check_field("conditions", path)
        if not isinstance(values, list) or not values:
            raise ConfigError(f"conditions.{path}: needs a non-empty list of values, got {short_repr(values)}")
        if len({json.dumps(value, sort_keys=True) for value in values}) != len(values):
            raise ConfigError(f"conditions.{path}: each value once, got {short_repr(values)}")
    _check_labels_differ(config)
    labels = [condition.label for condition in study_conditions(config.conditions)]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:  # values whose text holds the labels' separators (`,` `=`)
        raise ConfigError(
            f"conditions: {twice[0]} twice: two combinations of values label as one; give values whose labels differ"
        )
    for condition in study_conditions(config.conditions):
        if not re.fullmatch(r"[A-Za-z0-9_.=,:+-]*", condition.label):
            raise ConfigError(f"conditions: {condition.label!r} is not a usable label; use plain numbers and names")
        try:
            _trial_in(config, condition)
        except ConfigError as error:
            raise ConfigError(f"conditions ({condition.label}) give an invalid trial: {error}") from None


def _check_labels_differ(config: StudyConfig) -> None:
    """Each value of a condition has a label of its own: values labelled alike would be one stratum."""
    names = plain_param_names(dict.fromkeys(config.conditions))
    for (path, values), name in zip(config.conditions.items(), names):
        first: dict[str, Any] = {}  # a label -> the value first given it
        for value in values:
            label = f"{name}={value_label(value)}"
            if label in first:
                raise ConfigError(f"conditions.{path}: {_why_one_label(first[label], value, label)}")
            first[label] = value


def _why_one_label(first: Any, second: Any, label: str) -> str:
    shown = f"{short_repr(first)} and {short_repr(second)}"
    if first == second:
        return f"{shown} are one value written differently, one condition ({label}); give each value once"
    digits = " (a label keeps 6 significant digits)" if float in (type(first), type(second)) else ""
    return f"{shown} both label as {label}{digits}; give values whose labels differ"


def _check_validation_split(config: StudyConfig) -> None:
    """A search selects on validation metrics: every condition it runs in needs a validation split."""
    if not config.num_trials:
        return
    for condition in study_conditions(config.conditions):
        trial = _trial_in(config, condition)
        if trial.data.val_per_class == 0:
            where = f" (condition {condition.label})" if condition.label else ""
            raise ConfigError(
                f"trial.data.val_per_class: 0 leaves no validation split{where}, and a search is tuned on "
                f"{config.objective.metric}; keep a validation split for the search and train on the whole "
                "subset in baselines and confirm.overrides (data.val_per_class: 0)"
            )


def _check_search_space(config: StudyConfig) -> None:
    """Every distribution fits its field, and in every condition every combination of the
    distributions' edge values (all of them up to MAX_CHECKED_COMBINATIONS) gives a valid trial."""
    edges = {}
    for path, distribution in config.search.items():
        _check_field("search", path)
        if path in config.conditions:
            raise ConfigError(f"search.{path}: is a condition; a path is either searched or a condition")
        edges[path] = distribution.edge_values()
        _check_distribution_kind(path, distribution)
    _check_not_measured("search", config.search)
    for condition in study_conditions(config.conditions):
        base = apply_overrides(config.trial, condition.overrides)
        where = f" (condition {condition.label})" if condition.label else ""
        for path, values in edges.items():
            read: list[tuple[Any, Any]] = []  # each value as written, and as its field reads it
            for value in values:
                try:
                    trial = trial_config_from_dict(apply_overrides(base, {path: value}))
                except ConfigError as error:
                    raise ConfigError(
                        f"search.{path}: the value {short_repr(value)} gives an invalid trial{where}: {error}"
                    ) from None
                if config.search[path].kind == "choice":
                    _check_choice_once(path, config.search[path].values, read, value, _field_value(trial, path))
        if len(edges) < 2:
            continue
        for count, values in enumerate(itertools.product(*edges.values())):
            if count == MAX_CHECKED_COMBINATIONS:
                break
            combination = dict(zip(edges, values))
            try:
                trial_config_from_dict(apply_overrides(base, combination))
            except ConfigError as error:
                shown = ", ".join(f"{path}: {short_repr(value)}" for path, value in combination.items())
                raise ConfigError(
                    f"search: the combination {{{shown}}} gives an invalid trial{where}: {error}"
                ) from None


def _field_value(trial: TrialConfig, path: str) -> Any:
    value: Any = trial
    for part in path.split("."):
        value = getattr(value, part)
    return value


def _check_choice_once(path: str, choices: list[Any], read: list[tuple[Any, Any]], value: Any, as_read: Any) -> None:
    """Each choice once as its field reads it (1 and 1.0 of a float field, 0.1 and '0.1'): a value
    given twice is sampled twice as often. `read`: the choices before `value`, as written and read."""
    for written, earlier in read:
        if earlier == as_read:
            raise ConfigError(
                f"search.{path}.choice: each value once, got {short_repr(choices)} "
                f"({short_repr(written)} and {short_repr(value)} are one value as the field reads them)"
            )
    read.append((value, as_read))


def _fixed_runs(config: StudyConfig) -> list[tuple[str, str, dict[str, Any]]]:
    """Baselines and the confirmation runs: where each is in the file, its name, its overrides."""
    runs = [
        (f"baselines[{index}]", baseline.name, baseline.overrides) for index, baseline in enumerate(config.baselines)
    ]
    if config.confirm is not None:
        runs.append(("confirm", "confirm", config.confirm.overrides))
    return runs


def _check_fixed_runs(config: StudyConfig) -> None:
    """Baselines and confirmation runs: known fields, nothing that changes what is measured but
    the validation hold-out, and a valid trial in every condition."""
    for where, name, overrides in _fixed_runs(config):
        for path in overrides:
            _check_field(f"{where}.overrides", path)
        _check_not_measured(f"{where}.overrides", overrides, FINAL_RUN_FIELDS)
        for condition in study_conditions(config.conditions):
            try:
                _trial_in(config, condition, overrides)
            except ConfigError as error:
                shown = f", condition {condition.label}" if condition.label else ""
                raise ConfigError(f"{where} ({name}{shown}): {error}") from None


def _measured_data(trial: TrialConfig) -> dict[str, Any]:
    """The trial's data fields that decide what it is measured on, by dotted path."""
    data = trial.data.model_dump(mode="json")
    return {path: data[path.split(".")[1]] for path in MEASUREMENT_FIELDS if path.startswith("data.")}


def _check_shared_subset(config: StudyConfig) -> None:
    """Baselines and confirmation runs are paired over seeds within a condition: they must train
    and test on the same data (the same subset, hold-out included)."""
    runs = [
        (f"baselines[{index}] ({baseline.name})", baseline.overrides) for index, baseline in enumerate(config.baselines)
    ]
    if config.confirm is not None:
        runs.append(("confirm", config.confirm.overrides))
    if len(runs) < 2:
        return
    for condition in study_conditions(config.conditions):
        base = apply_overrides(config.trial, condition.overrides)
        first_name, first = runs[0][0], _measured_data(trial_config_from_dict(apply_overrides(base, runs[0][1])))
        for name, overrides in runs[1:]:
            measured = _measured_data(trial_config_from_dict(apply_overrides(base, overrides)))
            differing = [path for path in first if measured[path] != first[path]]
            if differing:
                shown = ", ".join(
                    f"{path} {short_repr(first[path])} and {short_repr(measured[path])}" for path in differing
                )
                where = f" (condition {condition.label})" if condition.label else ""
                raise ConfigError(
                    f"{first_name} and {name} train on different data{where}: {shown}; they are compared over "
                    f"seeds, so give them the same {' and '.join(differing)}"
                )


def _check_asha_budget(config: StudyConfig, base_trial: TrialConfig) -> None:
    """ASHA's budget is one epoch count for every trial; a trial may not change its own."""
    max_epochs, epochs = config.scheduler.max_epochs, base_trial.training.epochs
    if config.scheduler.type != "asha":
        if max_epochs is not None:
            raise ConfigError("scheduler.max_epochs: used by the ASHA scheduler only; remove it with type: fifo")
        return
    if max_epochs is not None and max_epochs != epochs:
        raise ConfigError(
            f"scheduler.max_epochs: ASHA stops every trial at max_epochs ({max_epochs}) while trials "
            f"train trial.training.epochs ({epochs}); leave max_epochs out (it defaults to "
            "trial.training.epochs) or make the two equal"
        )
    grace_period = config.scheduler.grace_period
    if grace_period > epochs:
        raise ConfigError(
            f"scheduler.grace_period: {grace_period} epochs before ASHA may stop a trial, but trials train "
            f"{epochs} (trial.training.epochs); make it at most {epochs}"
        )
    if "training.epochs" in config.search:
        raise ConfigError(
            "search.training.epochs: ASHA gives every trial scheduler.max_epochs epochs; "
            "search the epoch count with scheduler.type: fifo"
        )
    for index, baseline in enumerate(config.baselines):
        if "training.epochs" in baseline.overrides:
            raise ConfigError(
                f"baselines[{index}].overrides.training.epochs: ASHA gives every trial "
                "scheduler.max_epochs epochs; set training.epochs for the whole study"
            )


def _check_fused_compile(config: StudyConfig) -> None:
    """A fused group trains its members as one stacked model, never compiled: a study that fuses
    and asks for torch.compile anywhere would train uncompiled without saying so. Each run's trial
    is resolved in each condition, so that an override written as a section is seen too."""
    fuse = config.resources.fuse
    if fuse == 1:
        return
    why = f"a fused group (resources.fuse: {fuse}) trains its members as one stacked model, uncompiled"
    if "training.compile" in config.search:
        raise ConfigError(f"search.training.compile: {why}; search it with resources.fuse: 1")
    runs = [("trial", {}), *((f"{where}.overrides", overrides) for where, _, overrides in _fixed_runs(config))]
    for condition in study_conditions(config.conditions):
        for where, overrides in runs:
            if _trial_in(config, condition, overrides).training.compile:
                if where == "trial" and condition.overrides.get("training.compile"):
                    where = "conditions"
                raise ConfigError(f"{where}.training.compile: {why}; set resources.fuse: 1 to compile each trial")


SMALLEST_SHARE = 1e-4  # Ray Tune's resource unit: a smaller fraction of a CPU or GPU is refused once trials start


def _check_trial_share(config: StudyConfig) -> None:
    """Each trial holds its group's cpus and gpus divided by `fuse`: Ray refuses a share below its
    unit, after the study has started and written its state."""
    resources = config.resources
    for name, amount in (("cpus", resources.cpus), ("gpus", resources.gpus)):
        share = amount / resources.fuse
        if 0 < share < SMALLEST_SHARE:
            field = "resources.fuse" if resources.fuse > 1 else f"resources.{name}"
            raise ConfigError(
                f"{field}: each trial would hold {share:.2g} of a {name[:-1].upper()} (resources.{name} {amount:g} "
                f"/ resources.fuse {resources.fuse}); Ray Tune's smallest share is {SMALLEST_SHARE:g}"
            )


def _on_cuda(device: Any) -> bool:
    return isinstance(device, str) and device.split(":")[0] == "cuda"


def _check_cuda_has_a_gpu(config: StudyConfig) -> None:
    """A trial on a CUDA device needs a GPU: with resources.gpus 0 Ray gives its trials none, and
    each would fail as it starts, whatever GPUs the driver's machine has. The device is read where
    the file sets it: a run's overrides, else its condition's, else the trial section."""
    if config.resources.gpus > 0:
        return
    why = (
        "trains on a GPU, and trials get none (resources.gpus: 0); give each trial one "
        "(resources.gpus: 1, or 0.5 to share one) or set device: cpu"
    )
    searched = config.search.get("training.device")
    for device in searched.edge_values() if searched is not None else []:
        if _on_cuda(device):
            raise ConfigError(f"search.training.device: {device} {why}")
    runs = [(f"{where}.overrides", overrides) for where, _, overrides in _fixed_runs(config)]
    if config.num_trials:
        runs.insert(0, ("trial", {}))
    in_trial = config.trial.get("training", {}).get("device", TrainingConfig.model_fields["device"].default)
    for condition in study_conditions(config.conditions):
        for where, overrides in runs:
            settings = (
                (where, overrides),
                ("conditions", condition.overrides),
                ("trial", {"training.device": in_trial}),
            )
            place, device = next(
                (place, set_in["training.device"]) for place, set_in in settings if "training.device" in set_in
            )
            if _on_cuda(device):
                raise ConfigError(f"{place}.training.device: {device} {why}")


def _check_confirm(config: StudyConfig) -> None:
    """The confirmation retrains each selected configuration as it was searched: a searched field
    overridden would train another value under its label, and a run with the search trials' own
    seed and nothing else changed repeats the selected trial's, counted as a second seed of it."""
    confirm = config.confirm
    if confirm is None:
        return
    for path in confirm.overrides:
        if path in config.search:
            raise ConfigError(
                f"confirm.overrides.{path}: a searched field; the confirmation retrains each selected "
                "configuration with its own value, and a run with another would be labelled as it"
            )
    if "training.seed" in config.search:
        return
    for condition in study_conditions(config.conditions):
        searched, confirmed = _trial_in(config, condition), _trial_in(config, condition, confirm.overrides)
        seed = searched.training.seed
        if seed in confirm.seeds and confirmed == searched:
            raise ConfigError(
                f"confirm.seeds: {seed} is the seed the search trials train with (trial.training.seed), and "
                "confirm.overrides change nothing else, so its run would repeat the selected trial's and count "
                "as a second seed of it; use other seeds (e.g. [1, 2])"
            )


def check_study(config: StudyConfig, base_trial: TrialConfig) -> None:
    """Every cross-check, in the order a user fixing the file meets them."""
    _check_conditions(config)
    _check_validation_split(config)
    _check_search_space(config)
    _check_fixed_runs(config)
    _check_confirm(config)
    _check_shared_subset(config)
    _check_asha_budget(config, base_trial)
    _check_fused_compile(config)
    _check_trial_share(config)
    _check_cuda_has_a_gpu(config)
